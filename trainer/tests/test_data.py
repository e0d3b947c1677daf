"""Data contracts: every bad input is refused with a message naming the column and the count."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.data import DatasetSpec, TargetSpec, fingerprint, load_spec, prepare, read_table
from churnops_trainer.errors import DataError
from tests.conftest import TELCO


def _table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cid": [f"id{i}" for i in range(n)],
            "tenure": rng.integers(0, 60, n).astype(str),
            "plan": rng.choice(["basic", "pro"], n),
            "left": np.where(rng.random(n) < 0.3, "Yes", "No"),
        }
    )


def _spec(**kw: object) -> DatasetSpec:
    return DatasetSpec(target=TargetSpec(column="left", positive="Yes"), id_column="cid", **kw)


def test_rejects_a_missing_target_column_naming_it() -> None:
    spec = DatasetSpec(target=TargetSpec(column="Churned", positive="Yes"))
    with pytest.raises(DataError, match=r"target column 'Churned' not found; the table has 4 columns"):
        prepare(_table(), spec)


def test_rejects_a_one_class_target_with_the_row_count() -> None:
    frame = _table().assign(left="No")
    with pytest.raises(DataError, match=r"positive label 'Yes' does not occur in target column 'left'"):
        prepare(frame, _spec())
    frame = _table().assign(left="Yes")
    with pytest.raises(DataError, match=r"target 'left' has only one class: all 200 rows are 'Yes'"):
        prepare(frame, _spec())


def test_rejects_too_few_rows_with_the_count() -> None:
    with pytest.raises(DataError, match=r"too few rows: 60 labelled rows, at least 100 are needed"):
        prepare(_table(60), _spec())


def test_rejects_a_class_with_too_few_rows() -> None:
    frame = _table().assign(left="No")
    frame.loc[:4, "left"] = "Yes"
    with pytest.raises(DataError, match=r"only 5 row\(s\) are 'Yes'"):
        prepare(frame, _spec())


def test_rejects_text_in_a_numeric_column_naming_column_and_count() -> None:
    frame = _table(400)
    frame.loc[[3, 9, 11], "tenure"] = ["abc", "n/a", "abc"]
    with pytest.raises(DataError, match=r"column 'tenure': 3 non-numeric value\(s\) in a numeric column"):
        prepare(frame, _spec())


def test_declared_numeric_column_with_text_is_refused() -> None:
    frame = _table()
    frame.loc[0, "plan"] = "7"
    with pytest.raises(DataError, match=r"column 'plan': 199 non-numeric"):
        prepare(frame, _spec(columns={"plan": "numeric"}))


def test_rejects_duplicate_ids_with_the_count() -> None:
    frame = _table()
    frame.loc[[1, 2, 3], "cid"] = "dup"
    frame.loc[10, "cid"] = "id11"
    with pytest.raises(DataError, match=r"id column 'cid': 2 duplicated id\(s\) over 5 rows"):
        prepare(frame, _spec())


def test_rejects_an_unknown_id_column_and_unknown_drop_columns() -> None:
    with pytest.raises(DataError, match="id column 'customer' not found"):
        prepare(_table(), _spec().model_copy(update={"id_column": "customer"}))
    with pytest.raises(DataError, match=r"1 column\(s\) named in --drop or the spec are not in the table: \['nope'\]"):
        prepare(_table(), _spec(drop=["nope"]))


def test_blank_values_become_missing_and_are_noted() -> None:
    frame = _table()
    frame.loc[[5, 6], "tenure"] = [" ", ""]
    prepared = prepare(frame, _spec())
    assert "column 'tenure': 2 blank value(s) treated as missing" in prepared.notes
    assert prepared.frame["tenure"].isna().sum() == 2
    assert prepared.numeric_info["tenure"].missing == 2


def test_telco_blank_total_charges_are_missing_and_noted() -> None:
    spec = DatasetSpec(target=TargetSpec(column="Churn", positive="Yes"), id_column="customerID")
    prepared = prepare(read_table(str(TELCO)), spec)
    assert prepared.n_rows == 7043 and prepared.positives == 1869
    assert "column 'TotalCharges': 11 blank value(s) treated as missing" in prepared.notes
    assert prepared.features.numeric == ("SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges")
    assert "customerID" not in prepared.features.raw_columns
    assert prepared.numeric_info["SeniorCitizen"].integer


def test_ids_and_constants_are_excluded_with_a_note() -> None:
    frame = _table(300).assign(region="EU", ticket=[f"T-{i}" for i in range(300)])
    prepared = prepare(frame, _spec())
    assert prepared.excluded["region"] == "constant (a single value)"
    assert "looks like an id" in prepared.excluded["ticket"]
    assert any("column 'ticket' excluded" in n for n in prepared.notes)
    assert prepared.features.raw_columns == ("tenure", "plan")


def test_synthetic_oracle_columns_are_never_features(synth_frame: pd.DataFrame) -> None:
    spec = DatasetSpec(target=TargetSpec(column="churned", positive="1"), id_column="customer_id")
    prepared = prepare(synth_frame, spec)
    assert "true_churn_prob" in prepared.excluded
    assert "true_churn_prob" not in prepared.features.raw_columns


def test_rows_without_a_label_are_left_out_and_noted() -> None:
    frame = _table()
    frame.loc[[0, 1], "left"] = ""
    prepared = prepare(frame, _spec())
    assert prepared.n_rows == 198
    assert "target 'left': 2 row(s) without a label were left out" in prepared.notes


def test_derived_ratio_must_name_numeric_columns() -> None:
    spec = _spec(derived=[{"name": "r", "numerator": "plan", "denominator": "tenure", "offset": 1}])
    with pytest.raises(DataError, match="derived feature 'r': numerator 'plan' is not a numeric feature column"):
        prepare(_table(), spec)


def test_spec_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("target: {column: left}\n")
    with pytest.raises(DataError, match=r"target.positive: Field required"):
        load_spec(path)
    path.write_text("target: {column: left, positive: 'Yes'}\nderived:\n  - {name: r, numerator: a, denominator: b}\n")
    assert load_spec(path).derived[0].offset == 0.0


def test_reads_sqlite_by_table_and_query(tmp_path: Path) -> None:
    frame = _table()
    db = tmp_path / "c.db"
    with sqlite3.connect(db) as conn:
        frame.to_sql("customers", conn, index=False)
    url = f"sqlite:///{db}"
    assert len(read_table(url, table="customers")) == 200
    assert len(read_table(url, query="select * from customers where plan = 'pro'")) == (frame.plan == "pro").sum()
    with pytest.raises(DataError, match="table 'nope' not found"):
        read_table(url, table="nope")
    with pytest.raises(DataError, match="exactly one of --table or --query"):
        read_table(url)


def test_reads_a_postgresql_table() -> None:
    import os
    import uuid

    import sqlalchemy as sa

    # The real server these machines run (CHURNOPS_TEST_PG overrides it); a unique table per run, so parallel
    # test runs never race on one name.
    url = os.environ.get("CHURNOPS_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
    table = f"churnops_trainer_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        _table(120).to_sql(table, conn, index=False)
    try:
        read = read_table(url, table=table)
        assert len(read) == 120
        prepared = prepare(read, _spec())
        assert prepared.features.numeric == ("tenure",)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop table "{table}"'))
        engine.dispose()


def test_fingerprint_depends_on_content_only(tmp_path: Path) -> None:
    frame = _table()
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    assert fingerprint(read_table(str(csv))) == fingerprint(read_table(str(parquet)))
    changed = frame.copy()
    changed.loc[0, "plan"] = "other"
    assert fingerprint(changed) != fingerprint(frame)


def test_labels_are_kept_per_feature_and_a_label_of_an_unknown_column_is_refused() -> None:
    prepared = prepare(_table(), _spec(labels={"plan": {"en": "Plan", "ja": "プラン"}, "tenure": "Tenure"}))
    assert prepared.labels == {"plan": {"en": "Plan", "ja": "プラン"}, "tenure": {"": "Tenure"}}
    with pytest.raises(DataError, match=r"dataset spec labels: 'plna' is neither a column of the table nor a derived"):
        prepare(_table(), _spec(labels={"plna": "Plan"}))
    with pytest.raises(ValueError, match=r"labels\.plan"):
        _spec(labels={"plan": {"fr": "Forfait"}})
