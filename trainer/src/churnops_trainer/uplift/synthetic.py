"""Known treatment effects for synthetic customers: who an offer persuades, who it does not move, who it annoys.

Every row of a ``churnops``-recipe table (synthetic.generate) gets a segment and two churn probabilities:
``true_churn_prob`` stays the churn probability without an offer (control), ``true_churn_prob_treated`` is the
one with an offer, and ``true_effect`` = control − treated is the reduction an offer causes (negative for a
sleeping dog). Segments:

* persuadable: the offer removes ``persuade`` of the churn probability (p_t = p_c · (1 − persuade));
* sure thing / lost cause: the offer changes nothing (p_t = p_c); lost causes lean to high risk, sure things
  to low risk;
* sleeping dog: being contacted raises churn (p_t = p_c + backfire · (1 − p_c)).

How segments depend on the features (``dependence``; 0 = drawn independently of them): lost causes are the
risky and disengaged (high churn log-odds, few logins), sure things the safe, persuadables customers of moderate
risk with service trouble (support tickets) on flexible contracts, sleeping dogs long-tenure customers on long
contracts.
``homogeneous`` replaces all of this by the same absolute effect for everyone (p_t = max(p_c − effect, 0)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SEGMENTS = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")

#: Columns of a synthetic table with effects that no model may see: the id, the label, what only the simulation
#: knows (true probabilities, effect and segment) and what a campaign takes as input (value, opt-out).
NOT_FEATURES = (
    "customer_id",
    "churned",
    "true_churn_prob",
    "true_churn_prob_treated",
    "true_effect",
    "segment",
    "customer_value",
    "opted_out",
)


@dataclass(frozen=True)
class EffectConfig:
    """Knobs of the treatment effect. Shares are the segments' base weights (they are normalised)."""

    persuadable: float = 0.35
    sure_thing: float = 0.3
    lost_cause: float = 0.2
    sleeping_dog: float = 0.15
    #: How strongly the segment depends on the features (0 = not at all: the effect cannot be learned).
    dependence: float = 1.0
    #: Share of a persuadable's churn probability an offer removes.
    persuade: float = 0.6
    #: Share of a sleeping dog's staying probability an offer turns into churn.
    backfire: float = 0.15
    #: Same absolute effect for everyone instead of segments.
    homogeneous: bool = False
    homogeneous_effect: float = 0.05
    seed: int = 7

    def __post_init__(self) -> None:
        shares = (self.persuadable, self.sure_thing, self.lost_cause, self.sleeping_dog)
        if any(s < 0 for s in shares) or sum(shares) <= 0:
            raise ValueError("segment shares must be non-negative and not all zero")
        for name in ("persuade", "backfire", "homogeneous_effect"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.dependence < 0:
            raise ValueError(f"dependence must be non-negative, got {self.dependence}")


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(np.nanstd(values))
    return np.zeros_like(values) if sd == 0 else np.nan_to_num((values - np.nanmean(values)) / sd)


def add_effects(frame: pd.DataFrame, config: EffectConfig) -> pd.DataFrame:
    """A copy of a churnops-recipe table with ``segment``, ``true_churn_prob_treated`` and ``true_effect``."""
    out = frame.copy()
    p_c = np.clip(out["true_churn_prob"].to_numpy(dtype=float), 1e-9, 1 - 1e-9)
    if config.homogeneous:
        p_t = np.maximum(p_c - config.homogeneous_effect, 0.0)
        out["segment"] = "homogeneous"
    else:
        rng = np.random.default_rng(config.seed)
        risk = _z(np.log(p_c / (1 - p_c)))
        logins = _z(out["num_logins_30d"].to_numpy(dtype=float))
        tickets = _z(out["num_support_tickets"].to_numpy(dtype=float))
        tenure = _z(out["tenure_months"].to_numpy(dtype=float))
        contract = out["contract_type"].to_numpy()
        flexible = (contract == "month-to-month").astype(float)
        long_contract = (contract == "two_year").astype(float)
        scores = np.stack(
            [
                0.8 * tickets + 0.8 * flexible - 1.0 * np.abs(risk - 0.3),
                -1.5 * risk,
                2.0 * risk - 0.8 * logins,
                1.2 * tenure + 1.0 * long_contract - 0.5 * tickets,
            ],
            axis=1,
        )
        shares = np.array([config.persuadable, config.sure_thing, config.lost_cause, config.sleeping_dog])
        weights = shares * np.exp(config.dependence * scores)
        weights /= weights.sum(axis=1, keepdims=True)
        draw = rng.random(len(out))
        index = np.minimum((weights.cumsum(axis=1) < draw[:, None]).sum(axis=1), len(SEGMENTS) - 1)
        segment = np.asarray(SEGMENTS, dtype=object)[index]
        p_t = p_c.copy()
        persuadable = segment == "persuadable"
        p_t[persuadable] = p_c[persuadable] * (1 - config.persuade)
        dog = segment == "sleeping_dog"
        p_t[dog] = p_c[dog] + config.backfire * (1 - p_c[dog])
        out["segment"] = segment
    out["true_churn_prob_treated"] = p_t
    out["true_effect"] = p_c - p_t
    return out


def draw_outcomes(frame: pd.DataFrame, treated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Churned (0/1) per row: drawn from the treated probability where treated, the control one elsewhere."""
    p = np.where(treated, frame["true_churn_prob_treated"].to_numpy(), frame["true_churn_prob"].to_numpy())
    return (rng.random(len(frame)) < p).astype(np.int64)
