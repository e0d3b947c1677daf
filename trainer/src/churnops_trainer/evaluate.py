"""Metrics and decision thresholds (plain functions over label and score arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

ACCURACY_GOAL = 0.80


def lift_and_capture(y: np.ndarray, scores: np.ndarray, share: float) -> tuple[float, float]:
    """Lift (churn rate in the top `share` by score over the base rate) and capture (share of all churners)."""
    n = len(y)
    top = max(1, round(n * share))
    order = np.argsort(-scores, kind="mergesort")[:top]
    caught = float(y[order].sum())
    positives = float(y.sum())
    if positives == 0:
        return 0.0, 0.0
    return (caught / top) / (positives / n), caught / positives


def classification_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Test metrics at an operating threshold (a row is flagged when its score >= threshold)."""
    y = np.asarray(y, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    flagged = (scores >= threshold).astype(np.int64)
    out = {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "accuracy": float(accuracy_score(y, flagged)),
        "precision": float(precision_score(y, flagged, zero_division=0)),
        "recall": float(recall_score(y, flagged, zero_division=0)),
        "f1": float(f1_score(y, flagged, zero_division=0)),
        "brier": float(brier_score_loss(y, np.clip(scores, 0, 1))),
    }
    for share in (0.1, 0.2):
        lift, capture = lift_and_capture(y, scores, share)
        pct = round(share * 100)
        out[f"lift_top{pct}"] = lift
        out[f"capture_top{pct}"] = capture
    return {k: round(v, 6) for k, v in out.items()}


@dataclass(frozen=True)
class Cut:
    """Flag every row scoring >= threshold; the counts and rates that follow on the scored rows."""

    threshold: float
    precision: float
    recall: float
    accuracy: float
    flagged: int
    true_positives: int


def cuts(y: np.ndarray, scores: np.ndarray) -> list[Cut]:
    """Every distinct decision on these rows, highest threshold first.

    Each threshold sits halfway between a score and the next lower distinct score, so a decision never
    hinges on a score equal to the threshold (float32 consumers round scores).
    """
    y = np.asarray(y, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_y = scores[order], y[order]
    distinct_end = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    tp = np.cumsum(sorted_y)[distinct_end]
    flagged = distinct_end + 1
    positives, n = int(y.sum()), len(y)
    nxt = np.r_[sorted_scores[distinct_end[:-1] + 1], sorted_scores[-1] - 1e-6]
    thresholds = (sorted_scores[distinct_end] + np.maximum(nxt, 0.0)) / 2.0
    out = []
    for k in range(len(distinct_end)):
        t, f = int(tp[k]), int(flagged[k])
        correct = t + (n - positives) - (f - t)
        out.append(
            Cut(
                threshold=float(thresholds[k]),
                precision=t / f,
                recall=t / positives if positives else 0.0,
                accuracy=correct / n,
                flagged=f,
                true_positives=t,
            )
        )
    return out


def recall_first_cut(all_cuts: list[Cut], recall_target: float) -> Cut:
    """Highest precision among cuts with recall >= target (ties: the higher threshold)."""
    eligible = [c for c in all_cuts if c.recall >= recall_target]
    return max(eligible, key=lambda c: (c.precision, c.threshold))


def accuracy_cut(all_cuts: list[Cut]) -> Cut:
    """The cut with the highest accuracy (ties: the higher threshold)."""
    return max(all_cuts, key=lambda c: (c.accuracy, c.threshold))


def cost_cut(all_cuts: list[Cut], offer_cost: float, customer_value: float, save_rate: float) -> Cut:
    """The cut with the most expected profit: saved churners' value minus the cost of every offer sent."""

    def profit(c: Cut) -> float:
        return c.true_positives * customer_value * save_rate - c.flagged * offer_cost

    return max(all_cuts, key=lambda c: (profit(c), c.threshold))


def precision_at_recall(y: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The best precision a score reaches at recall >= `recall` on these rows (for like-for-like comparison)."""
    return recall_first_cut(cuts(y, scores), recall).precision


def trade_off_notes(all_cuts: list[Cut], recall_target: float, where: str) -> list[str]:
    """Plain statement when accuracy >= 80% and the recall target cannot hold at one threshold."""
    best_at_recall = max((c for c in all_cuts if c.recall >= recall_target), key=lambda c: c.accuracy)
    best = accuracy_cut(all_cuts)
    if best_at_recall.accuracy >= ACCURACY_GOAL:
        return []
    return [
        f"accuracy >= {ACCURACY_GOAL:.2f} and recall >= {recall_target:.2f} cannot both hold at one threshold "
        f"on {where}: at recall >= {recall_target:.2f} the best accuracy is {best_at_recall.accuracy:.3f} "
        f"(precision {best_at_recall.precision:.3f}); accuracy peaks at {best.accuracy:.3f} where recall is "
        f"{best.recall:.3f}. churnops keeps the recall target (missing a churner costs more than an extra offer)."
    ]
