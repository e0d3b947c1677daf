"""Choosing and fitting the uplift learner: cross-validated Qini on the training split, held-out evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from churnops_trainer.uplift import metrics
from churnops_trainer.uplift.data import UpliftData
from churnops_trainer.uplift.learners import LEARNERS, LearnerName, UpliftModel, fit_learner


def strata(data: UpliftData) -> np.ndarray:
    """Arm × outcome: every split keeps each arm's churn rate."""
    return data.treated.astype(int) * 2 + data.churned


def cross_validated_qini(
    data: UpliftData, folds: int, seed: int, learners: tuple[LearnerName, ...] = LEARNERS
) -> dict[str, dict[str, Any]]:
    """Out-of-fold Qini coefficient of each learner (mean and per fold)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results: dict[str, dict[str, Any]] = {}
    for name in learners:
        per_fold = []
        for k, (train, test) in enumerate(splitter.split(data.frame, strata(data))):
            part = data.subset(train)
            model = fit_learner(name, part.frame, part.treated, part.churned, data.features, seed + k)
            held = data.subset(test)
            per_fold.append(metrics.qini_coefficient(model.predict(held.frame), held.treated, held.churned, seed))
        results[name] = {"qini_mean": float(np.mean(per_fold)), "qini_folds": [float(q) for q in per_fold]}
    return results


def choose_learner(cv: dict[str, dict[str, Any]]) -> LearnerName:
    """The learner with the highest mean out-of-fold Qini (ties: the simpler T-learner, listed first)."""
    best = max(cv.items(), key=lambda kv: (kv[1]["qini_mean"], -LEARNERS.index(kv[0])))  # type: ignore[arg-type]
    return best[0]  # type: ignore[return-value]


def choose_and_fit(data: UpliftData, folds: int, seed: int) -> tuple[UpliftModel, dict[str, dict[str, Any]]]:
    """Cross-validate every learner on `data`, then fit the chosen one on all of it."""
    cv = cross_validated_qini(data, folds, seed)
    name = choose_learner(cv)
    return fit_learner(name, data.frame, data.treated, data.churned, data.features, seed), cv


@dataclass(frozen=True)
class Evaluation:
    train: UpliftData
    test: UpliftData
    model: UpliftModel
    cv: dict[str, dict[str, Any]]
    predicted: np.ndarray
    metrics: dict[str, Any]


def split(data: UpliftData, test_size: float, seed: int) -> tuple[UpliftData, UpliftData]:
    index = np.arange(data.n_rows)
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=strata(data))
    return data.subset(np.sort(train)), data.subset(np.sort(test))


def evaluate(data: UpliftData, test_size: float, folds: int, seed: int, reps: int) -> Evaluation:
    """Choose by cross-validated Qini on the training split; measure on the held-out members against ranking by
    churn risk (the probability each member was planned with) and a random ranking."""
    train, test = split(data, test_size, seed)
    model, cv = choose_and_fit(train, folds, seed)
    predicted = model.predict(test.frame)
    rankings: dict[str, np.ndarray] = {"uplift": predicted}
    if np.all(np.isfinite(test.risk)):
        rankings["risk"] = test.risk
    rankings["random"] = np.random.default_rng(seed).random(test.n_rows)
    boot = metrics.bootstrap(
        rankings, test.treated, test.churned, reps=reps, seed=seed, baseline="risk" if "risk" in rankings else None
    )
    counts = test.arm_counts()
    result = {
        "learner": model.name,
        "held_out": {
            "rows": test.n_rows,
            "treatment": counts["treatment"]["rows"],
            "control": counts["control"]["rows"],
            "observed_uplift": (
                counts["control"]["churners"] / counts["control"]["rows"]
                - counts["treatment"]["churners"] / counts["treatment"]["rows"]
            ),
            "mean_predicted_uplift": float(predicted.mean()),
        },
        "rankings": boot,
        "qini": boot["uplift"]["qini"],
        "deciles": metrics.deciles(predicted, test.treated, test.churned, seed=seed),
        "qini_curve": {k: metrics.curve_points(v, test.treated, test.churned, seed=seed) for k, v in rankings.items()},
    }
    return Evaluation(train, test, model, cv, predicted, result)
