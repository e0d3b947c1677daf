"""The candidate models: LightGBM (calibrated, exportable), a logistic baseline and the original recipe."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from lightgbm import Booster, LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from churnops_trainer.features import FeatureSet, build_preprocessor

_THRESHOLD_LINE = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES_LINE = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)

#: LightGBM settings shared by every candidate; regularised for tables of a few thousand rows.
LGBM_DEFAULTS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}

#: Tree shapes cross-validated side by side, in this order, each with and without class weights (overrides of
#: LGBM_DEFAULTS). Stumps (one split per tree) add up to an additive model, which ranks best on near-linear
#: tables such as Telco; a stump learns less per round than a four-leaf tree, hence the larger step. Depth-3
#: trees (up to 8 leaves, 7 splits) catch interactions of up to three features, as on tables of usage columns
#: whose sum matters (Orange telecom); depth stays small so that their exact contributions stay small to ship
#: (contributions.shap_trees: an equivalent tree of at most 2**7 leaves per tree). Stumps run first: with the
#: candidate time budget spent, later shapes are skipped, never the additive one. Class weights are tried for
#: stumps only (BALANCED_SHAPES): on Telco and Orange they moved no deeper shape's CV ROC AUC up (Telco 4 leaves
#: 0.8521 → 0.8523, depth 3 0.8523 → 0.8509; Orange 0.9076 → 0.9026, 0.9089 → 0.9074), and `train` on Telco
#: must stay within 20 s.
TREE_SHAPES: dict[str, dict[str, Any]] = {
    "lightgbm_stumps": {"num_leaves": 2, "learning_rate": 0.1},
    "lightgbm": {},
    "lightgbm_depth3": {"num_leaves": 8, "max_depth": 3, "min_child_samples": 20, "learning_rate": 0.05},
}
BALANCED_SHAPES = frozenset({"lightgbm_stumps"})


def float32_safe_booster(booster: Booster) -> Booster:
    """Round every split threshold DOWN to a float32 value.

    ONNX tree ensembles compare float32 inputs with float32 thresholds. LightGBM keeps float64 thresholds,
    and one that falls between two adjacent float32 values would be rounded up by the converter, sending
    the upper value the other way. For float32 inputs x, `x <= t` is the same as `x <= floor32(t)`, so this
    changes no native decision and makes both sides split identically.
    """

    def round_down(match: re.Match[str]) -> str:
        values = np.array(match.group(1).split(), dtype=np.float64)
        as32 = values.astype(np.float32)
        above = as32.astype(np.float64) > values
        as32[above] = np.nextafter(as32[above], np.float32(-np.inf))
        return "threshold=" + " ".join(repr(float(v)) for v in as32.astype(np.float64))

    text = _THRESHOLD_LINE.sub(round_down, booster.model_to_string())
    # tree_sizes holds byte offsets of the trees, which the new numbers change; without it LightGBM
    # parses the trees sequentially.
    text = _TREE_SIZES_LINE.sub("", text)
    return Booster(model_str=text)


class Float32LGBMClassifier(LGBMClassifier):
    """LGBMClassifier whose fitted trees split identically in float32 (see float32_safe_booster)."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Float32LGBMClassifier:
        super().fit(X, y, **kwargs)
        self._Booster = float32_safe_booster(self._Booster)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The margin (log-odds before calibration), which Platt scaling calibrates.

        Calibrating the margin rather than predict_proba makes logit(calibrated p) affine in the margin, so an
        additive model's per-feature terms are exact contributions to the calibrated log-odds (contributions.py);
        the exported graph computes this very quantity from its trees.
        """
        return np.asarray(self.predict(X, raw_score=True), dtype=np.float64)


def lgbm_estimator(
    seed: int, n_estimators: int, scale_pos_weight: float, monotone: list[int] | None, **overrides: Any
) -> Float32LGBMClassifier:
    """One LightGBM classifier with the shared defaults plus the given overrides."""
    params = {**LGBM_DEFAULTS, **overrides}
    if monotone and any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "advanced"
    return Float32LGBMClassifier(
        n_estimators=n_estimators, scale_pos_weight=scale_pos_weight, random_state=seed, **params
    )


def calibrated_lgbm_pipeline(
    features: FeatureSet, estimator: LGBMClassifier, method: str, folds: Sequence[tuple[np.ndarray, np.ndarray]]
) -> Pipeline:
    """Preprocessing + LightGBM calibrated on predictions cross-fitted over `folds` (one model, one calibrator)."""
    calibrated = CalibratedClassifierCV(estimator, method=method, cv=list(folds), ensemble=False)
    return Pipeline([("pre", build_preprocessor(features)), ("clf", calibrated)])


def logistic_pipeline(features: FeatureSet, seed: int) -> Pipeline:
    """The baseline: one-hot + scaled numerics into a class-balanced logistic regression."""
    return Pipeline(
        [
            ("pre", build_preprocessor(features)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0, random_state=seed)),
        ]
    )


def original_recipe_pipeline(features: FeatureSet, seed: int) -> Any:
    """The tutorial's recipe, as a named reference: SMOTE + StandardScaler + GradientBoosting(100, 5, 0.1).

    It runs on the same encoded features as the other candidates; the resampling happens after encoding,
    as the tutorial's SMOTE ran on its get_dummies output.
    """
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import Pipeline as ImbPipeline

    return ImbPipeline(
        [
            ("pre", build_preprocessor(features)),
            ("smote", SMOTE(random_state=seed)),
            ("scale", StandardScaler()),
            (
                "clf",
                GradientBoostingClassifier(n_estimators=100, max_depth=5, learning_rate=0.1, random_state=seed),
            ),
        ]
    )
