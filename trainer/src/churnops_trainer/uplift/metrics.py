"""How well a ranking finds the customers an offer changes, measured on randomised members.

Sort members by score, highest first. After the top k, with n_t(k) treated and n_c(k) control members of whom
c_t(k) and c_c(k) churned, the Qini curve is the churners the offer prevented among the treated so far:

    Q(k) = c_c(k) · n_t(k) / n_c(k) − c_t(k)

(Radcliffe 2007, with churn as the outcome the offer should lower). Both axes are normalised by the number of
members N: x = k / N, y = Q(k) / N. AUUC is the area under that curve; the Qini coefficient is the area between
it and the random ranking's straight line to the same end point, so a random ranking scores 0 and a better
one more. Ties in the score are broken at random (seeded), never by input order.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _order(score: np.ndarray, seed: int) -> np.ndarray:
    jitter = np.random.default_rng(seed).random(len(score))
    return np.lexsort((jitter, -np.asarray(score, dtype=float)))


def qini_curve(
    score: np.ndarray, treated: np.ndarray, churned: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """x = k/N and y = Q(k)/N for k = 0..N."""
    order = _order(score, seed)
    t = treated[order].astype(float)
    c = 1.0 - t
    y = churned[order].astype(float)
    n_t = np.concatenate([[0.0], np.cumsum(t)])
    n_c = np.concatenate([[0.0], np.cumsum(c)])
    c_t = np.concatenate([[0.0], np.cumsum(t * y)])
    c_c = np.concatenate([[0.0], np.cumsum(c * y)])
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, c_c * n_t / np.maximum(n_c, 1), 0.0) - c_t
    n = len(order)
    return np.arange(n + 1) / max(n, 1), q / max(n, 1)


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def auuc(score: np.ndarray, treated: np.ndarray, churned: np.ndarray, seed: int = 0) -> float:
    x, y = qini_curve(score, treated, churned, seed)
    return _trapezoid(x, y)


def qini_coefficient(score: np.ndarray, treated: np.ndarray, churned: np.ndarray, seed: int = 0) -> float:
    x, y = qini_curve(score, treated, churned, seed)
    return _trapezoid(x, y) - float(y[-1]) / 2


def curve_points(
    score: np.ndarray, treated: np.ndarray, churned: np.ndarray, points: int = 51, seed: int = 0
) -> list[list[float]]:
    """The Qini curve at `points` evenly spaced fractions (for reports and the console's chart)."""
    x, y = qini_curve(score, treated, churned, seed)
    grid = np.linspace(0, 1, points)
    return [[round(float(g), 4), round(float(v), 6)] for g, v in zip(grid, np.interp(grid, x, y), strict=True)]


def _stratified(rng: np.random.Generator, treated: np.ndarray) -> np.ndarray:
    t = np.flatnonzero(treated)
    c = np.flatnonzero(~treated)
    return np.concatenate([rng.choice(t, len(t)), rng.choice(c, len(c))])


def bootstrap(
    scores: dict[str, np.ndarray],
    treated: np.ndarray,
    churned: np.ndarray,
    reps: int = 200,
    seed: int = 0,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Qini coefficient and AUUC of each ranking with percentile 95% intervals over `reps` bootstrap samples
    (resampled within each arm); with `baseline`, also each ranking's paired difference to it."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[tuple[float, float]]] = {k: [] for k in scores}
    diffs: dict[str, list[float]] = {k: [] for k in scores if k != baseline}
    for r in range(reps):
        index = _stratified(rng, treated)
        values = {
            k: (
                qini_coefficient(s[index], treated[index], churned[index], r),
                auuc(s[index], treated[index], churned[index], r),
            )
            for k, s in scores.items()
        }
        for k, v in values.items():
            draws[k].append(v)
        if baseline is not None:
            for k in diffs:
                diffs[k].append(values[k][0] - values[baseline][0])
    out: dict[str, Any] = {}
    for k, s in scores.items():
        q = np.array([d[0] for d in draws[k]])
        a = np.array([d[1] for d in draws[k]])
        out[k] = {
            "qini": qini_coefficient(s, treated, churned, seed),
            "qini_ci95": [float(np.quantile(q, 0.025)), float(np.quantile(q, 0.975))],
            "auuc": auuc(s, treated, churned, seed),
            "auuc_ci95": [float(np.quantile(a, 0.025)), float(np.quantile(a, 0.975))],
        }
        if baseline is not None and k in diffs:
            d = np.array(diffs[k])
            out[k][f"qini_minus_{baseline}_ci95"] = [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]
    return out


def deciles(
    predicted: np.ndarray, treated: np.ndarray, churned: np.ndarray, groups: int = 10, seed: int = 0
) -> list[dict[str, Any]]:
    """Realised uplift (control churn rate − treated churn rate) per predicted-uplift decile, highest first."""
    order = _order(predicted, seed)
    out = []
    for g, part in enumerate(np.array_split(order, groups), start=1):
        t = treated[part]
        nt, nc = int(t.sum()), int((~t).sum())
        ct, cc = int(churned[part][t].sum()), int(churned[part][~t].sum())
        realised = cc / nc - ct / nt if nt and nc else None
        out.append(
            {
                "decile": g,
                "rows": len(part),
                "treated": nt,
                "control": nc,
                "treated_churn_rate": ct / nt if nt else None,
                "control_churn_rate": cc / nc if nc else None,
                "predicted_uplift": float(np.mean(predicted[part])) if len(part) else None,
                "realised_uplift": realised,
            }
        )
    return out
