"""One `spark-score` run end to end: verify, read, score, write the files and/or the store, summarise."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from churnops_trainer.export import load_bundle, verify_bundle
from churnops_trainer.logs import get_logger
from churnops_trainer.redact import redact_url
from churnops_trainer.spark.jdbc import store_status, write_store
from churnops_trainer.spark.job import (
    Job,
    ProgressLog,
    ScoredTables,
    SparkScoreConfig,
    active_session,
    iso_moment,
    plan_columns,
    read_source,
    refused_on_executor,
    run_id_of,
    score_dataframe,
    ship_bundle,
    spark_session,
    write_file,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger("spark")


def run(config: SparkScoreConfig, spark: SparkSession | None = None) -> dict[str, Any]:
    """Score config.data on Spark; returns a summary shaped like batch.ts's BatchSummary (snake_case)."""
    started = time.perf_counter()
    document = load_bundle(config.bundle)
    # Fail fast on the driver; the executors check again, on the copy they were sent.
    verification = verify_bundle(config.bundle)
    run_id = run_id_of(config.kind, config.as_of, document)
    # A session this call starts is stopped at the end; one that already ran (a notebook's, a caller's) is kept.
    own_session = spark is None and active_session() is None
    session = spark if spark is not None else spark_session(config.master, config.conf)
    try:
        if config.jdbc_out is not None and store_status(session, config.jdbc_out, run_id) == "complete":
            log.info("run already complete in the store; nothing to do", extra={"run_id": run_id})
            return {
                "run_id": run_id,
                "status": "already_complete",
                "kind": config.kind,
                "as_of": config.as_of,
            }
        frame, text, description = read_source(session, config)
        plan = plan_columns(frame, document, text, description)
        shipped = ship_bundle(session, config.bundle, document)
        verifications = session.sparkContext.accumulator(0)
        scored_at = iso_moment(datetime.now(UTC))
        log.info(
            "spark scoring started",
            extra={"run_id": run_id, "source": description, "master": session.sparkContext.master},
        )
        tables: ScoredTables | None = None
        try:
            with ProgressLog(session, run_id):
                tables = score_dataframe(
                    session,
                    frame,
                    document,
                    shipped,
                    plan,
                    run_id,
                    scored_at,
                    verifications,
                    config.reasons,
                    config.language,
                )
                summary = _write_outputs(session, Job(config, document, run_id, description, tables))
        except Exception as exc:
            refused = refused_on_executor(exc)
            if refused is not None:
                raise refused from None
            raise
        finally:
            if tables is not None:
                tables.unpersist()
    finally:
        if own_session:
            session.stop()
    duration = time.perf_counter() - started
    rows_read = summary["rows_scored"] + summary["rows_quarantined"]
    result = {
        "run_id": run_id,
        "status": "complete",
        "kind": config.kind,
        "as_of": config.as_of,
        "model_name": str(document["model_name"]),
        "model_version": str(document["model_version"]),
        "source": description,
        "rows_read": rows_read,
        **summary,
        "bundle_sha256": verification.sha256,
        "executor_verifications": int(verifications.value),
        "duration_ms": round(duration * 1000, 1),
        "rows_per_second": round(rows_read / duration, 1) if duration > 0 else 0.0,
        "out": config.out,
        "quarantine_out": config.quarantine_path,
        "jdbc_out": redact_url(config.jdbc_out) if config.jdbc_out else None,
    }
    log.info("spark scoring finished", extra={k: result[k] for k in ("run_id", "rows_scored", "rows_quarantined")})
    return result


def _write_outputs(spark: SparkSession, job: Job) -> dict[str, Any]:
    config, tables = job.config, job.tables
    if config.out is not None:
        # The file has the reason_k columns; the store's JSON `reasons` column is for the store only.
        write_file(tables.scores.drop("reasons") if config.reasons > 0 else tables.scores, config.out)
    quarantine_path = config.quarantine_path
    if quarantine_path is not None:
        write_file(tables.quarantine, quarantine_path)
    if config.jdbc_out is not None:
        write_store(spark, job)
    tally = {r["band"]: int(r["n"]) for r in tables.tally.collect()}
    quarantined = tally.pop(None, 0)
    return {"rows_scored": sum(tally.values()), "rows_quarantined": quarantined, "bands": tally}
