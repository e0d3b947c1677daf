"""Spark scorer throughput: N rows Parquet → Parquet with local[2], beside the TypeScript scorer on the same file.

Prints one JSON object: both scorers' wall time and rows/s, the Spark per-core rate, and from that rate an estimate
of the cluster size and time for 100M and 1B customers. Never asserted in tests.

Usage (from the repository root, with the spark extra installed):
  trainer/.venv/bin/python benchmarks/spark_score.py [--rows 10000000] [--bundle DIR] [--skip-ts]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CHUNK = 1_000_000
# Fixed costs of a real cluster run that local mode does not show: executor start and the job's extra passes
# (row numbering, duplicate check, output commit). Taken as a share added on top of the measured rate.
CLUSTER_OVERHEAD = 0.25
# Executor start, Python workers' bundle verification and job scheduling on a real cluster, paid once per run.
FIXED_START_S = 60.0
TARGETS = (100_000_000, 1_000_000_000)
WINDOWS_MIN = (15, 60)


def trainer(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "churnops_trainer", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"trainer {args[0]} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def make_table(rows: int, path: Path) -> None:
    """The synthetic recipe, generated in 1M-row pieces (distinct seeds and ids) into one Parquet file."""
    from churnops_trainer.synthetic import SynthConfig, generate

    writer: pq.ParquetWriter | None = None
    try:
        for k, start in enumerate(range(0, rows, CHUNK)):
            frame = generate(SynthConfig(rows=min(CHUNK, rows - start), seed=100 + k))
            frame["customer_id"] = [f"C{start + i:010d}" for i in range(len(frame))]
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def run_spark(bundle: Path, data: Path, out: Path) -> dict[str, Any]:
    from churnops_trainer import spark as S

    started = time.perf_counter()
    session = S.spark_session(
        "local[2]", {"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "8"}
    )
    session_s = time.perf_counter() - started
    try:
        config = S.SparkScoreConfig(
            bundle=bundle, data=str(data), as_of="2026-01-01", out=str(out)
        )
        summary = S.run(config, spark=session)
    finally:
        session.stop()
    wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 2),
        "session_start_s": round(session_s, 2),
        "job_s": round(summary["duration_ms"] / 1000, 2),
        "rows_per_s": round(summary["rows_read"] / wall, 1),
        "rows_per_s_excluding_session_start": summary["rows_per_second"],
        "rows_scored": summary["rows_scored"],
        "rows_quarantined": summary["rows_quarantined"],
        "executor_verifications": summary["executor_verifications"],
    }


def run_typescript(
    bundle: Path, data: Path, out: Path, env: dict[str, str]
) -> dict[str, Any]:
    cmd = [
        "node",
        "--import",
        "tsx",
        "test/helpers/cli-entry.ts",
        "score",
        "--data",
        str(data),
        "--model",
        str(bundle),
    ]
    cmd += ["--as-of", "2026-01-01", "--no-store", "--out", str(out), "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr[-1000:]}
    summary = json.loads(done.stdout)
    return {
        "wall_s": round(wall, 2),
        "rows_per_s": round(summary["rowsRead"] / wall, 1),
        "rows_per_s_reported": round(summary["rowsPerSecond"], 1),
        "rows_scored": summary["rowsScored"],
    }


def estimate(per_core: float) -> list[dict[str, Any]]:
    """Cores (and 4-core executors) to score each target within each window, at the measured per-core rate."""
    effective = per_core / (1 + CLUSTER_OVERHEAD)
    out = []
    for rows in TARGETS:
        for minutes in WINDOWS_MIN:
            cores = math.ceil(rows / (effective * (minutes * 60 - FIXED_START_S)))
            out.append(
                {
                    "customers": rows,
                    "window_min": minutes,
                    "cores": cores,
                    "executors_4_cores": math.ceil(cores / 4),
                    "core_hours": round(rows / effective / 3600, 1),
                }
            )
        for cores in (16, 64, 256):
            seconds = FIXED_START_S + rows / (effective * cores)
            out.append(
                {"customers": rows, "cores": cores, "minutes": round(seconds / 60, 1)}
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--bundle",
        help="bundle directory (default: train one on 20,000 synthetic rows)",
    )
    parser.add_argument("--skip-ts", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="churnops-spark-bench-"))
    env = {**os.environ, "CHURNOPS_HOME": str(work / "home")}
    try:
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            trainer(
                "synth",
                "--rows",
                "20000",
                "--seed",
                "1",
                "--out",
                str(work / "train.parquet"),
                env=env,
            )
            bundle = Path(
                trainer(
                    "train", "--data", str(work / "train.parquet"), "--target", "churned", "--positive", "1",
                    "--id-col", "customer_id", "--drop", "true_churn_prob", "--no-register", env=env,
                )["bundle_path"]
            )  # fmt: skip
        data = work / "customers.parquet"
        t0 = time.perf_counter()
        make_table(args.rows, data)
        generate_s = time.perf_counter() - t0
        spark = run_spark(bundle, data, work / "spark-scores.parquet")
        ts = (
            None
            if args.skip_ts
            else run_typescript(bundle, data, work / "ts-scores.parquet", env)
        )
        per_core = spark["rows_per_s"] / 2
        result = {
            "benchmark": "spark_score",
            "rows": args.rows,
            "cores": 2,
            "load_average_at_end": os.getloadavg(),
            "generate_s": round(generate_s, 1),
            "spark_local2": spark,
            "typescript": ts,
            "spark_rows_per_s_per_core": round(per_core, 1),
            "cluster_overhead_assumed": CLUSTER_OVERHEAD,
            "fixed_start_s_assumed": FIXED_START_S,
            "estimates": estimate(per_core),
        }
        print(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
