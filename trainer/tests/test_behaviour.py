"""Model behaviour: invariance, direction, minimum quality, determinism (Made-With-ML style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_trainer.export import bundle_features, load_bundle, onnx_probabilities, onnx_session
from churnops_trainer.features import to_model_frame
from churnops_trainer.predict import score_frame
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.train import TrainConfig, choose_candidate, fit_and_evaluate
from tests.conftest import SYNTH_SPEC


def test_customer_id_does_not_change_the_score(trained: dict[str, Any]) -> None:
    frame = generate(SynthConfig(rows=300, seed=99))
    scores, _, _ = score_frame(Path(trained["bundle_path"]), frame)
    renamed = frame.assign(customer_id=[f"X-{i * 7919}" for i in range(len(frame))])
    again, _, _ = score_frame(Path(trained["bundle_path"]), renamed)
    np.testing.assert_array_equal(scores, again)


def test_more_support_tickets_never_lower_the_risk(trained: dict[str, Any]) -> None:
    directory = Path(trained["bundle_path"])
    doc = load_bundle(directory)
    features = bundle_features(doc)
    session = onnx_session((directory / "model.onnx").read_bytes())
    base = generate(SynthConfig(rows=200, seed=11))
    previous = None
    for tickets in range(0, 9):
        frame = to_model_frame(base.assign(num_support_tickets=tickets), features)
        scores = onnx_probabilities(session, frame, features)
        if previous is not None:
            assert (scores >= previous - 1e-7).all(), f"risk fell when tickets rose to {tickets}"
        previous = scores


def test_minimum_quality_on_a_fixed_split(trained: dict[str, Any]) -> None:
    test = trained["metrics"]["test"]
    assert test["roc_auc"] >= 0.75
    assert test["recall"] >= 0.7
    assert test["roc_auc"] > trained["baselines"]["original_recipe"]["test"]["roc_auc"] - 0.01


def test_same_seed_gives_the_same_metrics(synth_frame: pd.DataFrame) -> None:
    from churnops_trainer.data import prepare

    prepared = prepare(synth_frame.head(800), SYNTH_SPEC)
    config = TrainConfig(data="memory", spec=SYNTH_SPEC, seed=5)
    first = fit_and_evaluate(prepared, config)
    second = fit_and_evaluate(prepared, config)
    assert first.metrics == second.metrics
    assert first.thresholds == second.thresholds
    np.testing.assert_array_equal(first.test_scores, second.test_scores)
    other = fit_and_evaluate(prepared, TrainConfig(data="memory", spec=SYNTH_SPEC, seed=6))
    assert not np.array_equal(other.split.test_index, first.split.test_index)


def test_the_candidate_with_the_best_cv_roc_auc_is_refit_with_its_own_tree_shape(synth_frame: pd.DataFrame) -> None:
    from churnops_trainer.data import prepare
    from churnops_trainer.models import BALANCED_SHAPES, LGBM_DEFAULTS, TREE_SHAPES

    outcome = fit_and_evaluate(prepare(synth_frame.head(600), SYNTH_SPEC), TrainConfig(data="memory", spec=SYNTH_SPEC))
    assert [c.name for c in outcome.candidates] == [
        f"{shape}{weights}"
        for shape in TREE_SHAPES
        for weights in (("", "_balanced") if shape in BALANCED_SHAPES else ("",))
    ]
    # The best by CV ROC AUC, or the best stumps within ADDITIVE_TOLERANCE of it (test_contributions.py).
    assert outcome.chosen is choose_candidate(outcome.candidates)
    final = outcome.pipeline.named_steps["clf"].calibrated_classifiers_[0].estimator
    expected = {**LGBM_DEFAULTS, **TREE_SHAPES[outcome.chosen.name.removesuffix("_balanced")]}
    assert (final.num_leaves, final.learning_rate) == (expected["num_leaves"], expected["learning_rate"])
    assert (final.n_estimators, final.scale_pos_weight) == (outcome.n_estimators, outcome.chosen.scale_pos_weight)


def test_tuning_runs_within_its_budget_and_cost_threshold_is_reported(synth_frame: pd.DataFrame) -> None:
    from churnops_trainer.data import prepare

    prepared = prepare(synth_frame.head(600), SYNTH_SPEC)
    config = TrainConfig(
        data="memory", spec=SYNTH_SPEC, tune=True, tune_seconds=2.0, offer_cost=10.0, customer_value=500.0
    )
    outcome = fit_and_evaluate(prepared, config)
    assert {"learning_rate", "num_leaves", "min_child_samples"} <= set(outcome.params)
    assert outcome.timings["tune"] < 30
    assert 0.0 < outcome.thresholds["cost_based"] < 1.0
    # An offer costing as much as the customer is worth (after the save rate) is never worth sending widely.
    dear = fit_and_evaluate(
        prepared, TrainConfig(data="memory", spec=SYNTH_SPEC, offer_cost=500.0, customer_value=500.0)
    )
    assert dear.thresholds["cost_based"] >= outcome.thresholds["cost_based"]


def test_thresholds_come_from_the_scores_the_calibrator_was_fit_on(synth_frame: pd.DataFrame) -> None:
    """The operating threshold is picked on the final estimator's own cross-fitted scores, not on the
    early-stopped candidates' (whose probabilities sit on another scale)."""
    from sklearn.base import clone
    from sklearn.calibration import _SigmoidCalibration
    from sklearn.model_selection import cross_val_predict

    from churnops_trainer import evaluate as ev
    from churnops_trainer.data import prepare

    config = TrainConfig(data="memory", spec=SYNTH_SPEC)
    outcome = fit_and_evaluate(prepare(synth_frame, SYNTH_SPEC), config)
    # The shipped model is fit on every labelled row (training rows, then test rows) over folds of all of them.
    calibrated = outcome.pipeline.named_steps["clf"].calibrated_classifiers_[0]
    rows = pd.concat([outcome.split.train, outcome.split.test], ignore_index=True)
    x = outcome.pipeline.named_steps["pre"].transform(to_model_frame(rows, outcome.features))
    # Platt scaling calibrates the trees' margin (decision_function), not predict_proba: see models.py.
    margin = cross_val_predict(
        clone(calibrated.estimator), x, outcome.oof_y, cv=outcome.split.all_folds, method="decision_function"
    )
    refit = _SigmoidCalibration().fit(margin, outcome.oof_y)
    assert (refit.a_, refit.b_) == (calibrated.calibrators[0].a_, calibrated.calibrators[0].b_)
    np.testing.assert_allclose(outcome.oof_scores, calibrated.calibrators[0].predict(margin))
    cut = ev.recall_first_cut(ev.cuts(outcome.oof_y, outcome.oof_scores), config.recall_target)
    assert outcome.thresholds["operating"] == round(cut.threshold, 9)
    # The test metrics are the evaluation model's (fit without the test rows), at its own threshold.
    evaluated = outcome.evaluated.named_steps["clf"].calibrated_classifiers_[0]
    x_train = outcome.evaluated.named_steps["pre"].transform(to_model_frame(outcome.split.train, outcome.features))
    margin = cross_val_predict(
        clone(evaluated.estimator), x_train, outcome.split.y_train, cv=outcome.split.folds, method="decision_function"
    )
    cut = ev.recall_first_cut(
        ev.cuts(outcome.split.y_train, evaluated.calibrators[0].predict(margin)), config.recall_target
    )
    assert outcome.metrics["protocol"]["test_threshold"] == round(cut.threshold, 9)
