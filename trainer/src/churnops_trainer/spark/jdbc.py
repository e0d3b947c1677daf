"""The JDBC writer: a run claimed in the store's score_runs with a lease, and its scores and quarantine appended."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from churnops_trainer.errors import DataError, TrainerError
from churnops_trainer.redact import redact_url
from churnops_trainer.spark.job import (
    Job,
    SparkScoreConfig,
    iso_moment,
    jdbc_driver,
    reason_columns,
    refused_on_executor,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# ---------------------------------------------------------------------------------------------------------------
# The store over JDBC: the same score_runs / scores / quarantine tables the TS scorer fills (001_scoring.ts). Since
# migration 020 `scores` is a view over the compact score_rows: rows appended to it go through its INSTEAD OF
# trigger (run key and band code looked up per row); Spark keeps no categorical codes (`features` stays null).

LEASE_SECONDS = 120


class StoreRun:
    """One score_runs row, claimed like runs.ts claims it (a lease that a live scorer renews), over JDBC."""

    def __init__(self, spark: SparkSession, url: str, run_id: str) -> None:
        self.url = url
        self.run_id = run_id
        self.owner = f"spark:{socket.gethostname()}:{os.getpid()}"
        jvm = spark.sparkContext._jvm
        driver = jdbc_driver(url)
        if driver is not None:
            # DriverManager cannot see jars added with spark.jars; Spark's registry wraps them so it can.
            jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(driver)
        try:
            self.connection = jvm.java.sql.DriverManager.getConnection(url)
        except Exception as exc:
            raise DataError(f"cannot connect to {redact_url(url)}: {str(exc).splitlines()[0]}") from None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _execute(self, sql: str, *params: Any) -> int:
        statement = self.connection.prepareStatement(sql)
        try:
            for k, value in enumerate(params, start=1):
                if value is None:
                    statement.setNull(k, 12)  # java.sql.Types.VARCHAR
                elif isinstance(value, bool) or not isinstance(value, (int, float)):
                    statement.setString(k, str(value))
                elif isinstance(value, int):
                    statement.setLong(k, value)
                else:
                    statement.setDouble(k, value)
            return int(statement.executeUpdate())
        finally:
            statement.close()

    def _row(self) -> dict[str, Any] | None:
        statement = self.connection.prepareStatement(
            "SELECT status, lease_owner, lease_expires_at FROM score_runs WHERE run_id = ?"
        )
        try:
            statement.setString(1, self.run_id)
            result = statement.executeQuery()
            if not result.next():
                return None
            return {k: result.getString(k) for k in ("status", "lease_owner", "lease_expires_at")}
        except Exception as exc:
            raise DataError(
                f"{redact_url(self.url)} has no usable score_runs table (create the store first, e.g. with "
                f"`churnops score` or `churnops runs`): {str(exc).splitlines()[0]}"
            ) from None
        finally:
            statement.close()

    def status(self) -> str | None:
        row = self._row()
        return None if row is None else row["status"]

    def claim(self, config: SparkScoreConfig, document: dict[str, Any], source: str) -> None:
        """Create or take over the run; a run a live scorer holds is refused; an unfinished one is redone whole."""
        now = datetime.now(UTC)
        row = self._row()
        if row is None:
            self._execute(
                "INSERT INTO score_runs (run_id, kind, as_of, model_name, model_version, source, status, started_at, "
                "rows_read, rows_scored, rows_quarantined, checkpoint_rows) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, 0, 0, 0, 0)",
                self.run_id,
                config.kind,
                config.as_of,
                str(document["model_name"]),
                str(document["model_version"]),
                source,
                iso_moment(now),
            )
        elif row["lease_owner"] is not None and (row["lease_expires_at"] or "") >= iso_moment(now):
            raise TrainerError(
                f"score run {self.run_id} is being scored by {row['lease_owner']} "
                f"(claim holds until {row['lease_expires_at']}); try again later"
            )
        claimed = self._execute(
            "UPDATE score_runs SET status = 'running', error = NULL, source = ?, lease_owner = ?, "
            "lease_expires_at = ? WHERE run_id = ? AND status <> 'complete'",
            source,
            self.owner,
            iso_moment(now + timedelta(seconds=LEASE_SECONDS)),
            self.run_id,
        )
        if claimed != 1:
            raise TrainerError(f"score run {self.run_id} was completed or claimed by another process just now")
        # Spark rewrites a run whole: whatever an interrupted attempt left is removed first.
        # score_rows is the table under the `scores` view (migration 020), keyed by the run's integer key.
        self._execute(
            "DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = ?)", self.run_id
        )
        self._execute("DELETE FROM quarantine WHERE run_id = ?", self.run_id)
        self._renewer = threading.Thread(target=self._renew, name="churnops-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 4):
            expires = iso_moment(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS))
            self._execute(
                "UPDATE score_runs SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?",
                expires,
                self.run_id,
                self.owner,
            )

    def finish(
        self,
        status: Literal["complete", "failed"],
        counts: tuple[int, int],
        duration_ms: float,
        error: str | None,
    ) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        scored, quarantined = counts
        self._execute(
            "UPDATE score_runs SET status = ?, finished_at = ?, rows_read = ?, rows_scored = ?, rows_quarantined = ?, "
            "checkpoint_rows = ?, duration_ms = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL "
            "WHERE run_id = ?",
            status,
            iso_moment(datetime.now(UTC)),
            scored + quarantined,
            scored,
            quarantined,
            scored + quarantined,
            duration_ms,
            error,
            self.run_id,
        )

    def close(self) -> None:
        self._stop.set()
        self.connection.close()


def store_status(spark: SparkSession, url: str, run_id: str) -> str | None:
    probe = StoreRun(spark, url, run_id)
    try:
        return probe.status()
    finally:
        probe.close()


def write_store(spark: SparkSession, job: Job) -> tuple[int, int]:
    """Append scores and quarantine rows to the store's tables under a claimed run, then mark it complete."""
    from pyspark.sql import functions as F

    config, tables = job.config, job.tables
    assert config.jdbc_out is not None
    started = time.perf_counter()
    run = StoreRun(spark, config.jdbc_out, job.run_id)
    try:
        run.claim(config, job.document, job.source)
        try:
            options = {"url": config.jdbc_out, "batchsize": "5000"}
            if (driver := jdbc_driver(config.jdbc_out)) is not None:
                options["driver"] = driver
            scores = tables.scores.withColumn("decision", F.col("decision").cast("int")).drop(
                *reason_columns(config.reasons)
            )
            scores.write.format("jdbc").options(dbtable="scores", **options).mode("append").save()
            tables.quarantine.write.format("jdbc").options(dbtable="quarantine", **options).mode("append").save()
            counts = (tables.scores.count(), tables.quarantine.count())
        except Exception as exc:
            refused = refused_on_executor(exc)
            message = str(refused) if refused is not None else str(exc).splitlines()[0]
            run.finish("failed", (0, 0), (time.perf_counter() - started) * 1000, message[:2000])
            raise
        run.finish("complete", counts, (time.perf_counter() - started) * 1000, None)
        return counts
    finally:
        run.close()
