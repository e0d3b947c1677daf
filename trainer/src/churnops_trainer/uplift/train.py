"""`uplift-train`: from the export of randomised campaign members to a registered, gated uplift bundle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops_trainer.errors import DataError
from churnops_trainer.uplift.bundle import build_bundle, write_uplift_bundle
from churnops_trainer.uplift.data import MIN_CHURNERS_PER_ARM, MIN_ROWS_PER_ARM, prepare, read_export
from churnops_trainer.uplift.fit import evaluate

log = logging.getLogger("churnops_trainer.uplift")
QINI_TAG = "qini"


@dataclass(frozen=True)
class UpliftTrainConfig:
    data: Path
    model_name: str = "churn-uplift"
    campaigns: tuple[str, ...] = ()
    test_size: float = 0.3
    folds: int = 3
    seed: int = 42
    bootstrap: int = 200
    min_rows_per_arm: int = MIN_ROWS_PER_ARM
    min_churners_per_arm: int = MIN_CHURNERS_PER_ARM
    register: bool = True

    def __post_init__(self) -> None:
        if not 0.05 <= self.test_size <= 0.5:
            raise DataError(f"--test-size must be between 0.05 and 0.5, got {self.test_size}")
        if not 2 <= self.folds <= 10:
            raise DataError(f"--folds must be between 2 and 10, got {self.folds}")
        if not 20 <= self.bootstrap <= 5000:
            raise DataError(f"--bootstrap must be between 20 and 5000, got {self.bootstrap}")


def gate(mlclient: Any, model_name: str, version: str, qini: float) -> dict[str, Any]:
    """The challenger becomes champion only with a better held-out Qini than the champion's (or when there is none)."""
    from churnops_trainer import registry

    champion = None
    try:
        current = mlclient.get_model_version_by_alias(model_name, registry.CHAMPION)
        champion = {"version": str(current.version), "qini": float((current.tags or {}).get(QINI_TAG, "nan"))}
    except Exception as exc:
        if not registry._not_found(exc):
            raise
    # The tag holds the champion's Qini exactly (repr of the float): a rounded tag let an equal challenger "beat" it.
    promoted = champion is None or not qini <= champion["qini"]
    if promoted:
        mlclient.set_registered_model_alias(model_name, registry.CHAMPION, version)
    reason = (
        "first version: champion"
        if champion is None
        else f"held-out Qini {qini:.5f} {'beats' if promoted else 'does not beat'} "
        f"champion v{champion['version']}'s {champion['qini']:.5f}"
    )
    return {"promoted": promoted, "previous_champion": champion, "reason": reason}


def train_uplift(config: UpliftTrainConfig) -> dict[str, Any]:
    from churnops_trainer import registry

    started = time.perf_counter()
    raw = read_export(config.data)
    data = prepare(raw, min_rows=config.min_rows_per_arm, min_churners=config.min_churners_per_arm)
    counts = data.arm_counts()
    log.info(
        "uplift data validated",
        extra={"rows": data.n_rows, "treatment": counts["treatment"]["rows"], "control": counts["control"]["rows"]},
    )
    result = evaluate(data, config.test_size, config.folds, config.seed, config.bootstrap)
    metrics = result.metrics
    extra = {
        "metrics": {"held_out": {k: v for k, v in metrics.items() if k != "qini_curve"}, "cv": result.cv},
        "training": {"campaigns": list(config.campaigns), "rows": data.n_rows, "arms": counts},
    }
    model_bytes, document = build_bundle(result.model, result.train.frame, data.integer, config.seed, extra)
    settings = registry.Settings.from_env()
    version = "local"
    gate_result: dict[str, Any] | None = None
    with registry.tracked_run(settings, run_name=f"{config.model_name}-train") as (mlclient, run):
        run_id = run.info.run_id
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        mlclient.log_batch(
            run_id,
            metrics=[Metric("test_qini", float(metrics["qini"]), now, 0)]
            + [Metric(f"test_qini_{k}", float(v["qini"]), now, 0) for k, v in metrics["rankings"].items()],
            params=[
                Param("data", str(config.data)),
                Param("campaigns", ",".join(config.campaigns)[:500]),
                Param("learner", result.model.name),
                Param("seed", str(config.seed)),
            ],
        )
        if config.register:
            version = registry.register_version(mlclient, config.model_name, run, {})
        bundle_dir = settings.bundle_dir(config.model_name, version if config.register else f"run-{run_id}")
        try:
            write_uplift_bundle(bundle_dir, model_bytes, document, config.model_name, version, run_id)
            mlclient.log_artifacts(run_id, str(bundle_dir), registry.BUNDLE_ARTIFACTS)
            if config.register:
                mlclient.set_model_version_tag(config.model_name, version, QINI_TAG, repr(float(metrics["qini"])))
                registry.publish(mlclient, config.model_name, version, bundle_dir)
                gate_result = gate(mlclient, config.model_name, version, float(metrics["qini"]))
        except BaseException:
            if config.register:
                mlclient.delete_model_version(config.model_name, version)
            raise
    return {
        "model_name": config.model_name,
        "version": version,
        "run_id": run_id,
        "bundle_path": str(bundle_dir),
        "campaigns": list(config.campaigns),
        "rows": data.n_rows,
        "arms": counts,
        "learner": result.model.name,
        "cv": result.cv,
        "held_out": metrics["held_out"],
        "rankings": metrics["rankings"],
        "deciles": metrics["deciles"],
        "qini_curve": metrics["qini_curve"],
        "gate": gate_result,
        "seconds": round(time.perf_counter() - started, 2),
    }
