"""Wall time of the whole `train` command on Telco (CV, no tuning), printed as one JSON object.

Usage (from the repository root): trainer/.venv/bin/python benchmarks/train_speed.py [--runs 3] [--data PATH]

Each run is a fresh process, exactly as a user would run it, in one CHURNOPS_HOME (local MLflow store):
the first run is "cold" (it creates the MLflow database, whose migrations take several seconds once), the
others are "warm". The JSON reports each run's wall time, the trainer's own step timings and the original
recipe's fit time measured in the same run. Bar: ≤ 20 s on the 2-core machine (judged on the warm runs;
the cold run is reported too). Timings on a shared machine are noisy: the load average is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_TELCO = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "telco-customer-churn.csv"
)


def _env(home: str) -> dict[str, str]:
    """This environment with a fresh CHURNOPS_HOME and the default (local) MLflow store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["CHURNOPS_HOME"] = home
    return env


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_TELCO)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="churnops-speed-") as home:
        for _ in range(max(2, args.runs)):
            command = [
                sys.executable, "-m", "churnops_trainer", "train", "--data", str(args.data),
                "--target", "Churn", "--positive", "Yes", "--id-col", "customerID", "--json",
            ]  # fmt: skip
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, env=_env(home)
            )
            wall = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout)
            runs.append(
                {
                    "wall_s": round(wall, 2),
                    "load_average": round(load_before, 2),
                    **result["timings"],
                }
            )
    warm = runs[1:]
    walls = [r["wall_s"] for r in warm]
    print(
        json.dumps(
            {
                "data": str(args.data),
                "cold": runs[0],
                "warm": warm,
                "warm_wall_s_median": round(statistics.median(walls), 2),
                "original_recipe_s_median": round(
                    statistics.median(r["original_recipe_s"] for r in warm), 2
                ),
                "bar_le_20s_warm": statistics.median(walls) <= 20.0,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
