"""Thin command line: parse → call the library → print the result on stdout (JSON with --json).

Logs go to stderr: short lines on a terminal, JSON lines otherwise (see logs.py). A user error prints one line
on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from churnops_trainer.errors import TrainerError
from churnops_trainer.uplift import cli as uplift_cli

Result = dict[str, Any] | list[dict[str, Any]]
Handler = Callable[[argparse.Namespace], Any]
Summary = Callable[[Any], str]


def _print(result: Result, as_json: bool, summary: Summary) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
    else:
        sys.stdout.write(summary(result).rstrip("\n") + "\n")


def _csv_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _bands(text: str | None) -> tuple[tuple[str, float], ...] | None:
    """`high:0.1,medium:0.3`: each named band holds its cumulative top share of training scores."""
    if not text:
        return None
    out = []
    for part in _csv_list(text):
        name, _, share = part.partition(":")
        try:
            value = float(share)
        except ValueError:
            raise TrainerError(f"--bands: '{part}' is not NAME:SHARE (e.g. high:0.1)") from None
        if not 0 < value < 1:
            raise TrainerError(f"--bands: share of '{name}' must be between 0 and 1, got {value}")
        out.append((name, value))
    if [s for _, s in out] != sorted(s for _, s in out):
        raise TrainerError("--bands: shares must grow from the highest band to the lowest")
    return tuple(out)


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.data import DatasetSpec, load_spec
    from churnops_trainer.train import TrainConfig, train

    if not 0 < args.recall_target <= 1:
        raise TrainerError(f"--recall-target must be in (0, 1], got {args.recall_target}")
    spec = load_spec(args.spec) if args.spec else DatasetSpec()
    spec = spec.with_overrides(args.target, args.positive, args.id_col, _csv_list(args.drop))
    config = TrainConfig(
        data=args.data,
        spec=spec,
        table=args.table,
        query=args.query,
        recall_target=args.recall_target,
        seed=args.seed,
        model_name=args.model_name,
        tune=args.tune,
        tune_seconds=args.tune_seconds,
        register=not args.no_register,
        offer_cost=args.offer_cost,
        customer_value=args.customer_value,
        save_rate=args.save_rate,
        allow_leaky=args.allow_leaky,
        **({"bands": b} if (b := _bands(args.bands)) else {}),
    )
    return train(config)


def _protocol_lines(protocol: dict[str, Any] | None) -> list[str]:
    """Which model the test line describes and which one is shipped (train.py, metrics.protocol)."""
    if not protocol:
        return []
    return [
        f"        (test metrics: the model fit on {protocol['test_model_rows']} rows without the test split, at its "
        f"threshold {protocol['test_threshold']:.4f}; shipped: the same settings fit on all "
        f"{protocol['shipped_model_rows']} labelled rows, threshold above)"
    ]


def _train_summary(r: dict[str, Any]) -> str:
    t = r["metrics"]["test"]
    o = r["baselines"]["original_recipe"]["test"]
    bands = ", ".join(f"{b['name']} ≥ {b['min']:.4g}" for b in r["bands"])
    if r["version"] == "local":
        next_step = "not registered (--no-register): the bundle above is the result"
    else:
        next_step = (
            f"version {r['version']} is the challenger; the champion is unchanged. "
            f"To serve it: churnops promote --version {r['version']}"
        )
    lines = [
        f"model {r['model_name']} version {r['version']} (run {r['run_id']})",
        f"bundle  {r['bundle_path']}",
        f"report  {r['report_path']}",
        f"threshold {r['threshold']:.4f}: recall {t['recall']:.3f}, precision {t['precision']:.3f}, "
        f"accuracy {t['accuracy']:.3f}, ROC AUC {t['roc_auc']:.3f}, Brier {t['brier']:.4f}",
        *_protocol_lines(r["metrics"].get("protocol")),
        f"bands   {bands}",
        f"original recipe: ROC AUC {o['roc_auc']:.3f}, recall {o['recall']:.3f}, precision at equal recall "
        f"{o['precision_at_equal_recall']:.3f}",
        *[f"note: {n}" for n in r["metrics"]["notes"]],
        f"took {r['timings']['total_s']:.1f} s",
        next_step,
    ]
    return "\n".join(lines)


def cmd_synth(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.synthetic import SynthConfig, generate

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise TrainerError(f"--out must end in .csv or .parquet, got '{out.name}'")
    try:
        config = SynthConfig(
            rows=args.rows,
            seed=args.seed,
            recipe=args.recipe,
            months=args.months,
            drift_feature=args.drift_feature,
            drift_shift=args.drift_shift,
            concept_drift=args.concept_drift,
            id_prefix=args.id_prefix,
            drift_from_month=args.drift_from_month,
            churn_offset=args.churn_offset,
        )
    except ValueError as exc:
        raise TrainerError(str(exc)) from None
    frame = generate(config)
    effects = uplift_cli.effect_config(args)
    if effects is not None:
        if config.recipe != "churnops":
            raise TrainerError("--uplift needs the churnops recipe")
        from churnops_trainer.uplift.synthetic import add_effects

        frame = add_effects(frame, effects)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return {
        "out": str(out),
        "rows": len(frame),
        "recipe": config.recipe,
        "seed": config.seed,
        "months": config.months,
        "churn_rate": round(float(frame["churned"].mean()), 6),
        "columns": list(frame.columns),
    }


def cmd_resolve(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.registry import Settings, resolve

    return resolve(Settings.from_env(), args.model_name, alias=args.alias, version=args.version)


def cmd_promote(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.registry import Settings, promote

    return promote(Settings.from_env(), args.model_name, args.version, force=args.force)


def cmd_rollback(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.registry import Settings, rollback

    return rollback(Settings.from_env(), args.model_name)


def cmd_models(args: argparse.Namespace) -> list[dict[str, Any]]:
    from churnops_trainer.registry import Settings, list_versions

    return list_versions(Settings.from_env(), args.model_name)


def _models_summary(versions: list[dict[str, Any]]) -> str:
    lines = [f"{'version':>7}  {'aliases':<22} {'roc_auc':>7} {'recall':>6} {'precision':>9}  created  data"]
    for v in versions:
        m = v["metrics"]
        lines.append(
            f"{v['version']:>7}  {','.join(v['aliases']) or '-':<22} {m.get('roc_auc', float('nan')):7.3f} "
            f"{m.get('recall', float('nan')):6.3f} {m.get('precision', float('nan')):9.3f}  {v['created_at']}  "
            f"{v['data_source'] or '-'} [{(v['data_fingerprint'] or '-')[:12]}] {v['schema_summary'] or '-'}"
        )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.predict import evaluate_bundle

    return evaluate_bundle(Path(args.bundle), args.data, args.table, args.query, args.target, args.positive)


def _evaluate_summary(r: dict[str, Any]) -> str:
    head = (
        f"model {r['model_name']} version {r['model_version']} on {r['rows']} labelled rows "
        f"({r['positives']} positive), threshold {r['threshold']:.4f}"
    )
    width = max(len(k) for k in r["metrics"])
    table = [f"{'metric':<{width}}  value", *(f"{k:<{width}}  {v:.4f}" for k, v in r["metrics"].items())]
    unseen = r["unseen_category_rows"]
    tail = [f"{unseen} row(s) hold a category the model never saw (scorers quarantine them)"] if unseen else []
    return "\n".join([head, *table, *tail])


def cmd_verify(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.bundle_contract import verify

    result = verify(Path(args.bundle))
    return {"ok": True, **result.__dict__}


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.export import load_bundle
    from churnops_trainer.predict import predict_to_csv

    native = None
    if args.native:
        from churnops_trainer.native import load_native
        from churnops_trainer.registry import Settings, download_native

        run_id = load_bundle(Path(args.bundle))["run_id"]
        native = load_native(download_native(Settings.from_env(), run_id))
    rows = predict_to_csv(Path(args.bundle), args.data, Path(args.out), native)
    return {"out": args.out, "rows": rows, "native": bool(args.native)}


def cmd_spark_score(args: argparse.Namespace) -> dict[str, Any]:
    from churnops_trainer.spark import cli_run

    return cli_run(args)


def _spark_summary(r: dict[str, Any]) -> str:
    if r["status"] == "already_complete":
        return f"run {r['run_id']} was already complete in the store; nothing re-scored"
    return (
        f"scored run {r['run_id']} on Spark: {r['rows_scored']} scored, {r['rows_quarantined']} quarantined, "
        f"{r['rows_per_second']:.0f} rows/s; written to {r['out'] or r['jdbc_out']}"
    )


def _simple(key: str) -> Summary:
    return lambda r: str(r[key])


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, tuple[Handler, Summary]]]:
    parser = argparse.ArgumentParser(prog="churnops-trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, tuple[Handler, Summary]] = {}

    def command(name: str, help_text: str, handler: Handler, summary: Summary) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print the result as one JSON object")
        handlers[name] = (handler, summary)
        return p

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="CSV/Parquet file, or sqlite:///… / postgresql://… URL")
        source = p.add_mutually_exclusive_group()
        source.add_argument("--table", help="table name (with a database URL)")
        source.add_argument("--query", help="SQL query (with a database URL)")

    p = command("train", "train, evaluate, export and register a churn model", cmd_train, _train_summary)
    data_args(p)
    p.add_argument("--target", help="target column")
    p.add_argument("--positive", help="the target value that means churn (e.g. Yes, 1)")
    p.add_argument("--id-col", help="customer id column (default: row numbers)")
    p.add_argument("--drop", help="comma-separated columns to leave out")
    p.add_argument("--spec", help="dataset spec (YAML); flags take precedence")
    p.add_argument("--recall-target", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model-name", default="churn")
    p.add_argument("--tune", action="store_true", help="Optuna search within --tune-seconds")
    p.add_argument("--tune-seconds", type=float, default=60.0)
    p.add_argument("--no-register", action="store_true", help="track the run but register no version")
    p.add_argument("--offer-cost", type=float, help="cost of one retention offer (enables the cost threshold)")
    p.add_argument("--customer-value", type=float, help="value of keeping one customer")
    p.add_argument("--save-rate", type=float, default=0.3, help="share of contacted churners an offer keeps")
    p.add_argument(
        "--allow-leaky", action="store_true", help="train even if one column alone predicts the target (AUC ≥ 0.99)"
    )
    p.add_argument("--bands", help="risk bands as NAME:TOP_SHARE,… (default high:0.1,medium:0.3)")

    p = command("synth", "write a synthetic customer table", cmd_synth, _simple("out"))
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    p.add_argument("--recipe", choices=("original", "churnops"), default="churnops")
    p.add_argument("--months", type=int, default=1, help="monthly snapshots of the same customers")
    p.add_argument("--drift-feature", help="feature whose distribution shifts")
    p.add_argument("--drift-shift", type=float, default=0.0, help="size of that shift")
    p.add_argument("--concept-drift", type=float, default=0.0, help="change of the churn relationship (0..1)")
    p.add_argument("--id-prefix", help="customer ids are PREFIX + 7 digits (default: S<seed>-, distinct per seed)")
    p.add_argument(
        "--drift-from-month", type=int, help="with --months: drift starts in full at this month instead of ramping up"
    )
    p.add_argument(
        "--churn-offset", type=float, default=0.0, help="added to every row's churn log-odds (-2: ~5%% a month)"
    )
    uplift_cli.synth_args(p)
    uplift_cli.register(command)

    p = command(
        "resolve", "print the local bundle directory of a registered version", cmd_resolve, _simple("bundle_path")
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--alias", choices=("champion", "challenger"))
    which.add_argument("--version")
    p.add_argument("--model-name", default="churn")

    p = command("promote", "make a version (default: the challenger) the champion", cmd_promote, _simple("version"))
    p.add_argument("--version")
    p.add_argument("--force", action="store_true", help="promote even if its input columns differ from the champion's")
    p.add_argument("--model-name", default="churn")

    p = command("rollback", "restore the previous champion", cmd_rollback, _simple("version"))
    p.add_argument("--model-name", default="churn")

    p = command("models", "list registered versions", cmd_models, _models_summary)
    p.add_argument("--model-name", default="churn")

    p = command("evaluate", "metrics of a bundle on a labelled table", cmd_evaluate, _evaluate_summary)
    p.add_argument("--bundle", required=True)
    data_args(p)
    p.add_argument("--target")
    p.add_argument("--positive")

    help_text = "check a bundle against docs/bundle.md, its graph, sha256 and golden vectors"
    p = command("verify", help_text, cmd_verify, lambda r: f"ok {r['bundle']}")
    p.add_argument("bundle")

    p = command("predict", "score a table with a bundle (row, id, p_onnx[, p_native])", cmd_predict, _simple("out"))
    p.add_argument("--bundle", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--native", action="store_true", help="also score with the native pipeline of the bundle's run")

    p = command("spark-score", "score a customer table on Apache Spark (extra: spark)", cmd_spark_score, _spark_summary)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--bundle", help="bundle directory (model.onnx + bundle.json), read by the driver")
    model.add_argument("--model", help="champion, challenger or a registered version number")
    p.add_argument("--model-name", default="churn")
    p.add_argument("--data", required=True, help="Parquet/CSV path (local, hdfs://, s3a://…) or a jdbc: URL")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--table", help="table name (with a jdbc: URL)")
    source.add_argument("--query", help="SQL query (with a jdbc: URL)")
    p.add_argument("--kind", choices=("daily", "monthly"), default="daily")
    p.add_argument("--as-of", required=True, help="the date the scores are for (YYYY-MM-DD)")
    p.add_argument("--out", help="scores to .parquet or .csv (a Spark output directory)")
    p.add_argument("--quarantine-out", help="quarantined rows (default: <out>.quarantine.parquet)")
    p.add_argument("--jdbc-out", help="jdbc: URL of the churnops store: fills score_runs, scores, quarantine")
    p.add_argument("--master", help="Spark master, e.g. local[*] (default: spark-submit's)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)")
    p.add_argument("--reasons", type=int, default=0, help="top-N reasons per score (reason_1..N columns), 0-10")
    p.add_argument("--lang", choices=("en", "ja"), default="en", help="language of the reason texts")
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    from churnops_trainer import logs

    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    handler, summary = handlers[args.command]
    try:
        logs.configure()
        logging.captureWarnings(True)
        logging.getLogger("py.warnings").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        # Libraries sometimes print (MLflow prints run URLs); stdout carries only our result.
        with contextlib.redirect_stdout(sys.stderr):
            result = handler(args)
    except TrainerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    _print(result, args.json, summary)
    return 0
