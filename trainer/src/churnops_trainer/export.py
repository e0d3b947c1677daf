"""The model bundle (docs/bundle.md): model.onnx + bundle.json, the export check, and the verifier."""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_trainer.errors import BundleError, ExportRefused
from churnops_trainer.features import FeatureSet, to_model_frame
from churnops_trainer.onnx_convert import CONTRIBUTION_OUTPUT, ML_OPSET, ONNX_OPSET, PROBABILITY_OUTPUT, onnx_inputs

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
BUNDLE_FILE = "bundle.json"
GOLDEN_TOLERANCE = 1e-6
#: |baseline + Σ contributions − logit(probability)| a bundle may show on any row (docs/bundle.md).
IDENTITY_TOLERANCE = 1e-5
NATIVE_TOLERANCE = 1e-4
GOLDEN_ROWS = 200
UNSEEN_CATEGORY = "__unseen_category__"
DEFAULT_BANDS = (("high", 0.10), ("medium", 0.30))
VERSIONED_LIBRARIES = (
    "lightgbm",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "onnxmltools",
    "numpy",
    "mlflow",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def onnx_session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def onnx_probabilities(session: Any, frame: pd.DataFrame, features: FeatureSet) -> np.ndarray:
    """Positive-class probabilities the graph gives for a model frame (its inputs are in feature order)."""
    input_names = [i.name for i in session.get_inputs()]
    output = session.run([PROBABILITY_OUTPUT], onnx_inputs(frame, features, input_names))[0]
    return np.asarray(output[:, 1], dtype=np.float64)


def onnx_explained(session: Any, frame: pd.DataFrame, features: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class probabilities and per-feature contributions (log-odds) in one call of an additive graph."""
    input_names = [i.name for i in session.get_inputs()]
    probabilities, contributions = session.run(
        [PROBABILITY_OUTPUT, CONTRIBUTION_OUTPUT], onnx_inputs(frame, features, input_names)
    )
    return np.asarray(probabilities[:, 1], dtype=np.float64), np.asarray(contributions, dtype=np.float64)


def identity_gap(probabilities: np.ndarray, contributions: np.ndarray, baseline: float) -> np.ndarray:
    """|baseline + Σ contributions − logit(p)| per row (inf where p is 0 or 1)."""
    with np.errstate(divide="ignore"):
        logit = np.log(probabilities) - np.log1p(-probabilities)
    return np.abs(baseline + contributions.sum(axis=1) - logit)


def percentiles(values: np.ndarray) -> list[float]:
    """The 0th…100th percentiles of the present values (what reason texts compare a customer's value with)."""
    present = np.asarray(values, dtype=np.float64)
    present = present[~np.isnan(present)]
    if not len(present):
        return []
    return [float(v) for v in np.quantile(present, np.linspace(0, 1, 101))]


def rows_frame(rows: list[dict[str, Any]], features: FeatureSet) -> pd.DataFrame:
    """JSON rows (numbers/strings/null) as a model frame, missing categoricals → the missing token."""
    table = pd.DataFrame(
        {name: [row.get(name) for row in rows] for name in features.raw_columns}, index=range(len(rows))
    )
    for name in features.numeric:
        table[name] = pd.to_numeric(table[name], errors="coerce").astype("float64")
    return to_model_frame(table, features)


def _json_value(value: Any, integer: bool) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    number = float(value)
    return int(number) if integer and number.is_integer() else number


def golden_rows(
    typed: pd.DataFrame, features: FeatureSet, integer: dict[str, bool], seed: int, n: int = GOLDEN_ROWS
) -> list[dict[str, Any]]:
    """At least `n` rows: real rows, then copies with missing values and with unseen categories."""
    rng = np.random.default_rng(seed)
    columns = list(features.raw_columns)
    special = max(20, n // 10)
    base_n = n - special
    picks = rng.choice(len(typed), size=base_n, replace=len(typed) < base_n)
    base = typed.iloc[picks][columns].reset_index(drop=True)
    rows = [{c: _json_value(row[c], integer.get(c, False)) for c in columns} for row in base.to_dict(orient="records")]
    for k in range(special):
        row = dict(rows[k % len(rows)])
        if k % 2 == 0 or not features.categorical:
            # Missing values: one numeric and one categorical column at a time, all of them every 5th row.
            targets = columns if k % 5 == 0 else [columns[k % len(columns)]]
            for c in targets:
                row[c] = None
        else:
            c = features.categorical[k % len(features.categorical)]
            row[c] = f"{UNSEEN_CATEGORY}{k}"
        rows.append(row)
    return rows


def export_check(
    session: Any, native_scores: np.ndarray, frame: pd.DataFrame, features: FeatureSet, threshold: float
) -> dict[str, Any]:
    """Compare graph and native pipeline on the same rows; refuse on drift > 1e-4 or a flipped decision."""
    onnx_scores = onnx_probabilities(session, frame, features)
    diff = np.abs(onnx_scores - native_scores)
    flipped = int(np.sum((onnx_scores >= threshold) != (native_scores >= threshold)))
    check = {
        "max_abs_diff_vs_native": float(diff.max()) if len(diff) else 0.0,
        "decisions_flipped": flipped,
        "rows_checked": len(frame),
    }
    if check["max_abs_diff_vs_native"] > NATIVE_TOLERANCE or flipped:
        worst = int(np.argmax(diff))
        raise ExportRefused(
            f"export refused: the ONNX graph disagrees with the native pipeline on {len(frame)} check rows "
            f"(max |p_onnx - p_native| = {check['max_abs_diff_vs_native']:.3g} at row {worst}, "
            f"limit {NATIVE_TOLERANCE:g}; {flipped} decision(s) flipped at threshold {threshold:.6f})"
        )
    return check


def numeric_profile(values: pd.Series, bins: int = 10) -> dict[str, Any]:
    """Bins at training deciles (inner edges), frequencies, missing share, mean and std."""
    present = values.dropna().to_numpy(dtype=np.float64)
    n = len(values)
    if not len(present):
        return {
            "kind": "numeric",
            "edges": [],
            "freqs": [1.0],
            "missing_share": 1.0,
            "mean": None,
            "std": None,
        }
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "freqs": [float(c) / len(present) for c in counts],
        "missing_share": float(1 - len(present) / n),
        "mean": float(present.mean()),
        "std": float(present.std()),
    }


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    present = values.dropna()
    freqs = present.astype(str).value_counts(normalize=True).sort_index()
    return {
        "kind": "categorical",
        "freqs": {str(k): float(v) for k, v in freqs.items()},
        "missing_share": float(1 - len(present) / len(values)) if len(values) else 0.0,
    }


def reference_profile(typed: pd.DataFrame, features: FeatureSet, scores: np.ndarray) -> dict[str, Any]:
    """The training data's profile, for drift checks by consumers."""
    profile: dict[str, Any] = {"n_rows": len(typed), "features": {}}
    for name in features.numeric:
        profile["features"][name] = numeric_profile(typed[name])
    for name in features.categorical:
        profile["features"][name] = categorical_profile(typed[name])
    score = numeric_profile(pd.Series(scores))
    profile["score"] = {"edges": score["edges"], "freqs": score["freqs"]}
    return profile


def calibration_profile(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability of the shipped probabilities on held-out rows: equal-width bins and the expected calibration
    error (ECE). Consumers use it to decide whether performance estimated from probabilities alone (before labels
    arrive) can be trusted."""
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    index = np.clip(np.floor(scores * bins).astype(int), 0, bins - 1)
    out: list[dict[str, Any]] = []
    ece = 0.0
    for k in range(bins):
        mask = index == k
        n = int(mask.sum())
        if n == 0:
            continue
        mean_p, rate = float(scores[mask].mean()), float(y[mask].mean())
        ece += n / len(y) * abs(mean_p - rate)
        out.append(
            {
                "lower": k / bins,
                "upper": (k + 1) / bins,
                "n": n,
                "mean_predicted": round(mean_p, 6),
                "observed_rate": round(rate, 6),
            }
        )
    return {"source": "test split", "n_rows": len(y), "bins": out, "ece": round(ece, 6)}


def bands_from_scores(
    scores: np.ndarray, operating: float, shares: tuple[tuple[str, float], ...] = DEFAULT_BANDS
) -> list[dict[str, Any]]:
    """Risk bands, high → low: each named band holds (about) its cumulative top share of training scores.

    The lowest named band starts at the operating threshold at the latest, so that every customer the model
    flags is in a named band (never `low`): band and decision tell one story. On Telco the top 30% of scores
    began above the threshold that meets the recall target, and 772 flagged customers were `low`.
    """
    bands = [{"name": name, "min": round(float(np.quantile(scores, 1 - cumulative)), 6)} for name, cumulative in shares]
    # The threshold itself, not a rounding of it: `p >= min` must be the very comparison `p >= operating` is.
    bands[-1]["min"] = min(bands[-1]["min"], operating)
    bands.append({"name": "low", "min": 0.0})
    return bands


@dataclass
class BundleParts:
    """Everything bundle.json needs besides the version, known once the model is trained and checked."""

    model_bytes: bytes
    schema: dict[str, Any]
    thresholds: dict[str, Any]
    bands: list[dict[str, Any]]
    metrics: dict[str, Any]
    reference: dict[str, Any]
    golden: dict[str, Any]
    export_check: dict[str, Any]
    # Trees and nodes before and after merging one-feature trees (tree_compact), for the record.
    tree_compaction: dict[str, int] | None = None
    #: The contributions block (docs/bundle.md); `{"available": false, ...}` for a model without them.
    explanations: dict[str, Any] | None = None


def bundle_document(parts: BundleParts, model_name: str, model_version: str, run_id: str) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "model_version": model_version,
        "run_id": run_id,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "onnx": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(parts.model_bytes).hexdigest(),
            "opset": ONNX_OPSET,
            "ml_opset": ML_OPSET,
            "probability_output": PROBABILITY_OUTPUT,
            "positive_index": 1,
            "tree_compaction": parts.tree_compaction,
        },
        "schema": parts.schema,
        "thresholds": parts.thresholds,
        "bands": parts.bands,
        "metrics": parts.metrics,
        "reference": parts.reference,
        "golden": parts.golden,
        "explanations": parts.explanations or {"available": False, "reason": "exported without contributions"},
        "export_check": parts.export_check,
        "versions": library_versions(),
    }


def write_bundle(directory: Path, parts: BundleParts, model_name: str, model_version: str, run_id: str) -> Path:
    """Write model.onnx and bundle.json into `directory` (created), then verify what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(parts.model_bytes)
    document = bundle_document(parts, model_name, model_version, run_id)
    (directory / BUNDLE_FILE).write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    verify_bundle(directory)
    return directory


def load_bundle(directory: Path) -> dict[str, Any]:
    path = Path(directory) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"not a bundle: {path} does not exist")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if document.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: unsupported format_version {document.get('format_version')!r}")
    return document


def bundle_features(document: dict[str, Any]) -> FeatureSet:
    schema = document["schema"]
    return FeatureSet(
        numeric=tuple(f["name"] for f in schema["features"] if f["kind"] == "numeric"),
        categorical=tuple(f["name"] for f in schema["features"] if f["kind"] == "categorical"),
        missing_token=schema["missing_token"],
    )


def input_names(document: dict[str, Any]) -> list[str]:
    """Each feature's graph input, in schema order (`input_name`, or the column's name in older bundles)."""
    return [f.get("input_name", f["name"]) for f in document["schema"]["features"]]


@dataclass(frozen=True)
class Verification:
    bundle: str
    sha256: str
    golden_rows: int
    max_abs_diff: float


def verify_bundle(directory: Path) -> Verification:
    """Check the ONNX file's sha256 and every golden vector (to 1e-6) with onnxruntime."""
    directory = Path(directory)
    document = load_bundle(directory)
    model_path = directory / document["onnx"]["file"]
    if not model_path.is_file():
        raise BundleError(f"bundle {directory}: {model_path.name} is missing")
    actual = sha256_file(model_path)
    if actual != document["onnx"]["sha256"]:
        raise BundleError(
            f"bundle {directory}: sha256 of {model_path.name} is {actual}, "
            f"bundle.json says {document['onnx']['sha256']}"
        )
    features = bundle_features(document)
    session = onnx_session(model_path.read_bytes())
    graph_inputs = [i.name for i in session.get_inputs()]
    declared = input_names(document)
    if graph_inputs != declared:
        raise BundleError(
            f"bundle {directory}: graph inputs {graph_inputs} differ from the schema's features' inputs {declared}"
        )
    rows = document["golden"]["rows"]
    expected = np.asarray(document["golden"]["probabilities"], dtype=np.float64)
    if len(rows) != len(expected) or len(rows) == 0:
        raise BundleError(f"bundle {directory}: {len(rows)} golden rows but {len(expected)} probabilities")
    got = onnx_probabilities(session, rows_frame(rows, features), features)
    diff = np.abs(got - expected)
    bad = np.flatnonzero(diff > GOLDEN_TOLERANCE)
    if len(bad):
        raise BundleError(
            f"bundle {directory}: {len(bad)} of {len(rows)} golden vectors differ by more than {GOLDEN_TOLERANCE:g} "
            f"(first: row {int(bad[0])}, expected {expected[bad[0]]:.9f}, got {got[bad[0]]:.9f})"
        )
    explanations = document.get("explanations") or {}
    if explanations.get("available"):
        verify_contributions(directory, document, session, rows_frame(rows, features), features)
    return Verification(str(directory), actual, len(rows), float(diff.max()))


def verify_contributions(
    directory: Path, document: dict[str, Any], session: Any, frame: pd.DataFrame, features: FeatureSet
) -> None:
    """The golden contributions to 1e-6, and baseline + Σ contributions = logit(p) to 1e-5 on every golden row."""
    explanations = document["explanations"]
    names = [f["name"] for f in explanations.get("features", [])]
    expected = np.asarray(document["golden"].get("contributions") or [], dtype=np.float64)
    if expected.shape != (len(frame), len(names)):
        raise BundleError(
            f"bundle {directory}: golden.contributions must hold {len(names)} values for each of {len(frame)} "
            f"golden rows, has shape {list(expected.shape)}"
        )
    probabilities, got = onnx_explained(session, frame, features)
    if got.shape != expected.shape:
        raise BundleError(
            f"bundle {directory}: the graph gives {got.shape[1]} contributions, bundle.json names {len(names)}"
        )
    diff = np.abs(got - expected)
    if diff.max() > GOLDEN_TOLERANCE:
        row, col = np.unravel_index(int(np.argmax(diff)), diff.shape)
        raise BundleError(
            f"bundle {directory}: golden contribution of {names[col]!r} on row {row} is {expected[row, col]:.9f} "
            f"in bundle.json but {got[row, col]:.9f} from the graph (limit {GOLDEN_TOLERANCE:g})"
        )
    gap = identity_gap(probabilities, got, float(explanations["baseline"]))
    if not gap.max() <= IDENTITY_TOLERANCE:
        row = int(np.argmax(gap))
        raise BundleError(
            f"bundle {directory}: on golden row {row} baseline + sum of contributions differs from logit(p) by "
            f"{gap[row]:.3g} (limit {IDENTITY_TOLERANCE:g})"
        )
