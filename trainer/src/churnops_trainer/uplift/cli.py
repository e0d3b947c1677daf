"""The trainer's uplift commands (`uplift-train`, `uplift-score`) and the synth knobs for known effects."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from churnops_trainer.errors import DataError, TrainerError


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def cmd_uplift_train(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.uplift.train import UpliftTrainConfig, train_uplift

    return train_uplift(
        UpliftTrainConfig(
            data=Path(args.data),
            model_name=args.model_name,
            campaigns=_csv(args.campaigns),
            test_size=args.test_size,
            folds=args.folds,
            seed=args.seed,
            bootstrap=args.bootstrap,
            min_rows_per_arm=args.min_rows_per_arm,
            min_churners_per_arm=args.min_churners_per_arm,
            register=not args.no_register,
        )
    )


def _train_summary(r: dict[str, Any]) -> str:
    rk = r["rankings"]
    lines = [
        f"Trained uplift model {r['model_name']} v{r['version']} ({r['learner']}) on {r['rows']} randomised members "
        f"(treatment {r['arms']['treatment']['rows']} / {r['arms']['treatment']['churners']} churned, "
        f"control {r['arms']['control']['rows']} / {r['arms']['control']['churners']} churned)",
        "  held-out Qini "
        + ", ".join(f"{k} {v['qini']:.4f} [{v['qini_ci95'][0]:.4f}, {v['qini_ci95'][1]:.4f}]" for k, v in rk.items()),
    ]
    if r.get("gate"):
        lines.append(f"  gate         {r['gate']['reason']}")
    lines.append(f"  bundle       {r['bundle_path']}")
    return "\n".join(lines)


def cmd_uplift_score(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer import registry
    from churnops_trainer.export import load_bundle
    from churnops_trainer.uplift.bundle import score_table

    if args.bundle:
        directory, version = Path(args.bundle), load_bundle(Path(args.bundle)).get("model_version")
    else:
        alias = args.model if args.model in (registry.CHAMPION, registry.CHALLENGER) else None
        found = registry.resolve(
            registry.Settings.from_env(), args.model_name, alias=alias, version=None if alias else args.model
        )
        directory, version = Path(found["bundle_path"]), found["version"]
    data = Path(args.data)
    if not data.is_file():
        raise DataError(f"--data {data}: no such file")
    # Ids stay text ("0001" is not 1): they must match the store's customer ids.
    frame = (
        pd.read_parquet(data)
        if data.suffix.lower() in (".parquet", ".pq")
        else pd.read_csv(data, dtype={args.id_col: str})
    )
    if args.id_col not in frame.columns:
        raise DataError(f"--data {data}: no id column {args.id_col!r}; its columns are {', '.join(frame.columns)}")
    uplift = score_table(directory, frame)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"customer_id": frame[args.id_col].astype(str), "uplift": uplift})
    if out.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)
    return {
        "out": str(out),
        "rows": len(frame),
        "model_name": args.model_name,
        "version": str(version),
        "bundle_path": str(directory),
    }


def effect_config(args: argparse.Namespace) -> Any:
    """The synth --uplift knobs as an EffectConfig (None without --uplift)."""
    from churnops_trainer.uplift.synthetic import EffectConfig

    if args.uplift is None:
        return None
    try:
        return EffectConfig(
            persuadable=args.persuadable,
            sure_thing=args.sure_thing,
            lost_cause=args.lost_cause,
            sleeping_dog=args.sleeping_dog,
            dependence=args.effect_dependence,
            homogeneous=args.uplift == "homogeneous",
            homogeneous_effect=args.homogeneous_effect,
            seed=args.seed + 1,
        )
    except ValueError as exc:
        raise TrainerError(str(exc)) from None


def synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--uplift",
        choices=("heterogeneous", "homogeneous"),
        help="add known offer effects: segment, true_churn_prob_treated, true_effect (churnops recipe)",
    )
    p.add_argument("--persuadable", type=float, default=0.3, help="base share of persuadables (with --uplift)")
    p.add_argument("--sure-thing", type=float, default=0.3, help="base share of sure things")
    p.add_argument("--lost-cause", type=float, default=0.25, help="base share of lost causes")
    p.add_argument("--sleeping-dog", type=float, default=0.15, help="base share of sleeping dogs")
    p.add_argument(
        "--effect-dependence", type=float, default=1.5, help="how much the segment depends on features (0: not)"
    )
    p.add_argument("--homogeneous-effect", type=float, default=0.05, help="the same churn reduction for everyone")


Command = Callable[[str, str, Callable[[argparse.Namespace], Any], Callable[[Any], str]], argparse.ArgumentParser]


def register(command: Command) -> None:
    p = command("uplift-train", "fit, evaluate, export and register an uplift model", cmd_uplift_train, _train_summary)
    p.add_argument("--data", required=True, help="the export of randomised campaign members (Parquet/CSV)")
    p.add_argument("--model-name", default="churn-uplift")
    p.add_argument("--campaigns", help="the campaigns the data comes from (recorded)")
    p.add_argument("--test-size", type=float, default=0.3)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--min-rows-per-arm", type=int, default=200)
    p.add_argument("--min-churners-per-arm", type=int, default=20)
    p.add_argument("--no-register", action="store_true")

    p = command(
        "uplift-score",
        "predicted uplift per customer of a table (customer_id, uplift: CSV or Parquet)",
        cmd_uplift_score,
        lambda r: r["out"],
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--bundle", help="uplift bundle directory")
    which.add_argument("--model", help="champion, challenger or a version number")
    p.add_argument("--model-name", default="churn-uplift")
    p.add_argument("--data", required=True)
    p.add_argument("--id-col", default="customer_id")
    p.add_argument("--out", required=True)
