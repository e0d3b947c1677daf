"""Synthetic customer tables with a known churn probability per row, deterministic by seed.

Two recipes over the same 8 columns (customer_id, tenure_months, monthly_charges, total_charges,
num_support_tickets, num_logins_30d, contract_type, payment_method):

* ``original`` follows the generative process of the tutorial churnops started from: independent uniform /
  Poisson / uniform-choice columns and churn probability clip(0.3 − 0.005·tenure + 0.002·tickets, 0.05, 0.5).
  Only tenure (and barely tickets) carry signal, so the best possible ROC AUC is modest (about 0.70).
* ``churnops`` is a richer, more realistic process for demos: contract, tenure, charges, logins, tickets
  and payment method all move the churn log-odds, columns are correlated (total ≈ monthly × tenure), a few
  new customers have no total yet, and about a quarter of customers churn.

Both add ``true_churn_prob`` (the oracle) and ``churned`` (a draw from it); ``churnops`` also adds
``opted_out`` (marketing opt-out flag) and ``customer_value`` (what keeping the customer is worth).
With ``months`` > 1 the table holds monthly snapshots of the same customers (``snapshot_month``): tenure
advances, usage is redrawn, and a customer whose ``churned`` is 1 in month m is gone from month m+1. Drift
ramps up linearly over the months, or with ``drift_from_month`` starts in full at that month (a step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Recipe = Literal["original", "churnops"]
CONTRACTS = ("month-to-month", "one_year", "two_year")
PAYMENTS = ("credit_card", "bank_transfer", "electronic")
NUMERIC_COLUMNS = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_support_tickets",
    "num_logins_30d",
)
CATEGORICAL_COLUMNS = ("contract_type", "payment_method")
MAX_TENURE = 72


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator. Drift applies in full to a single table, and ramps up linearly over months."""

    rows: int
    seed: int = 42
    recipe: Recipe = "churnops"
    months: int = 1
    drift_feature: str | None = None
    drift_shift: float = 0.0
    concept_drift: float = 0.0
    #: Customer ids are `<prefix><7 digits>`; the default prefix names the seed (`S42-`), so that two tables
    #: made with different seeds share no customer and one's outcomes never attach to the other's scores.
    id_prefix: str | None = None
    #: With ``months`` > 1: drift starts in full at this month (a step change) instead of ramping up from month 1.
    drift_from_month: int | None = None
    #: Added to the churn log-odds of every row: with ``months`` > 1, the recipe's churn (about a quarter per month)
    #: is far above real monthly churn; about -2 gives some 5% a month, so the customer base does not halve in months.
    churn_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError("rows must be at least 1")
        if self.months < 1:
            raise ValueError("months must be at least 1")
        if self.drift_from_month is not None and not 1 <= self.drift_from_month <= self.months:
            raise ValueError(f"drift_from_month must be between 1 and months ({self.months})")
        if self.drift_feature is not None and self.drift_feature not in NUMERIC_COLUMNS + CATEGORICAL_COLUMNS:
            raise ValueError(
                f"unknown drift feature '{self.drift_feature}'; one of {NUMERIC_COLUMNS + CATEGORICAL_COLUMNS}"
            )


def generate(config: SynthConfig) -> pd.DataFrame:
    """The synthetic table: one snapshot, or `months` monthly snapshots of the same customers."""
    rng = np.random.default_rng(config.seed)
    customers = _initial_customers(config, rng)
    frames = []
    for month in range(1, config.months + 1):
        strength = _drift_strength(config, month)
        snapshot = _apply_feature_drift(customers, config, strength, rng)
        snapshot["true_churn_prob"] = _offset(
            _churn_probability(snapshot, config.recipe, config.concept_drift * strength), config.churn_offset
        )
        snapshot["churned"] = (rng.random(len(snapshot)) < snapshot["true_churn_prob"]).astype(np.int64)
        if config.recipe == "churnops":
            snapshot["customer_value"] = np.round(snapshot["monthly_charges"] * 24.0, 2)
        if config.months > 1:
            snapshot.insert(1, "snapshot_month", month)
        frames.append(snapshot)
        if month < config.months:
            customers = _next_month(customers, snapshot["churned"].to_numpy(), config.recipe, rng)
    return pd.concat(frames, ignore_index=True)


def _offset(p: np.ndarray, log_odds: float) -> np.ndarray:
    """Probabilities moved by `log_odds` on the logit scale (unchanged at 0)."""
    if log_odds == 0:
        return p
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return 1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + log_odds)))


def _drift_strength(config: SynthConfig, month: int) -> float:
    """How much of the configured drift a month's snapshot shows: a ramp from month 1, or a step at drift_from_month."""
    if config.drift_from_month is not None:
        return 1.0 if month >= config.drift_from_month else 0.0
    return 1.0 if config.months == 1 else (month - 1) / (config.months - 1)


def _initial_customers(config: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = config.rows
    prefix = f"S{config.seed}-" if config.id_prefix is None else config.id_prefix
    ids = np.array([f"{prefix}{i:07d}" for i in range(n)], dtype=object)
    if config.recipe == "original":
        tenure = rng.integers(1, MAX_TENURE, n)
        monthly = rng.uniform(20, 100, n)
        total = rng.uniform(100, 7000, n)
        tickets = rng.poisson(2, n)
        logins = rng.poisson(15, n)
        contract = rng.choice(CONTRACTS, n)
        payment = rng.choice(PAYMENTS, n)
        return pd.DataFrame(
            {
                "customer_id": ids,
                "tenure_months": tenure,
                "monthly_charges": np.round(monthly, 2),
                "total_charges": np.round(total, 2),
                "num_support_tickets": tickets,
                "num_logins_30d": logins,
                "contract_type": contract,
                "payment_method": payment,
            }
        )
    contract = rng.choice(CONTRACTS, n, p=[0.52, 0.24, 0.24])
    mean_tenure = np.select([contract == "month-to-month", contract == "one_year"], [16.0, 32.0], 46.0)
    tenure = np.clip(np.ceil(rng.exponential(mean_tenure)), 1, MAX_TENURE).astype(np.int64)
    payment = rng.choice(PAYMENTS, n, p=[0.33, 0.32, 0.35])
    monthly = np.round(np.clip(rng.normal(65, 22, n), 18, 120), 2)
    engagement = rng.normal(0, 0.35, n)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": 0.0,
            "num_support_tickets": 0,
            "num_logins_30d": 0,
            "contract_type": contract,
            "payment_method": payment,
            "opted_out": (rng.random(n) < 0.08).astype(np.int64),
        }
    )
    frame["total_charges"] = np.round(monthly * tenure * rng.uniform(0.92, 1.05, n), 2)
    # Like real billing exports, some first-month customers have no total yet.
    no_total = (tenure <= 1) & (rng.random(n) < 0.3)
    frame.loc[no_total, "total_charges"] = np.nan
    frame["_engagement"] = engagement
    _draw_usage(frame, rng)
    return frame


def _draw_usage(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """This month's logins and support tickets, from each customer's (persistent) engagement."""
    engagement = frame["_engagement"].to_numpy()
    frame["num_logins_30d"] = rng.poisson(15.0 * np.exp(engagement))
    frame["num_support_tickets"] = rng.poisson(1.4 * np.exp(-0.8 * engagement))


def _churn_probability(frame: pd.DataFrame, recipe: Recipe, concept: float) -> np.ndarray:
    """The true churn probability. `concept` changes the relationship (concept drift) for the same inputs:

    original: the tenure effect shrinks by that factor and the ticket effect grows tenfold per unit;
    churnops: the tenure and contract effects shrink by that factor and the ticket and charge effects grow.
    """
    tenure = frame["tenure_months"].to_numpy(dtype=float)
    tickets = frame["num_support_tickets"].to_numpy(dtype=float)
    if recipe == "original":
        p = 0.3 - 0.005 * (1 - concept) * tenure + 0.002 * (1 + 10 * concept) * tickets
        return np.clip(p, 0.05, 0.5)
    contract = frame["contract_type"].to_numpy()
    contract_effect = np.select([contract == "month-to-month", contract == "one_year"], [0.9, -0.7], -1.7)
    logins = frame["num_logins_30d"].to_numpy(dtype=float)
    monthly = frame["monthly_charges"].to_numpy(dtype=float)
    electronic = (frame["payment_method"].to_numpy() == "electronic").astype(float)
    logit = (
        -1.95
        + (1 - concept) * (contract_effect - 0.03 * (tenure - 20))
        + (1 + concept) * (0.32 * tickets + 0.012 * (monthly - 65))
        - 0.05 * (logins - 15)
        + 0.4 * electronic
    )
    return 1.0 / (1.0 + np.exp(-logit))


def _apply_feature_drift(
    customers: pd.DataFrame, config: SynthConfig, strength: float, rng: np.random.Generator
) -> pd.DataFrame:
    """The observed snapshot: a copy of the customers with the drifted feature shifted by `strength` × shift.

    A numeric feature moves by the shift (counts stay non-negative integers); for a categorical feature the
    shift is the share of customers moved to its first category.
    """
    frame = customers.drop(columns=[c for c in customers.columns if c.startswith("_")]).copy()
    feature, shift = config.drift_feature, config.drift_shift * strength
    if feature is None or shift == 0:
        return frame
    if feature in CATEGORICAL_COLUMNS:
        first = CONTRACTS[0] if feature == "contract_type" else PAYMENTS[0]
        moved = rng.random(len(frame)) < abs(shift)
        frame.loc[moved, feature] = first
        return frame
    values = frame[feature].to_numpy(dtype=float) + shift
    if feature in ("tenure_months", "num_support_tickets", "num_logins_30d"):
        values = np.maximum(np.round(values), 0).astype(np.int64)
    else:
        values = np.round(np.maximum(values, 0), 2)
    frame[feature] = values
    return frame


def _next_month(customers: pd.DataFrame, churned: np.ndarray, recipe: Recipe, rng: np.random.Generator) -> pd.DataFrame:
    """Survivors one month later: tenure +1, another month billed, usage redrawn."""
    stay = customers.loc[churned == 0].copy()
    stay["tenure_months"] = stay["tenure_months"] + 1
    stay["total_charges"] = np.round(stay["total_charges"].fillna(0) + stay["monthly_charges"], 2)
    if recipe == "original":
        stay["num_support_tickets"] = rng.poisson(2, len(stay))
        stay["num_logins_30d"] = rng.poisson(15, len(stay))
    else:
        _draw_usage(stay, rng)
    return stay.reset_index(drop=True)
