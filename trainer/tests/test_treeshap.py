"""Exact contributions of a model whose trees test several features (contributions.shap_trees), and the
shipped model fit on every labelled row (issue 22)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.contributions import explained_features
from churnops_trainer.data import prepare
from churnops_trainer.export import (
    identity_gap,
    load_bundle,
    onnx_explained,
    onnx_session,
    verify_bundle,
    write_bundle,
)
from churnops_trainer.features import to_model_frame
from churnops_trainer.models import TREE_SHAPES, calibrated_lgbm_pipeline, lgbm_estimator
from churnops_trainer.onnx_convert import convert_pipeline
from churnops_trainer.train import TrainConfig, build_bundle_parts, fit_and_evaluate, group_folds
from tests.conftest import SYNTH_SPEC

BACKGROUND_ROWS = 120


@pytest.fixture(scope="module")
def deep(synth_frame: pd.DataFrame) -> dict[str, Any]:
    """Depth-3 trees (up to 8 leaves) on the synthetic table, exported with a small background."""
    prepared = prepare(synth_frame, SYNTH_SPEC)
    features = prepared.features
    x = to_model_frame(prepared.frame, features)
    folds = group_folds(prepared.groups, prepared.y, 3, 0)
    estimator = lgbm_estimator(0, 60, 1.0, None, num_leaves=8, max_depth=3, min_child_samples=20)
    pipeline = calibrated_lgbm_pipeline(features, estimator, "sigmoid", folds).fit(x, prepared.y)
    background = x.iloc[:BACKGROUND_ROWS].reset_index(drop=True)
    converted = convert_pipeline(pipeline, features, background)
    session = onnx_session(converted.model.SerializeToString())
    return {
        "features": features,
        "x": x,
        "pipeline": pipeline,
        "background": background,
        "explanations": converted.explanations,
        "session": session,
    }


def test_a_model_with_interactions_has_trees_that_mix_features(deep: dict[str, Any]) -> None:
    booster = deep["pipeline"].named_steps["clf"].calibrated_classifiers_[0].estimator.booster_
    trees = booster.dump_model()["tree_info"]
    mixed = 0
    for tree in trees:
        found: set[int] = set()
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                found.add(node["split_feature"])
                stack += [node["left_child"], node["right_child"]]
        mixed += len(found) > 1
    assert mixed > len(trees) // 2  # otherwise this file would not test TreeSHAP at all


def test_contributions_are_available_and_add_up_to_the_logit(deep: dict[str, Any]) -> None:
    explanations = deep["explanations"]
    assert explanations["available"] is True
    assert "TreeSHAP" in explanations["method"]
    probabilities, contributions = onnx_explained(deep["session"], deep["x"], deep["features"])
    assert np.max(identity_gap(probabilities, contributions, explanations["baseline"])) <= 1e-5
    native = deep["pipeline"].predict_proba(deep["x"])[:, 1]
    assert np.max(np.abs(probabilities - native)) <= 1e-5


def test_the_baseline_is_the_mean_log_odds_over_the_background(deep: dict[str, Any]) -> None:
    probabilities, _ = onnx_explained(deep["session"], deep["background"], deep["features"])
    logits = np.log(probabilities) - np.log1p(-probabilities)
    assert deep["explanations"]["baseline"] == pytest.approx(float(logits.mean()), abs=1e-5)


def _brute_force_shapley(deep: dict[str, Any], row: pd.Series) -> np.ndarray:
    """Interventional Shapley values of the calibrated log-odds over the raw features, by enumeration."""
    pipeline, background = deep["pipeline"], deep["background"]
    calibrated = pipeline.named_steps["clf"].calibrated_classifiers_[0]
    slope = -float(calibrated.calibrators[0].a_)
    pre, estimator = pipeline.named_steps["pre"], calibrated.estimator
    players = [f.name for f in explained_features(deep["features"])]
    n = len(players)
    value: dict[frozenset[str], float] = {}
    for size in range(n + 1):
        for subset in itertools.combinations(players, size):
            hybrid = background.copy()
            for name in subset:
                hybrid[name] = row[name]
            value[frozenset(subset)] = float(estimator.decision_function(pre.transform(hybrid)).mean())
    phi = np.zeros(n)
    for j, name in enumerate(players):
        others = [p for p in players if p != name]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                phi[j] += weight * (value[s | {name}] - value[s])
    return slope * phi


def test_contributions_equal_brute_force_interventional_shapley_values(deep: dict[str, Any]) -> None:
    rows = deep["x"].iloc[[BACKGROUND_ROWS + 1, BACKGROUND_ROWS + 50, BACKGROUND_ROWS + 400]]
    _, contributions = onnx_explained(deep["session"], rows, deep["features"])
    for k in range(len(rows)):
        expected = _brute_force_shapley(deep, rows.iloc[k])
        np.testing.assert_allclose(contributions[k], expected, atol=2e-5)


def test_a_chosen_deeper_model_ships_verified_contributions_fit_on_every_labelled_row(
    synth_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("churnops_trainer.train.TREE_SHAPES", {"lightgbm_depth3": TREE_SHAPES["lightgbm_depth3"]})
    prepared = prepare(synth_frame.head(900), SYNTH_SPEC)
    config = TrainConfig(data="memory", spec=SYNTH_SPEC)
    outcome = fit_and_evaluate(prepared, config)
    assert outcome.chosen.name.startswith("lightgbm_depth3")
    # The shipped model saw every labelled row; the evaluated one did not see the test rows.
    imputer = outcome.pipeline.named_steps["pre"].named_transformers_["num"]
    everything = to_model_frame(prepared.frame, outcome.features)
    medians = np.nanmedian(everything[list(outcome.features.numeric)].to_numpy(dtype=np.float64), axis=0)
    np.testing.assert_allclose(imputer.statistics_, medians, rtol=1e-6)
    assert len(outcome.oof_scores) == prepared.n_rows == len(outcome.oof_y)
    protocol = outcome.metrics["protocol"]
    assert protocol["shipped_model_rows"] == prepared.n_rows
    assert protocol["test_model_rows"] == len(outcome.split.y_train) < prepared.n_rows
    bundle = write_bundle(tmp_path / "bundle", build_bundle_parts(outcome, config, {}), "deep", "1", "run")
    document = load_bundle(bundle)
    assert document["explanations"]["available"] is True
    assert document["explanations"]["background"]["rows"] == prepared.n_rows
    assert len(document["golden"]["contributions"]) == len(document["golden"]["rows"])
    verify_bundle(bundle)
