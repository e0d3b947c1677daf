"""The Spark job: its configuration and session, the bundle shipped to and verified on the executors, the
input read and planned, and the scoring itself (mapInPandas) into the scored and quarantined tables."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from churnops_trainer.errors import BundleError, DataError
from churnops_trainer.export import BUNDLE_FILE, onnx_session, verify_bundle
from churnops_trainer.logs import get_logger
from churnops_trainer.redact import redact_url
from churnops_trainer.spark.reasons import ReasonWriter
from churnops_trainer.spark.validation import ColumnPlan, SourceKind, ValidationPlan, customer_ids, validate_batch

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger("spark")


# ---------------------------------------------------------------------------------------------------------------
# The bundle on the executors: fetched through SparkFiles, verified once per Python worker, then cached.


@dataclass(frozen=True)
class ShippedBundle:
    """What tasks need to find the job's copy of a bundle: the SparkFiles names and the driver's sha256."""

    json_name: str
    onnx_name: str
    onnx_file: str
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.json_name}:{self.sha256}"


_VERIFIED: dict[str, Any] = {}


def executor_session(shipped: ShippedBundle) -> tuple[Any, bool]:
    """The ONNX session for the shipped bundle, verified on this worker before first use; (session, verified now)."""
    cached = _VERIFIED.get(shipped.key)
    if cached is not None:
        return cached, False
    from pyspark import SparkFiles

    workdir = Path(tempfile.mkdtemp(prefix="churnops-spark-bundle-"))
    try:
        shutil.copyfile(SparkFiles.get(shipped.json_name), workdir / BUNDLE_FILE)
        shutil.copyfile(SparkFiles.get(shipped.onnx_name), workdir / shipped.onnx_file)
        verification = verify_bundle(workdir)
        if verification.sha256 != shipped.sha256:
            raise BundleError(
                f"the bundle this executor received has model sha256 {verification.sha256}, "
                f"but the driver loaded {shipped.sha256}"
            )
        model_bytes = (workdir / shipped.onnx_file).read_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if hashlib.sha256(model_bytes).hexdigest() != shipped.sha256:
        raise BundleError("the model file changed on this executor while it was being verified")
    session = onnx_session(model_bytes)
    _VERIFIED[shipped.key] = session
    return session, True


BROADCAST_DUPLICATES = 2_000_000
SCORED_SCHEMA = (
    "part int, idx long, customer_id string, probability double, band string, decision boolean, reason string"
)


def scored_schema(reasons: int) -> str:
    """SCORED_SCHEMA plus, with --reasons N, reason_1..N, reason_1..N_text and the stored JSON (`reasons`)."""
    if reasons <= 0:
        return SCORED_SCHEMA
    extra = "".join(f", reason_{k} string, reason_{k}_text string" for k in range(1, reasons + 1))
    return f"{SCORED_SCHEMA}{extra}, reasons string"


def reason_columns(reasons: int) -> list[str]:
    """The score file's reason columns, in order (as batch.ts writes them)."""
    return [c for k in range(1, reasons + 1) for c in (f"reason_{k}", f"reason_{k}_text")]


@dataclass(frozen=True)
class BatchScorer:
    """The mapInPandas function: validate, score the valid rows with the verified graph, band and decide."""

    plan: ValidationPlan
    shipped: ShippedBundle
    probability_output: str
    positive_index: int
    bands: tuple[tuple[str, float], ...]
    operating: float
    verifications: Any = None  # a Spark accumulator counting worker-side verifications
    #: --reasons N: the top-N reasons per scored row, from the graph's contribution output.
    reasons: int = 0
    writer: ReasonWriter | None = None
    contribution_output: str | None = None

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        session, verified_now = executor_session(self.shipped)
        if verified_now and self.verifications is not None:
            self.verifications.add(1)
        for batch in batches:
            yield self.score(session, batch)

    def score(self, session: Any, batch: pd.DataFrame) -> pd.DataFrame:
        n = len(batch)
        inputs, reasons = validate_batch(self.plan, batch)
        if self.plan.id_column is not None:
            ids = customer_ids(batch["cid"].to_numpy(dtype=object), self.plan.id_source)
        else:
            ids = [None] * n
        reason_text: list[str | None] = [None] * n
        for i, messages in reasons.items():
            reason_text[i] = "; ".join(messages)
        if self.plan.id_column is not None:
            empty = f"{self.plan.id_column}: the customer id is empty"
            for i in range(n):
                if reason_text[i] is None and ids[i] is None:
                    reason_text[i] = empty
        good = np.fromiter((r is None for r in reason_text), dtype=bool, count=n)
        probability = np.full(n, np.nan)
        reason_cells: dict[str, list[str | None]] = {}
        if good.any():
            feed = {name: values[good] for name, values in inputs.items()}
            if self.reasons > 0 and self.contribution_output is not None:
                output, contributions = session.run([self.probability_output, self.contribution_output], feed)
                reason_cells = self.reason_cells(feed, contributions, good)
            else:
                output = session.run([self.probability_output], feed)[0]
            probability[good] = np.asarray(output[:, self.positive_index], dtype=np.float32).astype(np.float64)
        band = np.full(n, None, dtype=object)
        for name, low in self.bands:
            band[good & (band == None) & (probability >= low)] = name  # noqa: E711 - elementwise
        band[good & (band == None)] = self.bands[-1][0]  # noqa: E711 - elementwise
        mid = batch["mid"].to_numpy(dtype=np.int64)
        return pd.DataFrame(
            {
                "part": batch["pid"].to_numpy(dtype=np.int32),
                "idx": mid & ((1 << 33) - 1),
                "customer_id": ids,
                "probability": np.where(good, probability, np.nan),
                "band": band,
                "decision": pd.array(np.where(good, probability >= self.operating, False), dtype="boolean"),
                "reason": reason_text,
            }
        ).assign(
            probability=lambda f: f["probability"].where(good, None),
            decision=lambda f: f["decision"].where(good, None),
            **reason_cells,
        )

    def reason_cells(self, feed: dict[str, np.ndarray], contributions: np.ndarray, good: np.ndarray) -> dict[str, Any]:
        """reason_k / reason_k_text / reasons columns for the batch (None on rows not scored)."""
        writer = self.writer
        assert writer is not None
        n, m = len(good), self.reasons
        cells: dict[str, list[Any]] = {c: [None] * n for c in [*reason_columns(m), "reasons"]}
        by_input = {col.input_name: col for col in self.plan.columns}
        token = self.plan.missing_token
        columns: dict[str, np.ndarray] = {by_input[k].name: v[:, 0] for k, v in feed.items()}
        numeric = {col.name for col in self.plan.columns if col.numeric}
        rows = np.flatnonzero(good)
        for r, i in enumerate(rows):
            row = contributions[r]
            top = writer.top(row, m)
            values: dict[str, Any] = {}
            for name, column in columns.items():
                v = column[r]
                if name in numeric:
                    values[name] = None if np.isnan(v) else float(v)
                else:
                    values[name] = None if v == token else str(v)
            items = []
            for rank, j in enumerate(top):
                value = writer.value(j, values, token)
                text = writer.text(j, value, rank == 0)
                cells[f"reason_{rank + 1}"][i] = writer.features[j]["name"]
                cells[f"reason_{rank + 1}_text"][i] = text
                items.append((j, value, float(row[j]), text))
            cells["reasons"][i] = writer.json(items)
        return cells


# ---------------------------------------------------------------------------------------------------------------
# The job on the driver.


class SparkScoreConfig(BaseModel):
    """One Spark scoring run, as the CLI (or a caller) describes it."""

    model_config = ConfigDict(frozen=True)

    bundle: Path
    data: str
    table: str | None = None
    query: str | None = None
    kind: Literal["daily", "monthly"] = "daily"
    as_of: str
    out: str | None = None
    quarantine_out: str | None = None
    jdbc_out: str | None = None
    master: str | None = None
    conf: dict[str, str] = {}
    #: --reasons N (0 = none): reason_1..N columns in --out and the JSON `reasons` column in the store.
    reasons: int = Field(default=0, ge=0, le=10)
    language: Literal["en", "ja"] = "en"

    @field_validator("as_of")
    @classmethod
    def _date(cls, value: str) -> str:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"--as-of must be a date YYYY-MM-DD, got '{value}'") from None
        if parsed.isoformat() != value:
            raise ValueError(f"--as-of must be a date YYYY-MM-DD, got '{value}'")
        return value

    @model_validator(mode="after")
    def _targets(self) -> SparkScoreConfig:
        if self.out is None and self.jdbc_out is None:
            raise ValueError("nothing to write to: give --out FILE and/or --jdbc-out URL")
        if self.table is not None and self.query is not None:
            raise ValueError("give --table or --query, not both")
        if self.is_jdbc_source and self.table is None and self.query is None:
            raise ValueError(f"{redact_url(self.data)} is a database: say which rows with --table NAME or --query SQL")
        for path in (self.out, self.quarantine_out):
            if path is not None and output_format(path) is None:
                raise ValueError(f"{path}: expected a path ending in .parquet or .csv")
        return self

    @property
    def is_jdbc_source(self) -> bool:
        return self.data.startswith("jdbc:")

    @property
    def quarantine_path(self) -> str | None:
        """Quarantined rows are never dropped silently: next to --out unless given or stored over JDBC."""
        if self.quarantine_out is not None or self.out is None:
            return self.quarantine_out
        stem, _, _ = self.out.rstrip("/").rpartition(".")
        return f"{stem}.quarantine.parquet"


def output_format(path: str) -> Literal["parquet", "csv"] | None:
    lower = path.lower().rstrip("/")
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    return None


def run_id_of(kind: str, as_of: str, document: dict[str, Any]) -> str:
    """batch.ts's run id: `<kind>-<as_of>-<model_name>-v<version>`."""
    return f"{kind}-{as_of}-{document['model_name']}-v{document['model_version']}"


def spark_session(master: str | None, conf: dict[str, str], app_name: str = "churnops-spark-score") -> SparkSession:
    """A session (or the one spark-submit made); workers run this interpreter unless told otherwise."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Column names are the bundle's exactly: `Plan` and `plan` are two features, not one ambiguous name.
        "spark.sql.caseSensitive": "true",
        # A terminal gets Spark's progress bar; logs get a progress line every PROGRESS_SECONDS (ProgressLog).
        "spark.ui.showConsoleProgress": "true" if sys.stderr.isatty() else "false",
        **conf,
    }
    # Without --master and outside spark-submit (which hands its driver a gateway port and its own master),
    # Spark runs local too. Local workers are forked by this process: they must run this interpreter, which
    # has the trainer; a cluster's workers get theirs from spark-submit's settings.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if (master is None and not submitted) or (master is not None and master.startswith("local")):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def active_session() -> SparkSession | None:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


PROGRESS_SECONDS = 30.0


class ProgressLog:
    """Logs the running stages' finished/total tasks every PROGRESS_SECONDS while a run is on."""

    def __init__(self, spark: SparkSession, run_id: str) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.run_id = run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="churnops-progress", daemon=True)

    def __enter__(self) -> ProgressLog:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.wait(PROGRESS_SECONDS):
            for stage_id in self.tracker.getActiveStageIds():
                info = self.tracker.getStageInfo(stage_id)
                if info is not None:
                    log.info(
                        "spark stage progress",
                        extra={
                            "run_id": self.run_id,
                            "stage": info.name.split(" at ")[0],
                            "tasks_done": info.numCompletedTasks,
                            "tasks": info.numTasks,
                        },
                    )


def ship_bundle(spark: SparkSession, directory: Path, document: dict[str, Any]) -> ShippedBundle:
    """Add the bundle's two files to the job under names unique to its contents, for SparkFiles on executors."""
    sha = document["onnx"]["sha256"]
    onnx_file = document["onnx"]["file"]
    staging = Path(tempfile.mkdtemp(prefix="churnops-ship-"))
    # Named after both files' contents: Spark refuses a second, different file under a name it already shipped.
    digest = hashlib.sha256(sha.encode() + (directory / BUNDLE_FILE).read_bytes()).hexdigest()[:20]
    names = (f"churnops-{digest}-{BUNDLE_FILE}", f"churnops-{digest}-{onnx_file}")
    for name, source in zip(names, (directory / BUNDLE_FILE, directory / onnx_file), strict=True):
        shutil.copyfile(source, staging / name)
        try:
            spark.sparkContext.addFile(str(staging / name))
        except Exception as exc:
            if "already registered" not in str(exc):
                raise
    return ShippedBundle(json_name=names[0], onnx_name=names[1], onnx_file=onnx_file, sha256=sha)


def source_kind(data_type: Any, text: bool) -> SourceKind:
    from pyspark.sql import types as T

    if text:
        return "text"
    if isinstance(data_type, T.LongType):
        return "bigint"
    if isinstance(data_type, (T.IntegerType, T.ShortType, T.ByteType, T.FloatType, T.DoubleType, T.DecimalType)):
        return "number"
    if isinstance(data_type, T.BooleanType):
        return "boolean"
    return "string"


def read_source(spark: SparkSession, config: SparkScoreConfig) -> tuple[DataFrame, bool, str]:
    """The customer table, whether its values are text (CSV), and a description without secrets."""
    data = config.data
    if config.is_jdbc_source:
        reader = spark.read.format("jdbc").option("url", data)
        if (driver := jdbc_driver(data)) is not None:
            reader = reader.option("driver", driver)
        reader = reader.option("query", config.query) if config.query else reader.option("dbtable", config.table)
        return reader.load(), False, f"{redact_url(data)} {config.table or '(query)'}"
    lower = data.lower()
    if re.search(r"\.(csv|tsv|txt)(\.gz)?$", lower):
        frame = (
            spark.read.option("header", "true")
            .option("inferSchema", "false")
            .option("escape", '"')
            .option("sep", "\t" if ".tsv" in lower else ",")
            .csv(data)
        )
        return frame, True, data
    return spark.read.parquet(data), False, data


def plan_columns(frame: DataFrame, document: dict[str, Any], text: bool, description: str) -> ValidationPlan:
    schema = document["schema"]
    types = {f.name: f.dataType for f in frame.schema.fields}
    wanted = [f["name"] for f in schema["features"]]
    id_column = schema.get("id_column")
    if id_column is not None:
        wanted = [id_column, *wanted]
    missing = [c for c in wanted if c not in types]
    if missing:
        raise DataError(
            f"{description} has no column {', '.join(json.dumps(m) for m in missing)} (the model needs it); "
            f"columns present: {', '.join(types)}"
        )
    columns = tuple(ColumnPlan.from_spec(f, source_kind(types[f["name"]], text)) for f in schema["features"])
    id_source = source_kind(types[id_column], text) if id_column is not None else "string"
    return ValidationPlan(columns, id_column, id_source, schema["missing_token"])


def prepared_input(frame: DataFrame, plan: ValidationPlan) -> DataFrame:
    """Positional column names (c0…, cid), NULL flags for floating columns, and each row's place in the input."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    selected = [
        F.spark_partition_id().alias("pid"),
        F.monotonically_increasing_id().alias("mid"),
    ]
    if plan.id_column is not None:
        selected.append(_plain(frame, plan.id_column).alias("cid"))
    for k, col in enumerate(plan.columns):
        selected.append(_plain(frame, col.name).alias(f"c{k}"))
        data_type = frame.schema[col.name].dataType
        # Arrow → pandas turns NULL into NaN in floating columns; the flag keeps "missing" apart from NaN.
        if col.numeric and isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
            selected.append(_column(col.name).isNull().alias(f"n{k}"))
    return frame.select(*selected)


def _column(name: str) -> Any:
    """A column by its exact name: quoted, so spaces, dots and punctuation are part of the name."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _plain(frame: DataFrame, name: str) -> Any:
    """Decimals become doubles (as DuckDB hands them to the TS scorer); dates, times and the like become text."""
    from pyspark.sql import types as T

    column = _column(name)
    data_type = frame.schema[name].dataType
    if isinstance(data_type, T.DecimalType):
        return column.cast("double")
    plain = (
        T.StringType,
        T.LongType,
        T.IntegerType,
        T.ShortType,
        T.ByteType,
        T.FloatType,
        T.DoubleType,
        T.BooleanType,
    )
    return column if isinstance(data_type, plain) else column.cast("string")


@dataclass(frozen=True)
class ScoredTables:
    """The run's two outputs, its band tally (None = quarantined), and the cached frames to unpersist."""

    scores: DataFrame
    quarantine: DataFrame
    tally: DataFrame
    persisted: tuple[DataFrame, ...]

    def unpersist(self) -> None:
        for frame in self.persisted:
            frame.unpersist()


@dataclass(frozen=True)
class Job:
    """One run's scored tables and what the writers need to label them."""

    config: SparkScoreConfig
    document: dict[str, Any]
    run_id: str
    source: str
    tables: ScoredTables


def score_dataframe(
    spark: SparkSession,
    frame: DataFrame,
    document: dict[str, Any],
    shipped: ShippedBundle,
    plan: ValidationPlan,
    run_id: str,
    scored_at: str,
    verifications: Any = None,
    reasons: int = 0,
    language: str = "en",
) -> ScoredTables:
    """Scores and quarantine rows in batch.ts's shape; intermediates stay cached until tables.unpersist()."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    scorer = BatchScorer(
        plan=plan,
        shipped=shipped,
        probability_output=document["onnx"]["probability_output"],
        positive_index=int(document["onnx"].get("positive_index", 1)),
        bands=tuple((b["name"], float(b["min"])) for b in document["bands"]),
        operating=float(document["thresholds"]["operating"]),
        verifications=verifications,
        reasons=reasons,
        writer=ReasonWriter.of(document, language) if reasons > 0 else None,
        contribution_output=(document.get("explanations") or {}).get("output") if reasons > 0 else None,
    )
    scored = (
        prepared_input(frame, plan).mapInPandas(scorer, scored_schema(reasons)).persist(StorageLevel.MEMORY_AND_DISK)
    )
    # Row numbers follow the input order: partition by partition, row by row within one.
    counts = sorted(
        (int(r["part"]), int(r["n"])) for r in scored.groupBy("part").agg(F.count("*").alias("n")).collect()
    )
    offsets, total = [], 0
    for part, n in counts:
        offsets.append((part, total))
        total += n
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "part int, base long")
    numbered = scored.join(F.broadcast(offset_frame), "part").withColumn(
        "row_number", F.col("base") + F.col("idx") + F.lit(1)
    )
    if plan.id_column is None:
        numbered = numbered.withColumn("customer_id", F.col("row_number").cast("string"))
    # The first valid occurrence of an id is scored; later ones are quarantined, naming the row that was scored.
    firsts = (
        numbered.filter(F.col("reason").isNull())
        .groupBy("customer_id")
        .agg(F.min("row_number").alias("first_row"), F.count("*").alias("occurrences"))
        .filter(F.col("occurrences") > 1)
        .select("customer_id", "first_row")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    # Usually no id repeats: the (small) duplicate list is broadcast, so the scored rows are never shuffled.
    joinable = F.broadcast(firsts) if firsts.count() <= BROADCAST_DUPLICATES else firsts
    duplicate = F.col("first_row").isNotNull() & (F.col("row_number") > F.col("first_row"))
    resolved = numbered.join(joinable, "customer_id", "left").withColumn(
        "reason",
        F.when(
            F.col("reason").isNull() & duplicate,
            F.concat(
                F.lit(f"{plan.id_column}: duplicate customer id "),
                F.col("customer_id"),
                F.lit(" (already scored from row "),
                F.col("first_row").cast("string"),
                F.lit(")"),
            ),
        ).otherwise(F.col("reason")),
    )
    scores = resolved.filter(F.col("reason").isNull()).select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "probability",
        "band",
        "decision",
        F.lit(str(document["model_name"])).alias("model_name"),
        F.lit(str(document["model_version"])).alias("model_version"),
        F.lit(scored_at).alias("scored_at"),
        *reason_columns(reasons),
        *(["reasons"] if reasons > 0 else []),
    )
    quarantine = resolved.filter(F.col("reason").isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        "row_number",
        "customer_id",
        "reason",
    )
    outcome = F.when(F.col("reason").isNull(), F.col("band")).otherwise(F.lit(None))
    tally = resolved.groupBy(outcome.alias("band")).agg(F.count("*").alias("n"))
    return ScoredTables(scores=scores, quarantine=quarantine, tally=tally, persisted=(scored, firsts))


def write_file(frame: DataFrame, path: str) -> None:
    writer = frame.write.mode("overwrite")
    if output_format(path) == "csv":
        writer.option("header", "true").csv(path)
    else:
        writer.option("compression", "zstd").parquet(path)


def refused_on_executor(exc: BaseException) -> BundleError | None:
    """A worker's BundleError, surfaced by Spark as a task failure, as the one-line error it is."""
    text = str(exc)
    marker = "BundleError: "
    if marker not in text:
        return None
    message = text.split(marker, 1)[1].strip().splitlines()[0]
    return BundleError(f"refused on an executor: {message}")


# The driver class of a jdbc: URL, for the source reader here and the store writer (spark/jdbc.py).
JDBC_DRIVERS = {
    "jdbc:postgresql:": "org.postgresql.Driver",
    "jdbc:sqlite:": "org.sqlite.JDBC",
    "jdbc:mysql:": "com.mysql.cj.jdbc.Driver",
    "jdbc:mariadb:": "org.mariadb.jdbc.Driver",
}


def jdbc_driver(url: str) -> str | None:
    return next((cls for prefix, cls in JDBC_DRIVERS.items() if url.startswith(prefix)), None)


def iso_moment(moment: datetime) -> str:
    """A moment as runs.ts writes one: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
