"""Quality bars of the churnops trainer, printed as one JSON object (never asserted in tests).

Usage (from the repository root, after `make setup`):

    trainer/.venv/bin/python benchmarks/train_quality.py [--telco PATH] [--sizes 5000,100000] [--tune-seconds 0]

* Telco, fixed split (seed 42, stratified 20% test): LightGBM test ROC AUC (bar ≥ 0.850), recall at the
  operating point (bar ≥ 0.78), and its precision against the original recipe's precision at equal recall.
* Original-recipe synthetic data (seed 42, each size): test ROC AUC against the AUC of the true churn
  probability on the same test rows (bar: within 0.01), and recall at the operating point (bar ≥ 0.75).

Runs the library directly (no MLflow, no export) so that it measures the model, not the tracking.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from churnops_trainer.data import DatasetSpec, TargetSpec, prepare, read_table
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.train import TrainConfig, fit_and_evaluate
from sklearn.metrics import roc_auc_score

DEFAULT_TELCO = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "telco-customer-churn.csv"
)


def _summary(outcome: Any) -> dict[str, Any]:
    test = outcome.metrics["test"]
    recipe = outcome.baselines["original_recipe"]["test"]
    logistic = outcome.baselines["logistic"]["test"]
    return {
        "chosen": outcome.chosen.name,
        "candidates_cv": {
            c.name: {
                "roc_auc": round(c.roc_auc, 6),
                "precision_at_target": round(c.precision_at_target, 6),
            }
            for c in outcome.candidates
        },
        "n_estimators": outcome.n_estimators,
        "cv_roc_auc": outcome.metrics["cv"]["roc_auc"],
        "threshold": outcome.thresholds["operating"],
        "test": {
            k: test[k]
            for k in (
                "roc_auc",
                "pr_auc",
                "accuracy",
                "precision",
                "recall",
                "f1",
                "brier",
            )
        },
        "logistic_test": {
            k: logistic[k] for k in ("roc_auc", "recall", "precision", "accuracy")
        },
        "original_recipe_test": {
            k: recipe[k]
            for k in (
                "roc_auc",
                "recall",
                "precision",
                "accuracy",
                "precision_at_equal_recall",
            )
        },
        "timings": outcome.timings,
    }


def telco(path: Path, tune_seconds: float) -> dict[str, Any]:
    spec = DatasetSpec(
        target=TargetSpec(column="Churn", positive="Yes"), id_column="customerID"
    )
    prepared = prepare(read_table(str(path)), spec)
    start = time.perf_counter()
    outcome = fit_and_evaluate(
        prepared,
        TrainConfig(
            data=str(path), spec=spec, tune=tune_seconds > 0, tune_seconds=tune_seconds
        ),
    )
    result = _summary(outcome)
    result["seconds"] = round(time.perf_counter() - start, 2)
    test, recipe = result["test"], result["original_recipe_test"]
    result["bars"] = {
        "roc_auc_ge_0.850": test["roc_auc"] >= 0.850,
        "recall_ge_0.78": test["recall"] >= 0.78,
        "precision_above_original_at_equal_recall": test["precision"]
        > recipe["precision_at_equal_recall"],
    }
    return result


def synthetic(rows: int, tune_seconds: float) -> dict[str, Any]:
    frame = generate(SynthConfig(rows=rows, seed=42, recipe="original"))
    spec = DatasetSpec(
        target=TargetSpec(column="churned", positive="1"),
        id_column="customer_id",
        drop=["true_churn_prob"],
    )
    prepared = prepare(frame, spec)
    config = TrainConfig(
        data=f"synthetic-original-{rows}",
        spec=spec,
        tune=tune_seconds > 0,
        tune_seconds=tune_seconds,
    )
    start = time.perf_counter()
    outcome = fit_and_evaluate(prepared, config)
    result = _summary(outcome)
    result["seconds"] = round(time.perf_counter() - start, 2)
    # The data's limit: the true churn probability of the same test rows, as a score.
    oracle = frame["true_churn_prob"].to_numpy()[outcome.split.test_index]
    truth_auc = float(roc_auc_score(outcome.split.y_test, oracle))
    result["true_probability_test_roc_auc"] = round(truth_auc, 6)
    result["gap_to_truth"] = round(truth_auc - result["test"]["roc_auc"], 6)
    result["bars"] = {
        "within_0.01_of_truth": result["gap_to_truth"] <= 0.01,
        "recall_ge_0.75": result["test"]["recall"] >= 0.75,
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--telco", type=Path, default=DEFAULT_TELCO)
    parser.add_argument("--sizes", default="5000,100000")
    parser.add_argument(
        "--tune-seconds",
        type=float,
        default=0.0,
        help="> 0 also runs Optuna within this budget",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    out: dict[str, Any] = {}
    if args.telco.is_file():
        out["telco"] = telco(args.telco, args.tune_seconds)
    else:
        out["telco"] = {"skipped": f"{args.telco} not found"}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        out[f"synthetic_original_{size}"] = synthetic(size, args.tune_seconds)
        print(json.dumps({"progress": f"synthetic {size} done"}), file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
