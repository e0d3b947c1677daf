"""The synthetic generator: deterministic, faithful to its recipes, snapshots and drift knobs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.synthetic import SynthConfig, generate

COLUMNS = [
    "customer_id",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_support_tickets",
    "num_logins_30d",
    "contract_type",
    "payment_method",
]


def test_same_seed_gives_the_same_table_and_another_seed_does_not() -> None:
    a = generate(SynthConfig(rows=500, seed=3))
    pd.testing.assert_frame_equal(a, generate(SynthConfig(rows=500, seed=3)))
    assert not a.equals(generate(SynthConfig(rows=500, seed=4)))


def test_original_recipe_follows_the_tutorials_process() -> None:
    frame = generate(SynthConfig(rows=40_000, seed=42, recipe="original"))
    assert list(frame.columns) == [*COLUMNS, "true_churn_prob", "churned"]
    assert frame["tenure_months"].between(1, 71).all()
    assert frame["monthly_charges"].between(20, 100).all() and frame["total_charges"].between(100, 7000).all()
    assert abs(frame["num_support_tickets"].mean() - 2) < 0.05 and abs(frame["num_logins_30d"].mean() - 15) < 0.1
    expected = np.clip(0.3 - 0.005 * frame["tenure_months"] + 0.002 * frame["num_support_tickets"], 0.05, 0.5)
    np.testing.assert_allclose(frame["true_churn_prob"], expected)
    assert abs(frame["churned"].mean() - expected.mean()) < 0.01
    shares = frame["contract_type"].value_counts(normalize=True)
    assert set(shares.index) == {"month-to-month", "one_year", "two_year"} and shares.min() > 0.3


def test_churnops_recipe_is_realistic() -> None:
    frame = generate(SynthConfig(rows=20_000, seed=1))
    assert 0.20 <= frame["churned"].mean() <= 0.27
    assert {"opted_out", "customer_value"} <= set(frame.columns)
    by_contract = frame.groupby("contract_type")["churned"].mean()
    assert by_contract["month-to-month"] > by_contract["one_year"] > by_contract["two_year"]
    ratio = frame["total_charges"] / (frame["monthly_charges"] * frame["tenure_months"])
    assert ratio.dropna().between(0.9, 1.06).all()
    assert frame["total_charges"].isna().sum() > 0


def test_monthly_snapshots_follow_the_same_customers() -> None:
    frame = generate(SynthConfig(rows=800, seed=5, months=3))
    assert sorted(frame["snapshot_month"].unique()) == [1, 2, 3]
    m1 = frame[frame.snapshot_month == 1].set_index("customer_id")
    m2 = frame[frame.snapshot_month == 2].set_index("customer_id")
    assert set(m2.index) == set(m1.index[m1["churned"] == 0])
    assert (m2["tenure_months"] == m1.loc[m2.index, "tenure_months"] + 1).all()


def test_feature_drift_shifts_one_distribution() -> None:
    base = generate(SynthConfig(rows=5000, seed=2))
    drifted = generate(SynthConfig(rows=5000, seed=2, drift_feature="monthly_charges", drift_shift=15))
    assert drifted["monthly_charges"].mean() == pytest.approx(base["monthly_charges"].mean() + 15, abs=0.05)
    assert (drifted["tenure_months"] == base["tenure_months"]).all()
    categorical = generate(SynthConfig(rows=5000, seed=2, drift_feature="contract_type", drift_shift=0.5))
    assert (categorical["contract_type"] == "month-to-month").mean() > (
        base["contract_type"] == "month-to-month"
    ).mean() + 0.2


def test_concept_drift_changes_churn_but_not_the_inputs() -> None:
    base = generate(SynthConfig(rows=5000, seed=2))
    drifted = generate(SynthConfig(rows=5000, seed=2, concept_drift=0.8))
    pd.testing.assert_frame_equal(base[COLUMNS], drifted[COLUMNS])
    assert np.abs(base["true_churn_prob"] - drifted["true_churn_prob"]).mean() > 0.05


def test_rejects_an_unknown_drift_feature() -> None:
    with pytest.raises(ValueError, match="unknown drift feature 'age'"):
        SynthConfig(rows=10, drift_feature="age")


def test_drift_from_month_is_a_step_not_a_ramp() -> None:
    plain = generate(SynthConfig(rows=2000, seed=4, months=5))
    stepped = generate(SynthConfig(rows=2000, seed=4, months=5, concept_drift=1.0, drift_from_month=4))
    # Identical draws before the step: the same customers, features and churn probabilities.
    pd.testing.assert_frame_equal(
        plain[plain.snapshot_month < 4].reset_index(drop=True),
        stepped[stepped.snapshot_month < 4].reset_index(drop=True),
    )
    month4 = stepped[stepped.snapshot_month == 4]
    plain4 = plain[plain.snapshot_month == 4]
    assert np.abs(month4["true_churn_prob"].to_numpy() - plain4["true_churn_prob"].to_numpy()).mean() > 0.05


def test_rejects_a_drift_month_outside_the_series() -> None:
    with pytest.raises(ValueError, match="drift_from_month must be between 1 and months"):
        SynthConfig(rows=10, months=3, drift_from_month=5)


def test_churn_offset_lowers_churn_and_leaves_the_inputs_alone() -> None:
    base = generate(SynthConfig(rows=5000, seed=3))
    low = generate(SynthConfig(rows=5000, seed=3, churn_offset=-2.0))
    pd.testing.assert_frame_equal(base[COLUMNS], low[COLUMNS])
    assert low["true_churn_prob"].mean() < 0.4 * base["true_churn_prob"].mean()
    # A negative offset lowers every row's probability, none more than to zero.
    assert ((low["true_churn_prob"] < base["true_churn_prob"]) & (low["true_churn_prob"] > 0)).all()
