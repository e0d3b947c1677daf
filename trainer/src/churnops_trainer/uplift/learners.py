"""T- and X-learners on LightGBM. Both predict the uplift u(x) = p(churn | x, control) − p(churn | x, treated):
how much an offer lowers this customer's churn probability (negative: the offer makes leaving likelier)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.pipeline import Pipeline

from churnops_trainer.features import FeatureSet, build_preprocessor, to_model_frame
from churnops_trainer.models import Float32LGBMClassifier, float32_safe_booster

LearnerName = Literal["t_learner", "x_learner"]
LEARNERS: tuple[LearnerName, ...] = ("t_learner", "x_learner")

#: Small, strongly regularised trees: campaign arms hold hundreds to a few thousand members and the effect is a
#: small difference of two noisy estimates (first setting, 150 trees of 8 leaves and 30 rows per leaf, ranked worse:
#: benchmarks/uplift_cycles.py, docs/uplift.md).
UPLIFT_LGBM: dict[str, Any] = {
    "n_estimators": 80,
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_child_samples": 80,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 5.0,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}


class Float32LGBMRegressor(LGBMRegressor):
    """LGBMRegressor whose trees split identically on float32 inputs (see models.float32_safe_booster)."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Float32LGBMRegressor:
        super().fit(X, y, **kwargs)
        self._Booster = float32_safe_booster(self._Booster)
        return self


def classifier(features: FeatureSet, seed: int) -> Pipeline:
    return Pipeline(
        [("pre", build_preprocessor(features)), ("clf", Float32LGBMClassifier(random_state=seed, **UPLIFT_LGBM))]
    )


def regressor(features: FeatureSet, seed: int) -> Pipeline:
    params = {**UPLIFT_LGBM, "objective": "regression"}
    return Pipeline([("pre", build_preprocessor(features)), ("reg", Float32LGBMRegressor(random_state=seed, **params))])


@dataclass
class UpliftModel:
    """A fitted learner: its pipelines and how they combine (mirrored exactly by the exported graph)."""

    name: LearnerName
    features: FeatureSet
    control: Pipeline
    treated: Pipeline
    #: X-learner only: effect regressors fit on the control arm (tau_c) and the treated arm (tau_t).
    tau_control: Pipeline | None = None
    tau_treated: Pipeline | None = None
    #: X-learner only: the weight of tau_c, the (constant, randomised) probability of treatment.
    propensity: float = 0.5
    notes: list[str] = field(default_factory=list)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = to_model_frame(frame, self.features)
        if self.name == "t_learner":
            return self.control.predict_proba(x)[:, 1] - self.treated.predict_proba(x)[:, 1]
        assert self.tau_control is not None and self.tau_treated is not None
        g = self.propensity
        return g * self.tau_control.predict(x) + (1 - g) * self.tau_treated.predict(x)


def fit_learner(
    name: LearnerName, frame: pd.DataFrame, treated: np.ndarray, churned: np.ndarray, features: FeatureSet, seed: int
) -> UpliftModel:
    """Fit one learner on a randomised sample (treatment assigned at random, at the same rate for everyone)."""
    x = to_model_frame(frame, features)
    xt, xc = x[treated], x[~treated]
    yt, yc = churned[treated], churned[~treated]
    mu_c = classifier(features, seed).fit(xc, yc)
    mu_t = classifier(features, seed + 1).fit(xt, yt)
    if name == "t_learner":
        return UpliftModel(name, features, mu_c, mu_t)
    # X-learner (Künzel et al. 2019), in "reduction" sign: imputed effects per arm, regressed on the features.
    d_treated = mu_c.predict_proba(xt)[:, 1] - yt
    d_control = yc - mu_t.predict_proba(xc)[:, 1]
    tau_t = regressor(features, seed + 2).fit(xt, d_treated)
    tau_c = regressor(features, seed + 3).fit(xc, d_control)
    propensity = float(treated.mean())
    return UpliftModel(name, features, mu_c, mu_t, tau_c, tau_t, propensity)
