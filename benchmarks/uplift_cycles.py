"""Uplift targeting against risk targeting over monthly campaign cycles, printed as one JSON object.

Usage (from the repository root, after `make setup`):

    trainer/.venv/bin/python benchmarks/uplift_cycles.py [--rows 20000] [--cycles 4] [--seeds 5]

Simulation (synthetic customers with known per-row effects, trainer/src/churnops_trainer/uplift/synthetic.py):

* a churn model is trained once on an untreated history month (the risk ranking);
* each cycle is a fresh month of customers with the same offer budget (``--budget-share`` of them);
* cycle 1 targets by risk: the riskiest customers, a random ``--control-share`` of them held out;
* every later cycle targets by the uplift model learned from all earlier cycles' randomised members
  (chosen between T- and X-learner by cross-validated Qini, as ``churnops uplift train``): members with a
  negative predicted uplift are never treated, ``--exploration`` of the treated are random eligible customers
  (with their own control share), the rest the highest expected net value (uplift × value − offer cost > 0);
* outcomes are drawn from each member's true treated/untreated churn probability and feed the next cycle.

Every cycle, on the same customers, four policies spend the same budget: uplift (what was sent), risk, random
and the oracle (true effect). Reported per policy: customers retained per 1,000 offers (sum of the true effect
over the treated × 1000 / offers), net value (Σ true effect × value − offer cost × offers), and the Qini
coefficient of its ranking against the truth (area between the cumulative true effect curve and random, per
customer). Intervals are 95% t-intervals over seeds. Two scenarios: heterogeneous effects (segments) and the
same effect for everyone. Bars: uplift / risk retained per offer ≥ 1.5 (heterogeneous), ≥ 0.95 (homogeneous),
over the cycles that target by uplift.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from churnops_trainer.features import to_model_frame
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.uplift.data import UpliftData, infer_features
from churnops_trainer.uplift.fit import choose_and_fit
from churnops_trainer.uplift.learners import classifier
from churnops_trainer.uplift.synthetic import (
    NOT_FEATURES,
    EffectConfig,
    add_effects,
    draw_outcomes,
)

T_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
}


def month(
    rows: int, seed: int, effects: EffectConfig, churn_offset: float
) -> pd.DataFrame:
    frame = generate(
        SynthConfig(rows=rows, seed=seed, recipe="churnops", churn_offset=churn_offset)
    )
    return add_effects(frame, replace(effects, seed=seed + 1))


def features_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c not in NOT_FEATURES]]


def truth_qini(
    score: np.ndarray, effect: np.ndarray, rng: np.random.Generator
) -> float:
    order = np.lexsort((rng.random(len(score)), -score))
    n = len(score)
    y = np.concatenate([[0.0], np.cumsum(effect[order])]) / n
    x = np.arange(n + 1) / n
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) - y[-1] / 2)


def split_control(
    index: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(treated, control): a random `share` of `index` held out."""
    shuffled = rng.permutation(index)
    k = round(len(index) * share)
    return np.sort(shuffled[k:]), np.sort(shuffled[:k])


def policy_summary(
    treated: np.ndarray, frame: pd.DataFrame, offer_cost: float
) -> dict[str, float]:
    effect = frame["true_effect"].to_numpy()[treated]
    value = frame["customer_value"].to_numpy()[treated]
    n = len(treated)
    return {
        "offers": n,
        "retained_per_1000_offers": float(1000 * effect.sum() / n) if n else 0.0,
        "net_value": float((effect * value).sum() - offer_cost * n),
    }


def run_seed(
    seed: int, args: argparse.Namespace, effects: EffectConfig
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    history = month(args.rows, seed * 1000, effects, args.churn_offset)
    hx = features_of(history)
    feature_set = infer_features(hx)
    risk_model = classifier(feature_set, seed).fit(
        to_model_frame(hx, feature_set), history["churned"].to_numpy()
    )
    budget = round(args.rows * args.budget_share)
    pool: list[pd.DataFrame] = []
    cycles = []
    for cycle in range(1, args.cycles + 1):
        frame = month(args.rows, seed * 1000 + cycle, effects, args.churn_offset)
        x = features_of(frame)
        risk = risk_model.predict_proba(to_model_frame(x, feature_set))[:, 1]
        n = len(frame)
        selected_n = math.floor(budget / (1 - args.control_share))
        risk_selected = np.argsort(-risk, kind="stable")[:selected_n]
        risk_treated, risk_control = split_control(
            risk_selected, args.control_share, rng
        )
        random_treated = np.sort(rng.choice(n, len(risk_treated), replace=False))
        true_effect = frame["true_effect"].to_numpy()
        value = frame["customer_value"].to_numpy()
        oracle_value = true_effect * value - args.offer_cost
        oracle_treated = np.sort(np.argsort(-oracle_value)[: len(risk_treated)])
        oracle_treated = oracle_treated[oracle_value[oracle_treated] > 0]
        info: dict[str, Any] = {"cycle": cycle}
        if cycle == 1 or not pool:
            sent_treated, sent_control, predicted = risk_treated, risk_control, None
            info["targeting"] = "risk"
        else:
            train = pd.concat(pool, ignore_index=True)
            data = UpliftData(
                frame=features_of(train).reset_index(drop=True),
                treated=train["__treated"].to_numpy(dtype=bool),
                churned=train["__churned"].to_numpy(),
                risk=train["__risk"].to_numpy(),
                campaign=train["__cycle"].astype(str).to_numpy(),
                customer_id=train["customer_id"].astype(str).to_numpy(),
                delivery=np.full(len(train), "delivered"),
                features=feature_set,
                integer={},
            )
            started = time.perf_counter()
            model, cv = choose_and_fit(data, folds=3, seed=seed + cycle)
            predicted = model.predict(x)
            info.update(
                targeting="uplift",
                learner=model.name,
                training_rows=len(train),
                cv_qini={k: round(v["qini_mean"], 5) for k, v in cv.items()},
                fit_seconds=round(time.perf_counter() - started, 2),
            )
            worth = predicted * value - args.offer_cost
            eligible = np.arange(n)
            explore_treated_n = round(len(risk_treated) * args.exploration)
            explore_n = math.floor(explore_treated_n / (1 - args.control_share))
            explorable = eligible[predicted >= 0]
            explore = np.sort(
                rng.choice(explorable, min(explore_n, len(explorable)), replace=False)
            )
            ex_treated, ex_control = split_control(explore, args.control_share, rng)
            rest = np.setdiff1d(eligible, explore)
            positive = rest[(predicted[rest] > 0) & (worth[rest] > 0)]
            info["sleeping_dogs_held_back"] = int((predicted < 0).sum())
            main_n = math.floor(
                (len(risk_treated) - len(ex_treated)) / (1 - args.control_share)
            )
            ranked = positive[np.argsort(-worth[positive], kind="stable")][:main_n]
            main_treated, main_control = split_control(ranked, args.control_share, rng)
            sent_treated = np.sort(np.concatenate([main_treated, ex_treated]))
            sent_control = np.sort(np.concatenate([main_control, ex_control]))
        members = np.concatenate([sent_treated, sent_control])
        is_treated = np.zeros(n, dtype=bool)
        is_treated[sent_treated] = True
        churned = draw_outcomes(frame, is_treated, rng)
        record = frame.iloc[members].copy()
        record["__treated"] = is_treated[members]
        record["__churned"] = churned[members]
        record["__risk"] = risk[members]
        record["__cycle"] = cycle
        pool.append(record)
        qrng = np.random.default_rng(seed + cycle)
        info["policies"] = {
            "uplift" if predicted is not None else "risk_sent": policy_summary(
                sent_treated, frame, args.offer_cost
            ),
            "risk": policy_summary(risk_treated, frame, args.offer_cost),
            "random": policy_summary(random_treated, frame, args.offer_cost),
            "oracle": policy_summary(oracle_treated, frame, args.offer_cost),
        }
        info["truth_qini"] = {
            "risk": truth_qini(risk, true_effect, qrng),
            "random": truth_qini(qrng.random(n), true_effect, qrng),
            "oracle": truth_qini(true_effect, true_effect, qrng),
        }
        if predicted is not None:
            info["truth_qini"]["uplift"] = truth_qini(predicted, true_effect, qrng)
        cycles.append(info)
    return cycles


def interval(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    mean = float(a.mean())
    if len(a) < 2:
        return {
            "mean": round(mean, 4),
            "ci95": [round(mean, 4), round(mean, 4)],
            "n": len(a),
        }
    half = T_975.get(len(a) - 1, 1.96) * float(a.std(ddof=1)) / math.sqrt(len(a))
    return {
        "mean": round(mean, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
        "n": len(a),
    }


def scenario(
    name: str, effects: EffectConfig, args: argparse.Namespace, bar: float
) -> dict[str, Any]:
    started = time.perf_counter()
    per_seed = [run_seed(s, args, effects) for s in range(1, args.seeds + 1)]
    later = [c for cycles in per_seed for c in cycles if c["targeting"] == "uplift"]
    ratios = []
    for cycles in per_seed:
        up = [c for c in cycles if c["targeting"] == "uplift"]
        if up:
            u = np.mean(
                [c["policies"]["uplift"]["retained_per_1000_offers"] for c in up]
            )
            r = np.mean([c["policies"]["risk"]["retained_per_1000_offers"] for c in up])
            ratios.append(float(u / r) if r else float("nan"))
    summary: dict[str, Any] = {"policies": {}, "truth_qini": {}}
    for policy in ("uplift", "risk", "random", "oracle"):
        summary["policies"][policy] = {
            metric: interval([c["policies"][policy][metric] for c in later])
            for metric in ("retained_per_1000_offers", "net_value")
        }
        summary["truth_qini"][policy] = interval(
            [c["truth_qini"][policy] for c in later]
        )
    ratio = interval(ratios)
    return {
        "scenario": name,
        "effects": effects.__dict__,
        "uplift_vs_risk_retained_per_offer": ratio,
        "bar": bar,
        "meets_bar": ratio["mean"] >= bar,
        "summary_over_uplift_cycles": summary,
        "sleeping_dogs_held_back_per_cycle": interval(
            [c["sleeping_dogs_held_back"] for c in later]
        ),
        "learners_chosen": {
            k: sum(1 for c in later if c["learner"] == k)
            for k in ("t_learner", "x_learner")
        },
        "cycles": per_seed,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=20000, help="customers per monthly cycle"
    )
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--budget-share",
        type=float,
        default=0.2,
        help="offers per cycle, as a share of customers",
    )
    parser.add_argument("--control-share", type=float, default=0.2)
    parser.add_argument("--exploration", type=float, default=0.1)
    parser.add_argument("--offer-cost", type=float, default=10.0)
    parser.add_argument(
        "--churn-offset",
        type=float,
        default=-1.0,
        help="added to churn log-odds (see synth)",
    )
    parser.add_argument("--scenarios", default="heterogeneous,homogeneous")
    args = parser.parse_args()
    started = time.perf_counter()
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    results = []
    if "heterogeneous" in chosen:
        results.append(scenario("heterogeneous", EffectConfig(), args, 1.5))
    if "homogeneous" in chosen:
        results.append(
            scenario("homogeneous", EffectConfig(homogeneous=True), args, 0.95)
        )
    out = {
        "benchmark": "uplift_cycles",
        "settings": {k: v for k, v in vars(args).items()},
        "scenarios": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
