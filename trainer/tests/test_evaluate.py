"""Metrics and thresholds on small hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from churnops_trainer import evaluate as ev

Y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_cuts_sit_between_distinct_scores() -> None:
    cuts = ev.cuts(Y, S)
    assert len(cuts) == 10
    assert cuts[0].threshold == pytest.approx(0.85) and cuts[0].flagged == 1
    assert cuts[3].threshold == pytest.approx(0.55) and cuts[3].recall == 0.75 and cuts[3].precision == 0.75


def test_recall_first_threshold_is_the_most_precise_meeting_the_target() -> None:
    cut = ev.recall_first_cut(ev.cuts(Y, S), 0.75)
    assert cut.threshold == pytest.approx(0.55)
    full = ev.recall_first_cut(ev.cuts(Y, S), 1.0)
    assert full.recall == 1.0 and full.flagged == 7
    flagged = full.threshold <= S
    assert flagged.sum() == 7


def test_tied_scores_are_one_decision() -> None:
    cuts = ev.cuts(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.1]))
    assert [c.flagged for c in cuts] == [3, 4]


def test_accuracy_and_cost_thresholds() -> None:
    cuts = ev.cuts(Y, S)
    assert ev.accuracy_cut(cuts).accuracy == 0.8
    cheap = ev.cost_cut(cuts, offer_cost=1, customer_value=100, save_rate=0.5)
    assert cheap.recall == 1.0
    dear = ev.cost_cut(cuts, offer_cost=60, customer_value=100, save_rate=0.5)
    assert dear.flagged == 0 or dear.precision >= 0.6


def test_lift_and_capture_at_the_top() -> None:
    lift, capture = ev.lift_and_capture(Y, S, 0.2)
    assert capture == 0.5 and lift == pytest.approx(1.0 / 0.4)


def test_metrics_at_a_threshold() -> None:
    m = ev.classification_metrics(Y, S, 0.55)
    assert m["recall"] == 0.75 and m["precision"] == 0.75 and m["accuracy"] == 0.8
    assert 0 < m["brier"] < 1 and m["roc_auc"] == pytest.approx(20 / 24, abs=1e-6)


def test_trade_off_is_stated_plainly() -> None:
    notes = ev.trade_off_notes(ev.cuts(Y, S), 1.0, "test")
    assert notes and "cannot both hold at one threshold" in notes[0]
    easy_y, easy_s = np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    assert ev.trade_off_notes(ev.cuts(easy_y, easy_s), 1.0, "test") == []
