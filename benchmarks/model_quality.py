"""Model quality side by side: churnops' own `train` path against its peers, same folds for everyone (JSON).

Usage (from the repository root; `make bench-quality` installs the peers, the trainer's `bench` extra):

    trainer/.venv/bin/python benchmarks/model_quality.py [--tables telco,orange,synthetic] [--repeats 5]
        [--folds 5] [--synthetic-rows 5000] [--out FILE.json]

Per table, on 5×5 repeated stratified folds (drawn over duplicate groups, so identical rows never straddle a
split; the same folds for every model) and on the fixed split (`train`'s stratified 20% test, seed 42):

* churnops: `train_lib.fit_shipped_model` on the fold's training rows, i.e. `train`'s whole model path
  (validation, leak guard, the duplicate-aware inner split, the candidates chosen by CV on the inner training
  rows, the shipped fit on every training row with calibration from cross-fitted scores), then scored on the
  fold's test rows. Only the evaluation model, the baselines, the export and the tracking are left out.
* catboost: CatBoostClassifier defaults (1000 trees, depth 6, learning rate chosen by CatBoost), the
  categorical columns passed as CatBoost categoricals.
* catboost_tuned: the grid depth {4, 6} × learning rate {0.03, 0.1} (l2_leaf_reg 3, at most 3000 trees),
  each fit on a stratified 80% of the fold's training rows with early stopping (100 rounds, ROC AUC) on the
  other 20%; the best point is refit on all the fold's training rows with 1.25 × its best tree count.
* lightgbm, xgboost, histgb: library defaults on the trainer's encoding (median imputation, one-hot).
* logistic: the trainer's logistic baseline (scaled, class-balanced).

CatBoost runs on 2 threads (it is the slowest; its train seconds are wall time on 2 cores), every other model
single-threaded, as churnops' LightGBM. Synthetic data (5000 rows of the churnops recipe) runs 2×5 folds by
default (`--synthetic-repeats`): its bar is the distance to the true probability, not a peer. Printed per table: mean ± sd of ROC AUC and PR AUC over the folds, the
fixed-split ROC/PR AUC, the paired difference churnops − peer on each fold (mean, sd, folds churnops wins),
mean train seconds per fit; for synthetic data also the true churn probability's ROC AUC on the same rows.
The bars of issue 22 are evaluated at the end of each table's block.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from churnops_trainer.data import (
    DatasetSpec,
    PreparedData,
    TargetSpec,
    load_spec,
    prepare,
    read_table,
)
from churnops_trainer.features import build_preprocessor, to_model_frame
from churnops_trainer.models import logistic_pipeline
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.train import (
    TrainConfig,
    fit_shipped_model,
    group_folds,
    split_data,
)
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SEED = 42
#: CatBoost's threads (the machine's two cores; every other model runs single-threaded, as churnops does).
THREADS = 2
CATBOOST_GRID = [
    {"depth": d, "learning_rate": lr} for d in (4, 6) for lr in (0.03, 0.1)
]

Model = Callable[[PreparedData, np.ndarray, np.ndarray, pd.DataFrame], np.ndarray]


def load(name: str, synthetic_rows: int) -> tuple[pd.DataFrame, DatasetSpec]:
    if name == "telco":
        path = DATA / "telco-customer-churn.csv"
        return read_table(str(path)), load_spec(
            REPO / "trainer" / "specs" / "telco.yaml"
        )
    if name == "orange":
        # As a new user would: no spec, no id column, spaces in the column names.
        raw = read_table(str(DATA / "orange-telecom-churn.csv"))
        return raw, DatasetSpec(target=TargetSpec(column="Churn", positive="True"))
    if name == "synthetic":
        frame = generate(SynthConfig(rows=synthetic_rows, seed=SEED, recipe="churnops"))
        spec = DatasetSpec(
            target=TargetSpec(column="churned", positive="1"),
            id_column="customer_id",
            drop=["true_churn_prob"],
        )
        return frame, spec
    raise SystemExit(f"unknown table {name!r} (telco, orange, synthetic)")


def churnops(raw: pd.DataFrame, spec: DatasetSpec) -> Model:
    def fit_predict(
        prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: pd.DataFrame
    ) -> np.ndarray:
        sub = prepare(raw.iloc[train].reset_index(drop=True), spec)
        config = TrainConfig(data="benchmark", spec=spec, seed=SEED)
        pipeline, chosen = fit_shipped_model(sub, config)
        CHOSEN.append(chosen.name)
        frame = to_model_frame(prepared.frame.iloc[test], sub.features)
        return pipeline.predict_proba(frame)[:, 1]

    return fit_predict


CHOSEN: list[str] = []


def _encoded(prepared: PreparedData, train: np.ndarray, test: np.ndarray) -> Any:
    frame = to_model_frame(prepared.frame, prepared.features)
    pre = build_preprocessor(prepared.features).fit(frame.iloc[train])
    return (
        np.asarray(pre.transform(frame.iloc[train]), dtype=np.float64),
        np.asarray(pre.transform(frame.iloc[test]), dtype=np.float64),
    )


def lightgbm(
    prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any
) -> Any:
    from lightgbm import LGBMClassifier

    x_train, x_test = _encoded(prepared, train, test)
    model = LGBMClassifier(random_state=SEED, n_jobs=1, verbose=-1)
    return model.fit(x_train, prepared.y[train]).predict_proba(x_test)[:, 1]


def xgboost(prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any) -> Any:
    from xgboost import XGBClassifier

    x_train, x_test = _encoded(prepared, train, test)
    model = XGBClassifier(random_state=SEED, n_jobs=1, tree_method="hist")
    return model.fit(x_train, prepared.y[train]).predict_proba(x_test)[:, 1]


def histgb(prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train, x_test = _encoded(prepared, train, test)
    model = HistGradientBoostingClassifier(random_state=SEED)
    return model.fit(x_train, prepared.y[train]).predict_proba(x_test)[:, 1]


def logistic(
    prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any
) -> Any:
    frame = to_model_frame(prepared.frame, prepared.features)
    model = logistic_pipeline(prepared.features, SEED)
    model.fit(frame.iloc[train], prepared.y[train])
    return model.predict_proba(frame.iloc[test])[:, 1]


def _catboost_frame(prepared: PreparedData) -> pd.DataFrame:
    frame = to_model_frame(prepared.frame, prepared.features).copy()
    for name in prepared.features.categorical:
        frame[name] = frame[name].astype(str)
    return frame


def _catboost(**params: Any) -> Any:
    from catboost import CatBoostClassifier

    return CatBoostClassifier(
        random_seed=SEED,
        verbose=0,
        thread_count=THREADS,
        allow_writing_files=False,
        **params,
    )


def catboost(
    prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any
) -> Any:
    frame = _catboost_frame(prepared)
    model = _catboost(cat_features=list(prepared.features.categorical))
    model.fit(frame.iloc[train], prepared.y[train])
    return model.predict_proba(frame.iloc[test])[:, 1]


def catboost_tuned(
    prepared: PreparedData, train: np.ndarray, test: np.ndarray, _: Any
) -> Any:
    frame = _catboost_frame(prepared)
    cats = list(prepared.features.categorical)
    y = prepared.y
    fit, hold = train_test_split(
        train, test_size=0.2, random_state=SEED, stratify=y[train]
    )
    best: tuple[float, dict[str, Any], int] | None = None
    for point in CATBOOST_GRID:
        model = _catboost(
            iterations=3000,
            l2_leaf_reg=3,
            eval_metric="AUC",
            od_type="Iter",
            od_wait=100,
            use_best_model=True,
            cat_features=cats,
            **point,
        )
        model.fit(frame.iloc[fit], y[fit], eval_set=(frame.iloc[hold], y[hold]))
        auc = float(roc_auc_score(y[hold], model.predict_proba(frame.iloc[hold])[:, 1]))
        if best is None or auc > best[0]:
            best = (auc, point, int(model.get_best_iteration() or 0) + 1)
    assert best is not None
    _, point, trees = best
    final = _catboost(
        iterations=max(20, int(trees * 1.25)), l2_leaf_reg=3, cat_features=cats, **point
    )
    final.fit(frame.iloc[train], y[train])
    TUNED.append({**point, "trees": int(trees * 1.25)})
    return final.predict_proba(frame.iloc[test])[:, 1]


TUNED: list[dict[str, Any]] = []


def splits(
    prepared: PreparedData, repeats: int, folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """5×5 repeated stratified folds over duplicate groups (repeat r: fold seed r)."""
    groups = prepared.groups
    out = []
    for repeat in range(repeats):
        out += group_folds(groups, prepared.y, folds, repeat)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "mean": round(float(array.mean()), 4),
        "sd": round(float(array.std(ddof=1)), 4),
    }


def run_table(name: str, args: argparse.Namespace) -> dict[str, Any]:
    raw, spec = load(name, args.synthetic_rows)
    prepared = prepare(raw, spec)
    if prepared.n_rows != len(raw):
        raise SystemExit(
            f"{name}: {len(raw) - prepared.n_rows} unlabelled rows; not supported here"
        )
    models: dict[str, Model] = {
        "churnops": churnops(raw, spec),
        "catboost_tuned": catboost_tuned,
        "catboost": catboost,
        "lightgbm": lightgbm,
        "xgboost": xgboost,
        "histgb": histgb,
        "logistic": logistic,
    }
    models = {k: v for k, v in models.items() if k in args.models}
    repeats = args.synthetic_repeats if name == "synthetic" else args.repeats
    cv = splits(prepared, repeats, args.folds)
    fixed = split_data(prepared, TrainConfig(data="benchmark", spec=spec, seed=SEED))
    everything = [*cv, (fixed.train_index, fixed.test_index)]
    oracle = raw["true_churn_prob"].to_numpy() if "true_churn_prob" in raw else None
    roc: dict[str, list[float]] = {m: [] for m in models}
    pr: dict[str, list[float]] = {m: [] for m in models}
    seconds: dict[str, list[float]] = {m: [] for m in models}
    truth: list[float] = []
    for index, (train, test) in enumerate(everything):
        y_test = prepared.y[test]
        for model_name, model in models.items():
            start = time.perf_counter()
            scores = model(prepared, train, test, raw)
            seconds[model_name].append(time.perf_counter() - start)
            roc[model_name].append(float(roc_auc_score(y_test, scores)))
            pr[model_name].append(float(average_precision_score(y_test, scores)))
        if oracle is not None:
            truth.append(float(roc_auc_score(y_test, oracle[test])))
        print(
            json.dumps(
                {
                    "table": name,
                    "split": index if index < len(cv) else "fixed",
                    "roc_auc": {m: round(v[-1], 4) for m, v in roc.items()},
                }
            ),
            file=sys.stderr,
            flush=True,
        )
    n = len(cv)
    result: dict[str, Any] = {
        "rows": prepared.n_rows,
        "positives": prepared.positives,
        "folds": f"{repeats}x{args.folds}",
        "models": {
            m: {
                "roc_auc": _stats(roc[m][:n]),
                "pr_auc": _stats(pr[m][:n]),
                "fixed_split": {
                    "roc_auc": round(roc[m][n], 4),
                    "pr_auc": round(pr[m][n], 4),
                },
                "train_seconds_mean": round(float(np.mean(seconds[m])), 2),
            }
            for m in models
        },
    }
    if "churnops" in models:
        ours = np.asarray(roc["churnops"][:n])
        paired = {}
        for m in models:
            if m == "churnops":
                continue
            diff = ours - np.asarray(roc[m][:n])
            paired[m] = {
                "mean": round(float(diff.mean()), 4),
                "sd": round(float(diff.std(ddof=1)), 4),
                "folds_won": int((diff > 0).sum()),
                "of": n,
            }
        result["paired_roc_auc_churnops_minus"] = paired
        result["churnops_chosen"] = {c: CHOSEN.count(c) for c in sorted(set(CHOSEN))}
        bars: dict[str, bool] = {}
        for m, p in paired.items():
            level = p["mean"] >= 0 if m == "catboost_tuned" else p["mean"] > 0
            bars[f"ahead_of_{m}"] = bool(level and p["folds_won"] * 2 >= n)
        if truth:
            gap = float(np.mean(np.asarray(truth[:n]) - ours))
            result["true_probability_roc_auc"] = _stats(truth[:n])
            result["gap_to_truth"] = round(gap, 4)
            bars = {"within_0.01_of_truth": gap <= 0.01}
        result["bars"] = bars
    if TUNED:
        result["catboost_tuned_choices"] = list(TUNED)
    CHOSEN.clear()
    TUNED.clear()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", default="orange,telco,synthetic")
    parser.add_argument(
        "--models",
        default="churnops,catboost_tuned,catboost,lightgbm,xgboost,histgb,logistic",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--synthetic-rows", type=int, default=5000)
    parser.add_argument("--synthetic-repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.models = args.models.split(",")
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    report: dict[str, Any] = {"tables": {}}
    for table in args.tables.split(","):
        report["tables"][table] = run_table(table, args)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
