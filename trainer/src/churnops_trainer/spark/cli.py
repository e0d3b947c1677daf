"""The `spark-score` command: argparse namespace → validated config → run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops_trainer.errors import TrainerError
from churnops_trainer.spark.job import SparkScoreConfig
from churnops_trainer.spark.score import run


def resolve_bundle(model: str, model_name: str = "churn") -> Path:
    """`champion`, `challenger` or a version number, through the registry, as `churnops score --model`."""
    from churnops_trainer.registry import Settings, resolve

    if model.isdigit():
        return Path(resolve(Settings.from_env(), model_name, version=model)["bundle_path"])
    if model in ("champion", "challenger"):
        return Path(resolve(Settings.from_env(), model_name, alias=model)["bundle_path"])
    raise TrainerError(f"--model {model}: expected champion, challenger or a version number (or use --bundle DIR)")


def cli_run(args: Any) -> dict[str, Any]:
    """`spark-score`: argparse namespace → validated config → run. Configuration mistakes are user errors."""
    from pydantic import ValidationError

    try:
        import pyspark  # noqa: F401 - only to report a missing extra as one line
    except ImportError:
        raise TrainerError(
            "pyspark is not installed: pip install 'churnops-trainer[spark]' (or pip install pyspark)"
        ) from None
    conf: dict[str, str] = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TrainerError(f"--conf {item}: expected KEY=VALUE")
        conf[key.strip()] = value
    bundle = Path(args.bundle) if args.bundle else resolve_bundle(args.model, args.model_name)
    try:
        config = SparkScoreConfig(
            bundle=bundle,
            data=args.data,
            table=args.table,
            query=args.query,
            kind=args.kind,
            as_of=args.as_of,
            out=args.out,
            quarantine_out=args.quarantine_out,
            jdbc_out=args.jdbc_out,
            master=args.master,
            conf=conf,
            reasons=getattr(args, "reasons", 0) or 0,
            language=getattr(args, "lang", "en") or "en",
        )
    except ValidationError as exc:
        raise TrainerError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    return run(config)
