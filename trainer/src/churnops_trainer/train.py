"""Training: split, cross-validate the candidates, pick a threshold, calibrate, evaluate, export, track.

Protocol (see trainer/README.md): a stratified 20% test split (seeded) that selection never sees; 5-fold
stratified CV on the rest chooses the tree shape, the class-imbalance handling, the number of trees (early stopping) and
the thresholds from out-of-fold predictions; the test split is scored once, at the end.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline

from churnops_trainer import evaluate as ev
from churnops_trainer.contributions import add_labels
from churnops_trainer.data import DatasetSpec, PreparedData, leaky_columns, prepare, read_table
from churnops_trainer.errors import DataError
from churnops_trainer.export import (
    DEFAULT_BANDS,
    BundleParts,
    bands_from_scores,
    calibration_profile,
    export_check,
    golden_rows,
    onnx_explained,
    onnx_probabilities,
    onnx_session,
    percentiles,
    reference_profile,
    rows_frame,
    write_bundle,
)
from churnops_trainer.features import FeatureSet, build_preprocessor, monotone_vector, to_model_frame
from churnops_trainer.logs import get_logger, progress, timed
from churnops_trainer.models import (
    BALANCED_SHAPES,
    TREE_SHAPES,
    calibrated_lgbm_pipeline,
    lgbm_estimator,
    logistic_pipeline,
    original_recipe_pipeline,
)
from churnops_trainer.native import save_native
from churnops_trainer.onnx_convert import convert_pipeline
from churnops_trainer.redact import redact_url

log = get_logger("train")

MAX_TREES = 2000
EARLY_STOPPING_ROUNDS = 100
CALIBRATION = "sigmoid"
#: CV ROC AUC an additive candidate may trail the best by and still be chosen (exact reasons, see choose_candidate).
ADDITIVE_TOLERANCE = 0.005
#: The timed steps of `train` on this thread (load … tracking; `--tune` adds one), for its k/total progress.
TRAIN_STEPS = 9


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` needs; the CLI builds one from its flags."""

    data: str
    spec: DatasetSpec
    table: str | None = None
    query: str | None = None
    recall_target: float = 0.8
    seed: int = 42
    model_name: str = "churn"
    tune: bool = False
    tune_seconds: float = 60.0
    register: bool = True
    offer_cost: float | None = None
    customer_value: float | None = None
    save_rate: float = 0.3
    bands: tuple[tuple[str, float], ...] = DEFAULT_BANDS
    test_size: float = 0.2
    folds: int = 5
    #: Train even when a single column predicts the target almost perfectly (data.leaky_columns).
    allow_leaky: bool = False
    #: Seconds of candidate cross-validation after which tree shapes not yet started are skipped.
    cv_budget_s: float = 60.0


@dataclass
class CandidateCV:
    """Out-of-fold results of one LightGBM variant (`params` override LGBM_DEFAULTS)."""

    name: str
    scale_pos_weight: float
    oof: np.ndarray
    best_iterations: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    roc_auc: float = 0.0
    precision_at_target: float = 0.0


@dataclass
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    ids_test: pd.Series
    train_index: np.ndarray
    test_index: np.ndarray
    #: CV folds over the training rows (indices into `train`), duplicate-group aware.
    folds: list[tuple[np.ndarray, np.ndarray]]
    #: Labels of all labelled rows, training rows first then test rows (the shipped model's fit order).
    all_y: np.ndarray
    #: CV folds over those rows (the shipped model's calibration and thresholds), duplicate-group aware.
    all_folds: list[tuple[np.ndarray, np.ndarray]]


@dataclass
class TrainOutcome:
    """The fitted model, its evaluation and everything the bundle, report and MLflow need."""

    #: The shipped model, fit on every labelled row (the bundle exports it).
    pipeline: Pipeline
    #: The same settings fit without the test rows: test_scores and metrics["test"] are its.
    evaluated: Pipeline
    features: FeatureSet
    prepared: PreparedData
    split: Split
    chosen: CandidateCV
    candidates: list[CandidateCV]
    params: dict[str, Any]
    n_estimators: int
    #: The shipped model's out-of-fold scores over all labelled rows (thresholds, bands), and their labels.
    oof_scores: np.ndarray
    oof_y: np.ndarray
    test_scores: np.ndarray
    thresholds: dict[str, Any]
    #: Risk bands high → low, from the out-of-fold scores and the operating threshold (bands_from_scores).
    bands: list[dict[str, Any]]
    metrics: dict[str, Any]
    baselines: dict[str, Any]
    baseline_scores: dict[str, np.ndarray]
    shap_importance: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


Folds = list[tuple[np.ndarray, np.ndarray]]


def split_data(prepared: PreparedData, config: TrainConfig) -> Split:
    """The stratified test split, drawn over duplicate groups so identical rows land on one side."""
    groups = prepared.groups if len(prepared.groups) == prepared.n_rows else np.arange(prepared.n_rows)
    units, unit_y = _units(groups, prepared.y)
    train_units, test_units = train_test_split(
        np.arange(len(units)), test_size=config.test_size, random_state=config.seed, stratify=unit_y
    )
    train_idx, test_idx = _rows_of(groups, units, train_units), _rows_of(groups, units, test_units)
    y_train = prepared.y[train_idx]
    return Split(
        train=prepared.frame.iloc[train_idx].reset_index(drop=True),
        test=prepared.frame.iloc[test_idx].reset_index(drop=True),
        y_train=y_train,
        y_test=prepared.y[test_idx],
        ids_test=prepared.ids.iloc[test_idx].reset_index(drop=True),
        train_index=train_idx,
        test_index=test_idx,
        folds=group_folds(groups[train_idx], y_train, config.folds, config.seed),
        all_y=np.concatenate([y_train, prepared.y[test_idx]]),
        all_folds=group_folds(
            groups[np.concatenate([train_idx, test_idx])],
            np.concatenate([y_train, prepared.y[test_idx]]),
            config.folds,
            config.seed,
        ),
    )


def group_folds(groups: np.ndarray, y: np.ndarray, n_folds: int, seed: int) -> Folds:
    """Stratified K folds over duplicate groups: no group is in both a fold's fitting and held-out rows.

    Without duplicates this is exactly StratifiedKFold(shuffle=True) over the rows.
    """
    units, unit_y = _units(groups, y)
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return [
        (np.sort(_rows_of(groups, units, fit)), np.sort(_rows_of(groups, units, held_out)))
        for fit, held_out in folds.split(np.zeros(len(units)), unit_y)
    ]


def _units(groups: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct groups in order of first appearance, and each one's label (a group has one label)."""
    units, first = np.unique(groups, return_index=True)
    order = np.argsort(first, kind="stable")
    return units[order], y[first[order]]


def _rows_of(groups: np.ndarray, units: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """Row indices of the picked units, in the picked units' order (rows of one unit in table order)."""
    position = np.full(int(groups.max()) + 1, -1, dtype=np.int64)
    position[units[picked]] = np.arange(len(picked))
    rows = np.flatnonzero(position[groups] >= 0)
    return rows[np.argsort(position[groups[rows]], kind="stable")]


FoldMatrices = list[tuple[np.ndarray, np.ndarray, list[int]]]


def fold_matrices(x: pd.DataFrame, features: FeatureSet, folds: Folds) -> FoldMatrices:
    """Each fold's preprocessed fitting and held-out rows and monotone vector, computed once for all candidates."""
    out: FoldMatrices = []
    for fit_idx, val_idx in folds:
        pre = build_preprocessor(features).fit(x.iloc[fit_idx])
        monotone = monotone_vector(features, list(pre.get_feature_names_out()))
        out.append((pre.transform(x.iloc[fit_idx]), pre.transform(x.iloc[val_idx]), monotone))
    return out


def cross_validate_lgbm(
    x: pd.DataFrame,
    y: np.ndarray,
    features: FeatureSet,
    config: TrainConfig,
    params: dict[str, Any],
    name: str,
    scale_pos_weight: float,
    folds: Folds,
    matrices: FoldMatrices | None = None,
) -> CandidateCV:
    """Out-of-fold probabilities with early stopping on each held-out fold (AUC)."""
    oof = np.zeros(len(y))
    iterations = []
    if matrices is None:
        matrices = fold_matrices(x, features, folds)
    for (fit_idx, val_idx), (x_fit, x_val, monotone) in zip(folds, matrices, strict=True):
        model = lgbm_estimator(config.seed, MAX_TREES, scale_pos_weight, monotone, metric="auc", **params)
        model.fit(x_fit, y[fit_idx], eval_X=(x_val,), eval_y=(y[val_idx],), callbacks=[_early_stopping()])
        iterations.append(int(model.best_iteration_ or MAX_TREES))
        oof[val_idx] = model.predict_proba(x_val)[:, 1]
    result = CandidateCV(name, scale_pos_weight, oof, iterations, dict(params))
    result.roc_auc = float(ev.roc_auc_score(y, oof))
    result.precision_at_target = ev.precision_at_recall(y, oof, config.recall_target)
    return result


def _early_stopping() -> Any:
    from lightgbm import early_stopping

    return early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)


def choose_candidate(candidates: list[CandidateCV]) -> CandidateCV:
    """The best by out-of-fold ROC AUC, unless an additive (stump) candidate is within ADDITIVE_TOLERANCE of it.

    An additive model's per-customer reasons are exact (contributions.py); a model whose trees mix features
    gets none. A difference in CV ROC AUC below the tolerance is within the fold-to-fold noise of one
    candidate (seen on Telco), so it is not worth giving up exact reasons for.
    """

    def rank(c: CandidateCV) -> tuple[float, float]:
        return (c.roc_auc, c.precision_at_target)

    best = max(candidates, key=rank)
    additive = [c for c in candidates if c.params.get("num_leaves") == 2]
    if not additive:
        return best
    stumps = max(additive, key=rank)
    return stumps if best.roc_auc - stumps.roc_auc <= ADDITIVE_TOLERANCE else best


def tune_params(
    x: pd.DataFrame, y: np.ndarray, features: FeatureSet, config: TrainConfig, folds: Folds
) -> dict[str, Any]:
    """Optuna search over LightGBM's main knobs by out-of-fold ROC AUC, within the time budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    matrices = fold_matrices(x, features, folds)

    def objective(trial: Any) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 2, 48, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 150, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.01, 30.0, log=True),
        }
        return cross_validate_lgbm(x, y, features, config, params, "tune", 1.0, folds, matrices).roc_auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial({})  # the defaults first, so tuning can only match or beat them on CV
    study.optimize(objective, timeout=config.tune_seconds, gc_after_trial=False)
    log.info("tuning finished", extra={"trials": len(study.trials), "best_cv_roc_auc": study.best_value})
    return dict(study.best_params)


def select_candidate(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    features: FeatureSet,
    config: TrainConfig,
    folds: Folds,
    timings: dict[str, float],
) -> tuple[CandidateCV, list[CandidateCV], Any, list[str]]:
    """Cross-validate the candidates on the training rows and choose one; returns it, all, its estimator, and
    the tree shapes skipped for the time budget.

    Candidates run in TREE_SHAPES order (stumps first), those of BALANCED_SHAPES (and `--tune`'s) also with
    class weights; once
    `config.cv_budget_s` is spent, the shapes not yet started are skipped (noted in the log and
    a note). The estimator is the chosen settings with 1.1 × the mean early-stopped tree count.
    """
    params: dict[str, Any] = {}
    if config.tune:
        with timed(log, "tune", timings, budget_s=config.tune_seconds):
            params = tune_params(x_train, y_train, features, config, folds)
    balance = float((y_train == 0).sum() / max(1, (y_train == 1).sum()))
    shapes = {"lightgbm": params} if config.tune else TREE_SHAPES
    candidates: list[CandidateCV] = []
    skipped: list[str] = []
    with timed(log, "cross_validation", timings, folds=config.folds):
        started = time.perf_counter()
        matrices = fold_matrices(x_train, features, folds)
        for name, shape in shapes.items():
            if candidates and time.perf_counter() - started > config.cv_budget_s:
                skipped.append(name)
                continue
            weights = (("", 1.0), ("_balanced", balance)) if config.tune or name in BALANCED_SHAPES else (("", 1.0),)
            for suffix, weight in weights:
                candidates.append(
                    cross_validate_lgbm(
                        x_train, y_train, features, config, shape, f"{name}{suffix}", weight, folds, matrices
                    )
                )
    if skipped:
        log.warning("candidates skipped", extra={"skipped": skipped, "cv_budget_s": config.cv_budget_s})
    # Chosen by out-of-fold ROC AUC, the whole ranking: precision at the single recall-target point swung by
    # up to 0.005 between candidates when only the fold seed changed (Telco), more than the candidates differ.
    # The operating threshold is picked afterwards on the chosen model's own cross-fitted scores.
    chosen = choose_candidate(candidates)
    n_estimators = max(20, int(np.mean(chosen.best_iterations) * 1.1))
    log.info(
        "candidate chosen",
        extra={
            "candidate": chosen.name,
            "n_estimators": n_estimators,
            "cv": {c.name: {"roc_auc": c.roc_auc, "precision_at_target": c.precision_at_target} for c in candidates},
        },
    )
    names = list(build_preprocessor(features).fit(x_train.head(500)).get_feature_names_out())
    estimator = lgbm_estimator(
        config.seed, n_estimators, chosen.scale_pos_weight, monotone_vector(features, names), **chosen.params
    )
    return chosen, candidates, estimator, skipped


def fit_shipped_model(prepared: PreparedData, config: TrainConfig) -> tuple[Pipeline, CandidateCV]:
    """`train`'s model alone (no evaluation model, baselines or export): what the quality benchmark scores.

    The same protocol: the leak guard, the duplicate-aware split, the candidates chosen by CV on the training
    rows, then the shipped fit on every labelled row with calibration from its cross-fitted scores.
    """
    from threadpoolctl import threadpool_limits

    guard_leaks(prepared, config.allow_leaky)
    with threadpool_limits(limits=1, user_api="blas"):
        split = split_data(prepared, config)
        features = prepared.features
        x_train, x_test = to_model_frame(split.train, features), to_model_frame(split.test, features)
        chosen, _, estimator, _ = select_candidate(x_train, split.y_train, features, config, split.folds, {})
        x_all = pd.concat([x_train, x_test], ignore_index=True)
        shipped = fit_calibrated(x_all, split.all_y, features, estimator, split.all_folds, config)
    return shipped.pipeline, chosen


def fit_and_evaluate(prepared: PreparedData, config: TrainConfig) -> TrainOutcome:
    """Everything between a validated table and an exportable, evaluated model.

    BLAS runs single-threaded here: on the small dense matrices of customer tables a second OpenBLAS thread
    gains little, and when the cores are busy its spinning made the logistic baseline 6x slower (measured).
    """
    from threadpoolctl import threadpool_limits

    guard_leaks(prepared, config.allow_leaky)
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_and_evaluate(prepared, config)


def guard_leaks(prepared: PreparedData, allow: bool) -> None:
    """Stop (or, when allowed, note) columns that alone predict the target with ROC AUC ≥ LEAK_ROC_AUC."""
    leaky = leaky_columns(prepared)
    if not leaky:
        return
    listed = ", ".join(f"'{name}' (ROC AUC {auc:.3f})" for name, auc in leaky.items())
    target = prepared.target.column
    if not allow:
        raise DataError(
            f"{len(leaky)} column(s) predict '{target}' almost perfectly on their own: {listed}; such a column "
            f"is usually the outcome leaking in. Drop it (--drop) or pass --allow-leaky to train anyway"
        )
    prepared.notes.append(f"trained with --allow-leaky although these column(s) alone predict '{target}': {listed}")


def _fit_and_evaluate(prepared: PreparedData, config: TrainConfig) -> TrainOutcome:
    timings: dict[str, float] = {}
    features = prepared.features
    split = split_data(prepared, config)
    x_train, x_test = to_model_frame(split.train, features), to_model_frame(split.test, features)
    # The original recipe (single-threaded, GIL released while it builds trees) fits on the second core
    # while LightGBM (also single-threaded) is cross-validated on the first.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="original-recipe") as pool:
        recipe = pool.submit(_original_recipe, x_train, split.y_train, x_test, features, config.seed)
        return _fit_lightgbm_and_evaluate(prepared, config, split, x_train, x_test, timings, recipe)


def _fit_lightgbm_and_evaluate(
    prepared: PreparedData,
    config: TrainConfig,
    split: Split,
    x_train: pd.DataFrame,
    x_test: pd.DataFrame,
    timings: dict[str, float],
    recipe: Future[tuple[np.ndarray, float]],
) -> TrainOutcome:
    features = prepared.features
    y_train, y_test = split.y_train, split.y_test
    chosen, candidates, estimator, skipped = select_candidate(x_train, y_train, features, config, split.folds, timings)
    n_estimators = int(estimator.n_estimators)
    if skipped:
        prepared.notes.append(
            f"tree shapes not cross-validated (the {config.cv_budget_s:g} s candidate budget was spent): "
            + ", ".join(skipped)
        )
    # The model scored on the test split is fit without it; the shipped model is then fit on every labelled
    # row with the same settings, its calibration and thresholds from its own cross-fitted scores over folds
    # of all rows (fit_calibrated). Test metrics are the first model's, at its own operating threshold.
    with timed(log, "fit_final", timings):
        evaluation = fit_calibrated(x_train, y_train, features, estimator, split.folds, config)
    with timed(log, "fit_shipped", timings, rows=len(split.all_y)):
        x_all = pd.concat([x_train, x_test], ignore_index=True)
        shipped = fit_calibrated(x_all, split.all_y, features, estimator, split.all_folds, config)
    pipeline, thresholds, oof_scores = shipped.pipeline, shipped.thresholds, shipped.oof_scores
    evaluated = evaluation.pipeline
    calibrated = evaluated.named_steps["clf"].calibrated_classifiers_[0]

    test_scores = evaluated.predict_proba(x_test)[:, 1]
    test = ev.classification_metrics(y_test, test_scores, evaluation.thresholds["operating"])
    pre = evaluated.named_steps["pre"]
    transformed_test = pre.transform(x_test)
    uncalibrated = calibrated.estimator.predict_proba(transformed_test)[:, 1]
    test["brier_uncalibrated"] = round(float(ev.brier_score_loss(y_test, uncalibrated)), 6)
    all_cuts = evaluation.cuts
    operating = evaluation.operating
    metrics: dict[str, Any] = {
        "test": test,
        "test_at_accuracy_optimal": ev.classification_metrics(
            y_test, test_scores, evaluation.thresholds["accuracy_optimal"]
        ),
        "cv": {
            "roc_auc": round(chosen.roc_auc, 6),
            "precision_at_recall_target": round(operating.precision, 6),
            "recall": round(operating.recall, 6),
            "accuracy": round(operating.accuracy, 6),
        },
        "protocol": {
            "test": (
                f"metrics of the model fit on the {len(y_train)} training rows (without the {len(y_test)} test "
                f"rows), at its own operating threshold {evaluation.thresholds['operating']}"
            ),
            "shipped": (
                f"the bundle's model: same settings fit on all {len(split.all_y)} labelled rows; its calibration, "
                "thresholds and bands from its own out-of-fold scores over all rows"
            ),
            "test_threshold": evaluation.thresholds["operating"],
            "test_model_rows": len(y_train),
            "shipped_model_rows": len(split.all_y),
        },
        "notes": list(prepared.notes)
        + ev.trade_off_notes(all_cuts, config.recall_target, "cross-validation (out-of-fold)")
        + _recall_notes(test["recall"], config.recall_target),
    }

    baselines, baseline_scores = _baselines(
        x_train, y_train, x_test, y_test, features, config, split.folds, timings, test, recipe
    )
    metrics["baselines"] = {k: {"test": v["test"]} for k, v in baselines.items()}
    names = list(pre.get_feature_names_out())
    contributions = calibrated.estimator.booster_.predict(transformed_test, pred_contrib=True)[:, :-1]
    importance = dict(zip(names, np.abs(contributions).mean(axis=0).round(6).tolist(), strict=True))
    return TrainOutcome(
        pipeline=pipeline,
        evaluated=evaluated,
        features=features,
        prepared=prepared,
        split=split,
        chosen=chosen,
        candidates=candidates,
        params={**chosen.params, "n_estimators": n_estimators, "scale_pos_weight": chosen.scale_pos_weight},
        n_estimators=n_estimators,
        oof_scores=oof_scores,
        oof_y=split.all_y,
        test_scores=test_scores,
        thresholds=thresholds,
        bands=bands_from_scores(oof_scores, thresholds["operating"], config.bands),
        metrics=metrics,
        baselines=baselines,
        baseline_scores=baseline_scores,
        shap_importance=importance,
        timings=timings,
    )


@dataclass
class Fitted:
    """One calibrated fit (fit_calibrated): the pipeline, its out-of-fold scores and the thresholds from them."""

    pipeline: Pipeline
    oof_scores: np.ndarray
    thresholds: dict[str, Any]
    cuts: Any
    operating: Any


def fit_calibrated(
    x: pd.DataFrame, y: np.ndarray, features: FeatureSet, estimator: Any, folds: Folds, config: TrainConfig
) -> Fitted:
    """Preprocessing + `estimator` on all of x, Platt-calibrated on its cross-fitted margin over `folds`.

    Thresholds must be picked on scores distributed like the final model's: the out-of-fold predictions of the
    very estimator (same tree count, same folds) whose cross-fitted scores the calibrator was fit on. The
    early-stopped candidates' OOF scores are not: a fold model with fewer trees has its probabilities squeezed
    toward the base rate, and a threshold from them under-shot the recall target on test.
    """
    pipeline = calibrated_lgbm_pipeline(features, clone(estimator), CALIBRATION, folds)
    pipeline.fit(x, y)
    calibrator = pipeline.named_steps["clf"].calibrated_classifiers_[0].calibrators[0]
    if calibrator.a_ >= 0:
        raise RuntimeError("calibration is not increasing in the model's score; refusing to use it")
    transformed = pipeline.named_steps["pre"].transform(x)
    raw_oof = cross_val_predict(clone(estimator), transformed, y, cv=folds, method="decision_function")
    oof_scores = calibrator.predict(raw_oof)
    all_cuts = ev.cuts(y, oof_scores)
    operating = ev.recall_first_cut(all_cuts, config.recall_target)
    thresholds: dict[str, Any] = {
        "operating": round(operating.threshold, 9),
        "recall_target": config.recall_target,
        "accuracy_optimal": round(ev.accuracy_cut(all_cuts).threshold, 9),
        "cost_based": None,
    }
    if config.offer_cost is not None and config.customer_value is not None:
        cost = ev.cost_cut(all_cuts, config.offer_cost, config.customer_value, config.save_rate)
        thresholds["cost_based"] = round(cost.threshold, 9)
    return Fitted(pipeline, oof_scores, thresholds, all_cuts, operating)


def _recall_notes(test_recall: float, target: float) -> list[str]:
    """Say so when the threshold chosen on the training rows' out-of-fold scores misses the target on test."""
    if test_recall >= target:
        return []
    return [
        f"test recall {test_recall:.3f} is below the recall target {target:.2f}: the operating threshold, chosen on "
        "out-of-fold predictions of the training rows, caught fewer of the test split's churners; expect about "
        "this recall on new customers (raise --recall-target for a margin)"
    ]


def _original_recipe(
    x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame, features: FeatureSet, seed: int
) -> tuple[np.ndarray, float]:
    """Fit the original recipe and score the test rows; returns the scores and the seconds it took."""
    with timed(log, "original_recipe"):
        start = time.perf_counter()
        recipe = original_recipe_pipeline(features, seed).fit(x_train, y_train)
        scores = recipe.predict_proba(x_test)[:, 1]
    return scores, round(time.perf_counter() - start, 3)


def _baselines(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_test: pd.DataFrame,
    y_test: np.ndarray,
    features: FeatureSet,
    config: TrainConfig,
    folds: Folds,
    timings: dict[str, float],
    ours: dict[str, float],
    recipe: Future[tuple[np.ndarray, float]],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The logistic baseline (its own recall-first threshold) and the original recipe (its own 0.5 rule)."""
    with timed(log, "logistic", timings):
        logistic = logistic_pipeline(features, config.seed)
        oof = cross_val_predict(logistic, x_train, y_train, cv=folds, method="predict_proba")[:, 1]
        logistic_threshold = ev.recall_first_cut(ev.cuts(y_train, oof), config.recall_target).threshold
        logistic.fit(x_train, y_train)
        logistic_scores = logistic.predict_proba(x_test)[:, 1]
    recipe_scores, timings["original_recipe_s"] = recipe.result()
    recipe_test = ev.classification_metrics(y_test, recipe_scores, 0.5)
    recipe_test["precision_at_equal_recall"] = round(ev.precision_at_recall(y_test, recipe_scores, ours["recall"]), 6)
    logistic_test = ev.classification_metrics(y_test, logistic_scores, logistic_threshold)
    logistic_test["precision_at_equal_recall"] = round(
        ev.precision_at_recall(y_test, logistic_scores, ours["recall"]), 6
    )
    baselines = {
        "logistic": {
            "test": logistic_test,
            "cv": {"roc_auc": round(float(ev.roc_auc_score(y_train, oof)), 6)},
            "threshold": logistic_threshold,
        },
        "original_recipe": {"test": recipe_test, "threshold": 0.5},
    }
    return baselines, {"logistic": logistic_scores, "original_recipe": recipe_scores}


def build_bundle_parts(outcome: TrainOutcome, config: TrainConfig, timings: dict[str, float]) -> BundleParts:
    """Convert to ONNX, check it against the native pipeline, and assemble bundle.json's content."""
    features, prepared = outcome.features, outcome.prepared
    # The shipped model was fit on every labelled row: those rows are its reference (background, profile).
    everything = pd.concat([outcome.split.train, outcome.split.test], ignore_index=True)
    with timed(log, "export", timings):
        background = to_model_frame(everything, features)
        converted = convert_pipeline(outcome.pipeline, features, background)
        model, compaction = converted.model, converted.compaction
        model_bytes = model.SerializeToString()
        graph_inputs = [i.name for i in model.graph.input]
        session = onnx_session(model_bytes)
        integer = {n: info.integer for n, info in prepared.numeric_info.items()}
        golden = golden_rows(outcome.split.test, features, integer, config.seed)
        golden_frame = rows_frame(golden, features)
        check_frame = pd.concat([to_model_frame(outcome.split.test, features), golden_frame], ignore_index=True)
        native = outcome.pipeline.predict_proba(check_frame)[:, 1]
        check = export_check(session, native, check_frame, features, outcome.thresholds["operating"])
        golden_probabilities = onnx_probabilities(session, golden_frame, features)
        explanations = converted.explanations
        golden_block: dict[str, Any] = {"rows": golden, "probabilities": [float(p) for p in golden_probabilities]}
        if explanations["available"]:
            explanations["background"]["source"] = "all labelled rows (what the shipped model was fit on)"
            _, contributions = onnx_explained(session, golden_frame, features)
            golden_block["contributions"] = contributions.tolist()
            _add_percentiles(explanations, outcome, everything, background)
            add_labels(explanations, prepared.labels)
    log.info("export check passed", extra=check)
    schema = {
        "id_column": prepared.id_column,
        "target": {"column": prepared.target.column, "positive": prepared.target.positive},
        "missing_token": features.missing_token,
        "features": _schema_features(prepared, dict(zip(features.raw_columns, graph_inputs, strict=True))),
        "derived": [{"name": r.name, "definition": r.definition} for r in features.ratios],
        "transformed_feature_names": list(outcome.pipeline.named_steps["pre"].get_feature_names_out()),
        "excluded": prepared.excluded,
    }
    metrics = {k: v for k, v in outcome.metrics.items() if k in ("test", "cv", "baselines", "notes", "protocol")}
    return BundleParts(
        model_bytes=model_bytes,
        schema=schema,
        thresholds=outcome.thresholds,
        bands=outcome.bands,
        metrics=metrics,
        reference={
            **reference_profile(everything, features, outcome.oof_scores),
            "calibration": calibration_profile(outcome.split.y_test, outcome.test_scores),
        },
        golden=golden_block,
        export_check=check,
        tree_compaction=asdict(compaction),
        explanations=explanations,
    )


def _add_percentiles(
    explanations: dict[str, Any], outcome: TrainOutcome, rows: pd.DataFrame, background: pd.DataFrame
) -> None:
    """Training percentiles of each numeric and derived feature, for reason texts ("shorter than 90%")."""
    features = outcome.features
    derived: dict[str, np.ndarray] = {}
    if features.ratios:
        step = outcome.pipeline.named_steps["pre"].named_transformers_["ratio"]
        values = step.transform(background[list(features.ratio_inputs)])
        derived = {r.name: values[:, k] for k, r in enumerate(features.ratios)}
    for feature in explanations["features"]:
        if feature["kind"] == "numeric":
            feature["percentiles"] = percentiles(rows[feature["name"]].to_numpy(dtype=np.float64))
        elif feature["kind"] == "derived":
            feature["percentiles"] = percentiles(derived[feature["name"]])


def _schema_features(prepared: PreparedData, input_names: dict[str, str]) -> list[dict[str, Any]]:
    """The schema's features in graph-input order, each under its column name and its graph input's name."""
    out: list[dict[str, Any]] = []
    for name in prepared.features.numeric:
        info = prepared.numeric_info[name]
        out.append(
            {
                "name": name,
                "input_name": input_names[name],
                "kind": "numeric",
                "integer": info.integer,
                "required": info.missing == 0,
                "min": info.minimum,
                "max": info.maximum,
                "lower_bound": info.lower_bound,
                "upper_bound": info.upper_bound,
            }
        )
    for name in prepared.features.categorical:
        missing = int(prepared.frame[name].isna().sum())
        out.append(
            {
                "name": name,
                "input_name": input_names[name],
                "kind": "categorical",
                "required": missing == 0,
                "categories": prepared.categories[name],
            }
        )
    return out


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate, export, report and track one model; returns the `train --json` result."""
    with progress(TRAIN_STEPS + int(config.tune)):
        return _train(config)


def _train(config: TrainConfig) -> dict[str, Any]:
    from churnops_trainer import registry
    from churnops_trainer.report import write_report

    started = time.perf_counter()
    timings: dict[str, float] = {}
    settings = registry.Settings.from_env()
    with timed(log, "load", timings, source=_describe_source(config)):
        raw = read_table(config.data, config.table, config.query)
        prepared = prepare(raw, config.spec)
    log.info(
        "data validated",
        extra={
            "rows": prepared.n_rows,
            "positives": prepared.positives,
            "features": len(prepared.features.raw_columns),
        },
    )
    outcome = fit_and_evaluate(prepared, config)
    timings.update(outcome.timings)
    parts = build_bundle_parts(outcome, config, timings)

    with timed(log, "tracking_setup", timings):
        registry.client(settings).search_experiments(max_results=1)  # creates/migrates a local store once
    with registry.tracked_run(settings, run_name=f"{config.model_name}-train") as (mlclient, run):
        run_id = run.info.run_id
        with timed(log, "report", timings):
            report_path = write_report(settings.report_dir(run_id), outcome, config, run_id)
        with timed(log, "tracking", timings):
            _log_run(mlclient, run_id, outcome, config, report_path.parent)
        version = "local"
        if config.register:
            headline = {**outcome.metrics["test"], "threshold": outcome.thresholds["operating"]}
            version = registry.register_version(mlclient, config.model_name, run, headline)
        bundle_dir = settings.bundle_dir(config.model_name, version if config.register else f"run-{run_id}")
        try:
            write_bundle(bundle_dir, parts, config.model_name, version, run_id)
            mlclient.log_artifacts(run_id, str(bundle_dir), registry.BUNDLE_ARTIFACTS)
            if config.register:
                registry.publish(mlclient, config.model_name, version, bundle_dir)
        except BaseException:
            # A version without its bundle must not stay registered for `resolve` to find.
            if config.register:
                mlclient.delete_model_version(config.model_name, version)
            raise
        timings["total_s"] = round(time.perf_counter() - started, 3)
        mlclient.log_metric(run_id, "train_seconds", timings["total_s"])
    log.info("training finished", extra={"run_id": run_id, "version": version, "seconds": timings["total_s"]})
    return _result(outcome, config, run_id, version, bundle_dir, report_path, timings)


def _describe_source(config: TrainConfig) -> str:
    if config.table or config.query:
        return f"{redact_url(config.data)} ({'table ' + config.table if config.table else 'query'})"
    return redact_url(config.data)


def _log_run(mlclient: Any, run_id: str, outcome: TrainOutcome, config: TrainConfig, report_dir: Path) -> None:
    """Parameters, metrics, tags, the report and the native pipeline, in a few batched calls."""
    from mlflow.entities import Metric, Param, RunTag

    from churnops_trainer import registry

    now = int(time.time() * 1000)
    prepared = outcome.prepared
    params = {
        "data": _describe_source(config),
        "target": prepared.target.column,
        "positive": prepared.target.positive,
        "id_column": prepared.id_column,
        "seed": config.seed,
        "recall_target": config.recall_target,
        "test_size": config.test_size,
        "folds": config.folds,
        "candidate": outcome.chosen.name,
        "calibration": CALIBRATION,
        "tuned": config.tune,
        "numeric_features": ",".join(outcome.features.numeric),
        "categorical_features": ",".join(outcome.features.categorical),
        "derived_features": ",".join(r.name for r in outcome.features.ratios),
        **{f"lgbm_{k}": v for k, v in outcome.params.items()},
    }
    metrics = {f"test_{k}": v for k, v in outcome.metrics["test"].items()}
    metrics.update({f"cv_{k}": v for k, v in outcome.metrics["cv"].items()})
    for name, baseline in outcome.baselines.items():
        metrics.update({f"{name}_test_{k}": v for k, v in baseline["test"].items()})
    metrics.update({f"threshold_{k}": v for k, v in outcome.thresholds.items() if isinstance(v, float)})
    tags = {
        "data_fingerprint": prepared.fingerprint,
        "data_rows": str(prepared.n_rows),
        "git_commit": registry.git_commit() or "unknown",
        "model_name": config.model_name,
        "mlflow.note.content": "\n".join(outcome.metrics["notes"]) or "no notes",
    }
    mlclient.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)[:500]) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    mlclient.log_artifacts(run_id, str(report_dir), "report")
    with tempfile.TemporaryDirectory(prefix="churnops-native-") as tmp:
        path = Path(tmp) / registry.NATIVE_FILE
        save_native(outcome.pipeline, path)
        (Path(tmp) / "features.json").write_text(
            json.dumps({"numeric": outcome.features.numeric, "categorical": outcome.features.categorical})
        )
        mlclient.log_artifacts(run_id, tmp, registry.NATIVE_ARTIFACTS)


def _result(
    outcome: TrainOutcome,
    config: TrainConfig,
    run_id: str,
    version: str,
    bundle_dir: Path,
    report_path: Path,
    timings: dict[str, float],
) -> dict[str, Any]:
    prepared = outcome.prepared
    return {
        "model_name": config.model_name,
        "version": version,
        "run_id": run_id,
        "bundle_path": str(bundle_dir),
        "report_path": str(report_path),
        "threshold": outcome.thresholds["operating"],
        "thresholds": outcome.thresholds,
        "bands": outcome.bands,
        "metrics": {k: outcome.metrics[k] for k in ("test", "cv", "notes", "protocol")},
        "baselines": outcome.baselines,
        "candidates": [
            {
                "name": c.name,
                "cv_roc_auc": round(c.roc_auc, 6),
                "cv_precision_at_recall_target": round(c.precision_at_target, 6),
            }
            for c in outcome.candidates
        ],
        "chosen": outcome.chosen.name,
        "data": {
            "rows": prepared.n_rows,
            "positives": prepared.positives,
            "fingerprint": prepared.fingerprint,
            "features": list(outcome.features.raw_columns),
            "excluded": prepared.excluded,
        },
        "timings": {
            "total_s": timings.get("total_s"),
            "original_recipe_s": timings.get("original_recipe_s"),
            **{k: v for k, v in timings.items() if k not in ("total_s", "original_recipe_s")},
        },
    }
