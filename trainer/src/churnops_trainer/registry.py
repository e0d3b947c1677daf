"""MLflow: where runs are tracked, versions registered, aliases moved, and bundles fetched back."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnops_trainer import bundle_contract
from churnops_trainer.errors import BundleError, RegistryError
from churnops_trainer.export import BUNDLE_FILE, load_bundle

EXPERIMENT = "churnops"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "previous_champion"
BUNDLE_ARTIFACTS = "bundle"
NATIVE_ARTIFACTS = "native"
NATIVE_FILE = "pipeline.skops"  # skops, not a pickle: see native.py
VERSION_TAGS = ("roc_auc", "recall", "precision", "accuracy", "threshold")
# Set on a version once its bundle is written (publish): what `models` shows and what every load checks.
DIGEST_TAG = "bundle_digest"
SIGNATURE_TAG = "bundle_signature"
SOURCE_TAG = "data_source"
FINGERPRINT_TAG = "data_fingerprint"
SCHEMA_TAG = "schema_summary"
CACHE_FILE = "registry-cache.json"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Settings:
    """Where churnops keeps its files and which MLflow it talks to (from the environment, read once)."""

    home: Path
    tracking_uri: str
    local_store: bool

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("CHURNOPS_HOME") or ".churnops").resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        return cls(home=home, tracking_uri=uri or f"sqlite:///{home / 'mlflow.db'}", local_store=not uri)

    def bundle_dir(self, model_name: str, version: str) -> Path:
        return self.home / "bundles" / model_name / (f"v{version}" if version.isdigit() else version)

    def report_dir(self, run_id: str) -> Path:
        return self.home / "reports" / run_id

    def store_file(self) -> Path | None:
        """The SQLite file behind the tracking store, when it is one (the embedded default or sqlite:///…)."""
        if self.local_store:
            return self.home / "mlflow.db"
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///")).resolve()
        return None


def client(settings: Settings) -> Any:
    """An MlflowClient for these settings; creates the local data folder when the default store is used."""
    import mlflow
    from mlflow import MlflowClient

    if settings.local_store:
        settings.home.mkdir(parents=True, exist_ok=True)
        (settings.home / "mlartifacts").mkdir(exist_ok=True)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # mlflow installs its own INFO handler on import; stderr is for our JSON lines.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def experiment_id(mlclient: Any, settings: Settings) -> str:
    experiment = mlclient.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = (settings.home / "mlartifacts").as_uri() if settings.local_store else None
    return str(mlclient.create_experiment(EXPERIMENT, artifact_location=location))


def git_commit() -> str | None:
    """The commit of the working tree the trainer runs from, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return "RESOURCE_DOES_NOT_EXIST" in str(code) or "INVALID_PARAMETER_VALUE" in str(code)


def register_version(mlclient: Any, model_name: str, run: Any, metrics: dict[str, float]) -> str:
    """A new registered version whose source is the run's bundle/ artifacts; tagged with headline metrics."""
    from mlflow.exceptions import MlflowException

    try:
        mlclient.get_registered_model(model_name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        mlclient.create_registered_model(model_name, description="churnops churn model (ONNX bundle)")
    source = f"{run.info.artifact_uri.rstrip('/')}/{BUNDLE_ARTIFACTS}"
    version = mlclient.create_model_version(model_name, source=source, run_id=run.info.run_id)
    for key in VERSION_TAGS:
        if key in metrics:
            mlclient.set_model_version_tag(model_name, version.version, key, f"{metrics[key]:.6f}")
    return str(version.version)


def publish(mlclient: Any, model_name: str, version: str, bundle_dir: Path) -> None:
    """Record what the written bundle is (digest, signature where a key is configured, data and schema) on its
    version, then make it the challenger. Every later load compares the bundle against this digest."""
    document = load_bundle(bundle_dir)
    digest = bundle_contract.bundle_digest(bundle_dir)
    run = mlclient.get_run(document["run_id"])
    features = document["schema"]["features"]
    kinds = [f["kind"] for f in features]
    tags = {
        DIGEST_TAG: digest,
        SOURCE_TAG: str(run.data.params.get("data", "")),
        FINGERPRINT_TAG: str(run.data.tags.get("data_fingerprint", "")),
        SCHEMA_TAG: f"{len(features)} features "
        f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical)",
    }
    if (key := bundle_contract.signing_key()) is not None:
        tags[SIGNATURE_TAG] = bundle_contract.sign(key, digest)
    for name, value in tags.items():
        mlclient.set_model_version_tag(model_name, version, name, value)
    mlclient.set_registered_model_alias(model_name, CHALLENGER, version)


def _version(mlclient: Any, model_name: str, alias: str | None, version: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        if alias:
            return mlclient.get_model_version_by_alias(model_name, alias)
        return mlclient.get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _not_found(exc):
            what = f"alias '{alias}'" if alias else f"version {version}"
            raise RegistryError(f"registered model '{model_name}' has no {what}") from None
        raise


def _history(mlclient: Any, model_name: str) -> list[str]:
    tags = mlclient.get_registered_model(model_name).tags or {}
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except json.JSONDecodeError:
        return []


def version_info(model_version: Any, aliases: list[str] | None = None) -> dict[str, Any]:
    tags = model_version.tags or {}
    created = datetime.fromtimestamp(model_version.creation_timestamp / 1000, UTC)
    return {
        "version": str(model_version.version),
        "aliases": sorted(aliases if aliases is not None else getattr(model_version, "aliases", None) or []),
        "run_id": model_version.run_id,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": {k: float(tags[k]) for k in VERSION_TAGS if k in tags and k != "threshold"},
        "threshold": float(tags["threshold"]) if "threshold" in tags else None,
        "bundle_digest": tags.get(DIGEST_TAG),
        "bundle_signature": tags.get(SIGNATURE_TAG),
        "data_source": tags.get(SOURCE_TAG),
        "data_fingerprint": tags.get(FINGERPRINT_TAG),
        "schema_summary": tags.get(SCHEMA_TAG),
    }


def _versions(mlclient: Any, settings: Settings, model_name: str, aliases: dict[str, Any]) -> list[dict[str, Any]]:
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(str(number), []).append(alias)
    infos = []
    for v in mlclient.search_model_versions(f"name='{model_name}'"):
        info = version_info(v, by_version.get(str(v.version), []))
        info["bundle_path"] = str(settings.bundle_dir(model_name, str(v.version)))
        infos.append(info)
    return sorted(infos, key=lambda v: int(v["version"]), reverse=True)


def list_versions(settings: Settings, model_name: str) -> list[dict[str, Any]]:
    mlclient = client(settings)
    if not mlclient.search_model_versions(f"name='{model_name}'"):
        raise RegistryError(f"registered model '{model_name}' has no versions (train one first)")
    versions = _versions(mlclient, settings, model_name, mlclient.get_registered_model(model_name).aliases or {})
    write_cache(settings, mlclient)
    return versions


def _store_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": str(st.st_mtime_ns), "ino": str(st.st_ino)}


def write_cache(settings: Settings, mlclient: Any) -> Path | None:
    """Rewrite <home>/registry-cache.json: every registered model's aliases and versions, with the identity of
    the SQLite store they were read from, so that the TypeScript side resolves without starting Python.

    MLflow stays the one source of truth: the cache is only valid while the store file is exactly as it was
    when read (size, mtime, inode); any write to the store makes readers fall back to the trainer, which
    rewrites the cache. A store that changed while it was being read leaves no cache at all.
    """
    store = settings.store_file()
    path = settings.home / CACHE_FILE
    if store is None or not store.is_file():
        return None
    before = _store_identity(store)
    models: dict[str, Any] = {}
    for registered in mlclient.search_registered_models():
        aliases = {a: str(v) for a, v in (registered.aliases or {}).items()}
        models[registered.name] = {
            "aliases": aliases,
            "versions": _versions(mlclient, settings, registered.name, aliases),
        }
    if _store_identity(store) != before:
        path.unlink(missing_ok=True)
        return None
    body = json.dumps({"format": CACHE_FORMAT, "store": before, "models": models}, allow_nan=False)
    key = bundle_contract.signing_key()
    if key is None:
        seal = f"sha256:{hashlib.sha256(body.encode()).hexdigest()}"
    else:
        seal = f"hmac-sha256:{bundle_contract.sign(key, body)}"
    settings.home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".registry-cache-", dir=settings.home)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{body}\n{seal}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def _schema_difference(champion: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """How two bundles' input columns differ, in words: columns missing, new, or of another kind."""
    old = {f["name"]: f["kind"] for f in champion["schema"]["features"]}
    new = {f["name"]: f["kind"] for f in candidate["schema"]["features"]}
    out = []
    if gone := [n for n in old if n not in new]:
        out.append(f"no longer takes {', '.join(gone)}")
    if added := [n for n in new if n not in old]:
        out.append(f"newly takes {', '.join(added)}")
    if changed := [f"{n} ({old[n]} → {new[n]})" for n in old if n in new and old[n] != new[n]]:
        out.append(f"changes the kind of {', '.join(changed)}")
    return out


def promote(settings: Settings, model_name: str, version: str | None = None, force: bool = False) -> dict[str, Any]:
    """Point `champion` at a version (default: the challenger), remembering the champion it replaces.

    A version whose input columns differ from the champion's would make every caller's rows invalid (or
    silently different), so it is refused unless `force`.
    """
    mlclient = client(settings)
    target = _version(mlclient, model_name, None if version else CHALLENGER, version)
    previous = None
    try:
        previous = str(mlclient.get_model_version_by_alias(model_name, CHAMPION).version)
    except Exception as exc:
        if not _not_found(exc):
            raise
    if previous is not None and previous != str(target.version) and not force:
        old = load_bundle(Path(resolve(settings, model_name, version=previous)["bundle_path"]))
        new = load_bundle(Path(resolve(settings, model_name, version=str(target.version))["bundle_path"]))
        if differences := _schema_difference(old, new):
            raise RegistryError(
                f"version {target.version} {'; '.join(differences)} compared with champion v{previous}: "
                "its callers' rows would not fit; pass --force to promote it anyway"
            )
    history = _history(mlclient, model_name)
    if previous is not None and previous != str(target.version):
        history.append(previous)
        mlclient.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history))
    mlclient.set_registered_model_alias(model_name, CHAMPION, str(target.version))
    write_cache(settings, mlclient)
    return {"model_name": model_name, "version": str(target.version), "previous_champion": previous}


def rollback(settings: Settings, model_name: str) -> dict[str, Any]:
    """Restore the champion that the last promotion replaced."""
    mlclient = client(settings)
    try:
        history = _history(mlclient, model_name)
    except Exception as exc:
        if _not_found(exc):
            raise RegistryError(f"registered model '{model_name}' does not exist") from None
        raise
    if not history:
        raise RegistryError(f"registered model '{model_name}' has no previous champion to roll back to")
    restored = history.pop()
    current = _version(mlclient, model_name, CHAMPION, None)
    _version(mlclient, model_name, None, restored)
    mlclient.set_registered_model_alias(model_name, CHAMPION, restored)
    mlclient.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history))
    write_cache(settings, mlclient)
    return {"model_name": model_name, "version": restored, "replaced": str(current.version)}


def resolve(
    settings: Settings, model_name: str, alias: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """The local bundle directory of a version or alias, downloading bundle/ from the run when not cached."""
    import mlflow

    mlclient = client(settings)
    found = _version(mlclient, model_name, alias, version)
    number = str(found.version)
    target = settings.bundle_dir(model_name, number)
    info = version_info(found)
    digest, signature = info["bundle_digest"], info["bundle_signature"]
    if signature is None and bundle_contract.signing_key() is not None:
        raise RegistryError(f"{model_name} v{number} is not signed, and {bundle_contract.KEY_ENV} requires a signature")
    if not _cached(target, found.run_id, digest, signature):
        with tempfile.TemporaryDirectory(prefix="churnops-bundle-") as tmp:
            try:
                fetched = mlflow.artifacts.download_artifacts(
                    run_id=found.run_id,
                    artifact_path=BUNDLE_ARTIFACTS,
                    dst_path=tmp,
                    tracking_uri=settings.tracking_uri,
                )
            except Exception as exc:
                raise RegistryError(f"cannot download the bundle of {model_name} v{number}: {exc}") from None
            staged = Path(fetched)
            bundle_contract.verify(staged, digest, signature)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staged, target)
    write_cache(settings, mlclient)
    return {
        "model_name": model_name,
        "version": number,
        "aliases": info["aliases"],
        "bundle_path": str(target),
        "run_id": found.run_id,
        "bundle_digest": digest,
        "bundle_signature": signature,
    }


def _cached(directory: Path, run_id: str, digest: str | None, signature: str | None) -> bool:
    if not (directory / BUNDLE_FILE).is_file():
        return False
    try:
        document = load_bundle(directory)
        if document.get("run_id") != run_id:
            return False
        bundle_contract.verify(directory, digest, signature)
    except BundleError:
        return False
    return True


def download_native(settings: Settings, run_id: str) -> Path:
    """The native pipeline logged with a run (for parity checks), downloaded to a temporary folder."""
    import mlflow

    client(settings)
    tmp = tempfile.mkdtemp(prefix="churnops-native-")
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"{NATIVE_ARTIFACTS}/{NATIVE_FILE}",
            dst_path=tmp,
            tracking_uri=settings.tracking_uri,
        )
    except Exception as exc:
        raise RegistryError(f"cannot download the native pipeline of run {run_id}: {exc}") from None
    return Path(path)


@contextmanager
def tracked_run(settings: Settings, run_name: str) -> Iterator[tuple[Any, Any]]:
    """An MLflow run that ends FINISHED on success and FAILED on any exception."""
    mlclient = client(settings)
    run = mlclient.create_run(experiment_id(mlclient, settings), run_name=run_name)
    try:
        yield mlclient, run
    except BaseException:
        mlclient.set_terminated(run.info.run_id, "FAILED")
        raise
    mlclient.set_terminated(run.info.run_id, "FINISHED")
    # The run's last write to the store: readers may now resolve from the cache without Python.
    write_cache(settings, mlclient)
