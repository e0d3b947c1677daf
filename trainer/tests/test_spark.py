"""Spark scorer (local mode): the same scores, bands and quarantine reasons as the TypeScript scorer, and a
tampered bundle refused on the executors. Skipped only when pyspark (the `spark` extra) is not installed."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'churnops-trainer[spark]')")

from churnops_trainer import spark as S
from churnops_trainer.errors import BundleError

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-01"
NODE = shutil.which("node")
PG_URL = os.environ.get("CHURNOPS_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
PG_JARS = sorted(Path("/usr/share/java").glob("postgresql*.jar")) + sorted(
    Path.home().glob(".m2/repository/org/postgresql/postgresql/*/postgresql-*.jar")
)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    settings = {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}
    if PG_JARS:
        settings["spark.jars"] = str(PG_JARS[-1])
    session = S.spark_session("local[2]", settings)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def bundle(trained: dict[str, Any]) -> Path:
    return Path(trained["bundle_path"])


@pytest.fixture(scope="module")
def features(bundle: Path) -> list[str]:
    return [f["name"] for f in S.load_bundle(bundle)["schema"]["features"]]


def customers(synth_frame: pd.DataFrame, features: list[str], n: int = 400) -> list[dict[str, Any]]:
    """Real rows, then every kind of bad row in both input modes (row numbers are 1-based, as reported)."""
    rows = synth_frame.head(n)[["customer_id", *features]].to_dict(orient="records")
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
    rows[4]["tenure_months"] = -3  # below the minimum
    rows[7]["contract_type"] = "three_year"  # unseen category
    rows[13]["payment_method"] = None  # required and missing
    rows[16]["num_support_tickets"] = 2.5  # not a whole number
    rows[19]["customer_id"] = rows[1]["customer_id"]  # duplicate of row 2
    rows[22]["customer_id"] = ""  # empty id
    rows[23]["customer_id"] = None  # null id
    rows[25]["total_charges"] = None  # optional: scored with NaN
    rows[28]["tenure_months"] = -1  # two reasons in one row
    rows[28]["contract_type"] = "x" * 50  # cut at 40 characters in the message
    rows[31]["customer_id"] = rows[4]["customer_id"]  # the first occurrence was bad: this one is scored
    rows[34]["monthly_charges"] = -1e-7  # JS prints -1e-7
    rows[37]["num_logins_30d"] = 2.5e-7  # JS prints 2.5e-7
    rows[40]["monthly_charges"] = -0.000001  # JS prints -0.000001
    rows[43]["customer_id"] = rows[1]["customer_id"]  # a second duplicate of row 2
    return rows


def write_parquet(rows: list[dict[str, Any]], path: Path, special: dict[tuple[int, str], float]) -> Path:
    """Typed Parquet: tenure as int64 (a JS bigint), other numerics as double (NaN kept apart from NULL)."""
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [special.get((i, name), r[name]) for i, r in enumerate(rows)]
        if name == "tenure_months":
            columns[name] = pa.array(values, type=pa.int64())
        elif all(v is None or isinstance(v, str) for v in values):
            columns[name] = pa.array(values, type=pa.string())
        else:
            columns[name] = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    pq.write_table(pa.table(columns), path)
    return path


def write_csv(rows: list[dict[str, Any]], path: Path, special: dict[tuple[int, str], str]) -> Path:
    """CSV text as a user would have it: numbers written plainly, some padded, some malformed."""
    frame = pd.DataFrame(
        [{k: special.get((i, k), "" if v is None else _text(v)) for k, v in r.items()} for i, r in enumerate(rows)]
    )
    frame.to_csv(path, index=False)
    return path


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


PARQUET_SPECIAL = {(10, "monthly_charges"): float("nan"), (46, "monthly_charges"): float("inf")}
CSV_SPECIAL = {
    (10, "monthly_charges"): "abc",
    (46, "monthly_charges"): "1e999",
    (49, "tenure_months"): "  12  ",
    (52, "num_logins_30d"): "+5",
    (55, "monthly_charges"): "Infinity",
    (58, "customer_id"): "   ",
    (61, "total_charges"): " ",
}


def typescript_score(*args: str, workdir: Path, store_url: str) -> None:
    """`churnops score …` through the real TS CLI from source."""
    env = {**os.environ, "CHURNOPS_HOME": str(workdir / "ts-home"), "CHURNOPS_DB_URL": store_url}
    cmd = [NODE or "node", "--import", "tsx", "test/helpers/cli-entry.ts", "score", *args, "--json"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def run_typescript(data: Path, bundle: Path, workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The TS scorer with a SQLite store, so its quarantine rows can be read back."""
    db = workdir / "ts.db"
    out = workdir / "ts.parquet"
    args = ["--data", str(data), "--model", str(bundle), "--as-of", AS_OF, "--out", str(out)]
    typescript_score(*args, workdir=workdir, store_url=f"sqlite://{db}")
    with sqlite3.connect(db) as conn:
        quarantine = pd.read_sql_query("SELECT run_id, row_number, customer_id, reason FROM quarantine", conn)
    return pd.read_parquet(out), quarantine


def run_spark(spark: Any, data: Path, bundle: Path, workdir: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    config = S.SparkScoreConfig(bundle=bundle, data=str(data), as_of=AS_OF, out=str(workdir / "spark.parquet"))
    summary = S.run(config, spark=spark)
    return summary, pd.read_parquet(workdir / "spark.parquet"), pd.read_parquet(workdir / "spark.quarantine.parquet")


def assert_same_as_typescript(
    summary: dict[str, Any], scores: pd.DataFrame, quarantine: pd.DataFrame, ts: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    ts_scores, ts_quarantine = ts
    assert len(scores) == len(ts_scores) > 250
    assert scores["customer_id"].is_unique
    merged = scores.merge(ts_scores, on="customer_id", suffixes=("", "_ts"), validate="one_to_one")
    assert len(merged) == len(ts_scores)
    assert np.max(np.abs(merged["probability"] - merged["probability_ts"])) <= 1e-6
    for column in ("band", "decision", "run_id", "model_name", "model_version"):
        assert (merged[column] == merged[f"{column}_ts"]).all(), column
    run_id = f"daily-{AS_OF}-{summary['model_name']}-v{summary['model_version']}"
    assert summary["run_id"] == ts_scores["run_id"].iloc[0] == run_id
    ours = quarantine.sort_values("row_number").reset_index(drop=True)
    theirs = ts_quarantine.sort_values("row_number").reset_index(drop=True)
    assert list(ours["row_number"]) == list(theirs["row_number"])
    assert list(ours["customer_id"].fillna("<null>")) == list(theirs["customer_id"].fillna("<null>"))
    for mine, expected in zip(ours["reason"], theirs["reason"], strict=True):
        assert mine == expected
    assert summary["rows_quarantined"] == len(ts_quarantine)
    assert summary["executor_verifications"] >= 1


@pytest.mark.skipif(NODE is None, reason="node is needed to run the TypeScript scorer")
def test_parquet_scores_and_reasons_equal_the_typescript_scorer(
    spark: Any, bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = write_parquet(customers(synth_frame, features), tmp_path / "customers.parquet", PARQUET_SPECIAL)
    summary, scores, quarantine = run_spark(spark, data, bundle, tmp_path)
    assert_same_as_typescript(summary, scores, quarantine, run_typescript(data, bundle, tmp_path))
    reasons = dict(zip(quarantine["row_number"], quarantine["reason"], strict=True))
    assert reasons[5].startswith("tenure_months: -3 is below the minimum 0 (expected an integer >= 0)")
    assert reasons[11].startswith("monthly_charges: NaN is not a finite number")
    assert reasons[47].startswith("monthly_charges: Infinity is not a finite number")
    assert reasons[35].startswith("monthly_charges: -1e-7 is below the minimum 0")
    assert reasons[38].startswith("num_logins_30d: 2.5e-7 is not a whole number")
    second = str(synth_frame["customer_id"].iloc[1])
    assert reasons[20] == f"customer_id: duplicate customer id {second} (already scored from row 2)"
    assert reasons[44] == f"customer_id: duplicate customer id {second} (already scored from row 2)"
    assert reasons[23] == reasons[24] == "customer_id: the customer id is empty"
    assert "; contract_type: " in reasons[29] and '"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"' in reasons[29]
    assert str(synth_frame["customer_id"].iloc[4]) in set(scores["customer_id"])  # row 32, after a bad row 5


@pytest.mark.skipif(NODE is None, reason="node is needed to run the TypeScript scorer")
def test_reasons_equal_the_typescript_scorer_column_for_column(
    spark: Any, bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """--reasons 3: the same reason_k / reason_k_text columns as `churnops score --reasons 3`, row for row."""
    data = write_parquet(customers(synth_frame, features), tmp_path / "customers.parquet", PARQUET_SPECIAL)
    config = S.SparkScoreConfig(
        bundle=bundle, data=str(data), as_of=AS_OF, out=str(tmp_path / "spark.parquet"), reasons=3
    )
    S.run(config, spark=spark)
    ours = pd.read_parquet(tmp_path / "spark.parquet")
    ts_out = tmp_path / "ts.parquet"
    args = ["--data", str(data), "--model", str(bundle), "--as-of", AS_OF, "--out", str(ts_out), "--reasons", "3"]
    typescript_score(*args, "--no-store", workdir=tmp_path, store_url=f"sqlite://{tmp_path / 'ts.db'}")
    theirs = pd.read_parquet(ts_out)
    columns = S.reason_columns(3)
    assert [c for c in ours.columns if c.startswith("reason_")] == columns
    assert [c for c in theirs.columns if c.startswith("reason_")] == columns
    merged = ours.merge(theirs, on="customer_id", suffixes=("", "_ts"), validate="one_to_one")
    assert len(merged) == len(theirs) > 250
    for column in columns:
        assert (merged[column].fillna("<null>") == merged[f"{column}_ts"].fillna("<null>")).all(), column
    assert merged["reason_1"].notna().mean() > 0.9
    assert merged["reason_1_text"].dropna().str.endswith("raises risk the most").all()


@pytest.mark.skipif(NODE is None, reason="node is needed to run the TypeScript scorer")
def test_csv_text_is_parsed_like_the_typescript_scorer_through_the_cli(
    bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = write_csv(customers(synth_frame, features, 300), tmp_path / "customers.csv", CSV_SPECIAL)
    out = tmp_path / "spark.parquet"
    cmd = [sys.executable, "-m", "churnops_trainer", "spark-score", "--bundle", str(bundle), "--data", str(data)]
    cmd += ["--kind", "daily", "--as-of", AS_OF, "--out", str(out), "--master", "local[2]", "--json"]
    cmd += ["--conf", "spark.sql.shuffle.partitions=4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    quarantine = pd.read_parquet(tmp_path / "spark.quarantine.parquet")
    assert_same_as_typescript(summary, pd.read_parquet(out), quarantine, run_typescript(data, bundle, tmp_path))
    reasons = dict(zip(quarantine["row_number"], quarantine["reason"], strict=True))
    assert reasons[11].startswith('monthly_charges: "abc" is not a number')
    assert reasons[47].startswith('monthly_charges: "1e999" is not a finite number')
    assert reasons[56].startswith('monthly_charges: "Infinity" is not a number')
    assert reasons[59] == "customer_id: the customer id is empty"
    assert not {50, 53, 62} & set(reasons)  # padded and signed numbers, a blank optional value: all scored


def tampered_copy(bundle: Path, target: Path, how: str) -> Path:
    shutil.copytree(bundle, target)
    document = json.loads((target / "bundle.json").read_text())
    if how == "golden":
        document["golden"]["probabilities"][0] += 1e-3
    elif how == "contribution":
        document["golden"]["contributions"][0][0] += 2e-6
    else:
        model = target / "model.onnx"
        model.write_bytes(model.read_bytes() + b"\0")
    (target / "bundle.json").write_text(json.dumps(document))
    return target


@pytest.mark.parametrize(
    ("how", "message"),
    [("golden", "golden vectors differ by more than 1e-06"), ("contribution", "golden contribution of")],
)
def test_a_tampered_bundle_is_refused_on_the_executors(
    spark: Any, bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path, how: str, message: str
) -> None:
    """The driver's check is skipped here on purpose: the executors must refuse the copy they were sent (a golden
    probability off by 1e-3, or one golden contribution off by 2e-6: beyond the 1e-6 every consumer allows)."""
    tampered = tampered_copy(bundle, tmp_path / "tampered", how)
    document = S.load_bundle(tampered)
    data = write_parquet(customers(synth_frame, features, 100), tmp_path / "c.parquet", {})
    config = S.SparkScoreConfig(bundle=tampered, data=str(data), as_of=AS_OF, out="x.parquet")
    frame, text, description = S.read_source(spark, config)
    plan = S.plan_columns(frame, document, text, description)
    shipped = S.ship_bundle(spark, tampered, document)
    with pytest.raises(Exception) as caught:
        S.score_dataframe(spark, frame, document, shipped, plan, "r", "t").scores.count()
    refused = S.refused_on_executor(caught.value)
    assert refused is not None, str(caught.value)[-2000:]
    assert message in str(refused)
    assert "refused on an executor" in str(refused)


def test_a_model_file_that_does_not_match_its_sha256_is_refused(
    spark: Any, bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path
) -> None:
    tampered = tampered_copy(bundle, tmp_path / "tampered", "model")
    data = write_parquet(customers(synth_frame, features, 50), tmp_path / "c.parquet", {})
    config = S.SparkScoreConfig(bundle=tampered, data=str(data), as_of=AS_OF, out=str(tmp_path / "o.parquet"))
    with pytest.raises(BundleError, match=r"sha256 of model\.onnx"):
        S.run(config, spark=spark)
    assert not (tmp_path / "o.parquet").exists()


def test_js_number_formatting_matches_javascript() -> None:
    values = [0.0, -0.0, 1.0, -3.0, 2.5, 0.1, 1e-7, -1e-7, 2.5e-7, 1e-6, 123456789012345680000.0, 1e21, 1.5e300]
    values += [float(np.float32(0.1)), 5e-324, 1 / 3, 72.0, 1e20, 9007199254740993.0, float("nan"), float("inf")]
    expected = [
        "0", "0", "1", "-3", "2.5", "0.1", "1e-7", "-1e-7", "2.5e-7", "0.000001", "123456789012345680000",
        "1e+21", "1.5e+300", "0.10000000149011612", "5e-324", "0.3333333333333333", "72", "100000000000000000000",
        "9007199254740992", "NaN", "Infinity",
    ]  # fmt: skip
    assert [S.js_number(v) for v in values] == expected


def test_text_is_quoted_and_cut_like_json_stringify() -> None:
    assert S.show_text('a"b\n') == '"a\\"b\\n"'
    assert S.show_text("é" * 41) == '"' + "é" * 40 + '…"'
    assert S.show_text("😀" * 21) == '"' + "😀" * 20 + '…"'  # 40 UTF-16 units are 20 emoji
    assert S.js_trim("\ufeff 12\u3000") == "12"


def test_configuration_mistakes_are_refused_before_spark_starts(bundle: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        S.SparkScoreConfig(bundle=bundle, data="x.parquet", as_of="2026-3-1", out="o.parquet")
    with pytest.raises(ValueError, match="nothing to write to"):
        S.SparkScoreConfig(bundle=bundle, data="x.parquet", as_of=AS_OF)
    with pytest.raises(ValueError, match="--table NAME or --query SQL"):
        S.SparkScoreConfig(bundle=bundle, data="jdbc:postgresql://h/db?password=secret", as_of=AS_OF, out="o.parquet")


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    """A private PostgreSQL schema (dropped afterwards); skipped when no server or JDBC driver jar is here."""
    psycopg = pytest.importorskip("psycopg")
    if not PG_JARS:
        pytest.skip("no PostgreSQL JDBC driver jar (apt-get install libpostgresql-jdbc-java)")
    name = f"spark_{os.getpid()}_{np.random.default_rng().integers(1 << 30)}"
    try:
        conn = psycopg.connect(PG_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL}: {exc}")
    conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        conn.execute(f"DROP SCHEMA {name} CASCADE")
        conn.close()


def pg_frame(conn: Any, query: str) -> pd.DataFrame:
    cursor = conn.execute(query)
    return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


def pg_urls(schema: str) -> tuple[str, str]:
    """The same schema as the TS store URL (search_path) and as a JDBC URL (currentSchema)."""
    rest = PG_URL.split("://", 1)[1]
    user, _, hostdb = rest.rpartition("@")
    return (
        f"{PG_URL}?options=-c%20search_path%3D{schema}",
        f"jdbc:postgresql://{hostdb}?user={user or 'postgres'}&currentSchema={schema}",
    )


@pytest.mark.skipif(NODE is None, reason="node is needed to run the TypeScript scorer")
def test_jdbc_table_in_and_store_out_match_the_typescript_scorer(
    spark: Any, bundle: Path, features: list[str], synth_frame: pd.DataFrame, tmp_path: Path, pg_schema: str
) -> None:
    import psycopg

    store_url, jdbc_url = pg_urls(pg_schema)
    rows = customers(synth_frame, features, 200)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {pg_schema}.customers (customer_id text, tenure_months bigint, monthly_charges float8, "
            "total_charges float8, num_support_tickets float8, num_logins_30d float8, contract_type text, "
            "payment_method text)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {pg_schema}.customers VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [tuple(r.values()) for r in rows],
            )
    ts_args = ["--data", store_url, "--table", "customers", "--model", str(bundle), "--as-of", AS_OF]
    typescript_score(*ts_args, workdir=tmp_path, store_url=store_url)
    spark_as_of = "2026-03-02"
    config = S.SparkScoreConfig(bundle=bundle, data=jdbc_url, table="customers", as_of=spark_as_of, jdbc_out=jdbc_url)
    summary = S.run(config, spark=spark)
    assert summary["status"] == "complete" and summary["quarantine_out"] is None

    with psycopg.connect(f"{PG_URL}?options=-c%20search_path%3D{pg_schema}") as conn:
        runs, scores, quarantine = (
            pg_frame(conn, f"SELECT * FROM {table}") for table in ("score_runs ORDER BY as_of", "scores", "quarantine")
        )
    ts_run, spark_run = runs["run_id"]
    assert spark_run == summary["run_id"] == f"daily-{spark_as_of}-{summary['model_name']}-v{summary['model_version']}"
    mine = runs.set_index("run_id").loc[spark_run]
    assert mine["status"] == "complete" and mine["lease_owner"] is None
    assert (mine["rows_scored"], mine["rows_quarantined"]) == (summary["rows_scored"], summary["rows_quarantined"])
    assert mine["rows_read"] == len(rows)
    ts_scores = scores[scores["run_id"] == ts_run].drop(columns="run_id")
    merged = scores[scores["run_id"] == spark_run].merge(ts_scores, on="customer_id", suffixes=("", "_ts"))
    assert len(merged) == len(ts_scores) == summary["rows_scored"] > 150
    assert np.max(np.abs(merged["probability"] - merged["probability_ts"])) <= 1e-6
    assert (merged["band"] == merged["band_ts"]).all() and (merged["decision"] == merged["decision_ts"]).all()
    by_run = {
        run: q.sort_values("row_number")[["row_number", "customer_id", "reason"]]
        for run, q in quarantine.groupby("run_id")
    }
    assert by_run[spark_run].fillna("-").values.tolist() == by_run[ts_run].fillna("-").values.tolist()

    again = S.run(config, spark=spark)
    assert again["status"] == "already_complete"


@pytest.mark.skipif(NODE is None, reason="node is needed to run the TypeScript CLI")
def test_the_cli_scores_on_spark_without_a_master(bundle: Path, synth_frame: pd.DataFrame, tmp_path: Path) -> None:
    """`churnops score --engine spark` as documented, no --master: Spark's default (local) workers must run the
    trainer's interpreter, found without PYSPARK_PYTHON in the environment."""
    data = tmp_path / "customers.parquet"
    synth_frame.head(300).to_parquet(data, index=False)
    out = tmp_path / "spark.parquet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env.update({"CHURNOPS_HOME": str(tmp_path / "home"), "CHURNOPS_LOG_LEVEL": "warn"})
    args = ["score", "--engine", "spark", "--model", str(bundle), "--data", str(data), "--out", str(out)]
    cmd = [NODE or "node", "--import", "tsx", "test/helpers/cli-entry.ts", *args, "--as-of", AS_OF, "--json"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ts_scores, _ = run_typescript(data, bundle, tmp_path)
    merged = pd.read_parquet(out).merge(ts_scores, on="customer_id", suffixes=("", "_ts"), validate="one_to_one")
    assert len(merged) == 300
    assert np.max(np.abs(merged["probability"] - merged["probability_ts"])) <= 1e-6


def test_spark_scores_columns_with_any_names(spark: Any, tmp_path: Path) -> None:
    """Spaces, punctuation, non-ASCII, a leading digit, names equal but for case: each is its own column."""
    from churnops_trainer.data import prepare
    from churnops_trainer.export import write_bundle
    from churnops_trainer.predict import score_frame
    from churnops_trainer.train import TrainConfig, build_bundle_parts, fit_and_evaluate
    from tests.test_honest_data import NASTY, NASTY_SPEC, nasty_frame

    raw = nasty_frame()
    config = TrainConfig(data="memory", spec=NASTY_SPEC)
    outcome = fit_and_evaluate(prepare(raw, NASTY_SPEC), config)
    bundle = write_bundle(tmp_path / "bundle", build_bundle_parts(outcome, config, {}), "nasty", "1", "run")
    data = tmp_path / "nasty.parquet"
    raw.drop(columns=["Churn?"]).to_parquet(data, index=False)
    summary, scores, quarantine = run_spark(spark, data, bundle, tmp_path)
    assert summary["rows_scored"] == len(raw) and len(quarantine) == 0
    assert set(NASTY) == {f["name"] for f in S.load_bundle(bundle)["schema"]["features"]}
    expected, _, _ = score_frame(bundle, raw)
    got = scores.sort_values("customer_id", key=lambda ids: ids.astype(int))["probability"].to_numpy()
    assert np.max(np.abs(got - expected)) <= 1e-6
