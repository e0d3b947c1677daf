"""What makes a bundle trustworthy beyond its golden vectors: the rules of docs/bundle.md that bundle.json must
obey, its agreement with the ONNX graph it describes, and the digest (and signature) recorded at registration.

The TypeScript runtime (src/model/bundle.ts, src/model/onnx-graph.ts) applies the same rules on every load.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from churnops_trainer.errors import BundleError
from churnops_trainer.export import BUNDLE_FILE, Verification, load_bundle, verify_bundle

MIN_GOLDEN_ROWS = 200
# The signing key for bundle digests and the registry cache (HMAC-SHA256); never logged, never stored.
KEY_ENV = "CHURNOPS_BUNDLE_KEY"
# ONNX TensorProto element types the contract allows for graph inputs.
_FLOAT, _STRING, _DOUBLE = 1, 8, 11
_CATEGORY_ATTRIBUTES = ("cats_strings", "classes_strings", "keys_strings")


def signing_key() -> bytes | None:
    key = os.environ.get(KEY_ENV)
    return key.encode("utf-8") if key else None


def sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def model_path(directory: Path, document: dict[str, Any]) -> Path:
    """The graph file bundle.json names: a plain regular file directly inside the bundle directory."""
    name = document.get("onnx", {}).get("file")
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise BundleError(f"bundle {directory}: onnx.file must name a file inside the bundle folder, got {name!r}")
    path = directory / name
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"bundle {directory}: onnx.file {name!r} is not a regular file in the bundle folder")
    return path


def bundle_digest(directory: Path) -> str:
    """sha256 over the raw sha256 digests of bundle.json and the graph file, in that order (docs/bundle.md)."""
    directory = Path(directory)
    document = load_bundle(directory)
    parts = [(directory / BUNDLE_FILE).read_bytes(), model_path(directory, document).read_bytes()]
    return hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()


def check_registered(directory: Path, digest: str | None, signature: str | None) -> None:
    """The bundle is the one registered: its digest is `digest` (when given), signed with the key when one is set."""
    if digest is None:
        return
    actual = bundle_digest(directory)
    if actual != digest:
        raise BundleError(f"bundle {directory}: digest {actual} differs from the registered {digest}")
    key = signing_key()
    if key is not None and not (signature and hmac.compare_digest(sign(key, digest), signature)):
        raise BundleError(f"bundle {directory}: not signed with the key in {KEY_ENV}")


def golden_pairs(
    directory: Path, document: dict[str, Any], key: str, one: str, many: str
) -> tuple[list[Any], list[Any]]:
    """The golden rows and their expected `key` values: at least MIN_GOLDEN_ROWS rows, one value each."""
    golden = document.get("golden", {})
    rows, values = golden.get("rows") or [], golden.get(key) or []
    if len(rows) < MIN_GOLDEN_ROWS or len(rows) != len(values):
        raise BundleError(
            f"bundle {directory}: golden needs at least {MIN_GOLDEN_ROWS} rows with one {one} each, "
            f"has {len(rows)} rows and {len(values)} {many}"
        )
    return rows, values


def check_document(directory: Path, document: dict[str, Any]) -> None:
    """The rules bundle.json must obey on its own: threshold, bands, features, golden rows, the graph file."""
    threshold = document.get("thresholds", {}).get("operating")
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise BundleError(f"bundle {directory}: thresholds.operating must be in (0, 1), got {threshold!r}")
    bands = document.get("bands") or []
    names = [b.get("name") for b in bands]
    if not bands or len(set(names)) != len(names):
        raise BundleError(f"bundle {directory}: bands must be a non-empty list of uniquely named bands, got {names}")
    mins = [b.get("min") for b in bands]
    if not all(isinstance(m, int | float) and 0 <= m <= 1 for m in mins) or mins != sorted(mins, reverse=True):
        raise BundleError(f"bundle {directory}: bands must be ordered from highest min to lowest in [0, 1]")
    if len(set(mins)) != len(mins):
        raise BundleError(f"bundle {directory}: two bands share the min {mins}")
    features = document.get("schema", {}).get("features") or []
    seen: set[str] = set()
    for feature in features:
        if feature.get("kind") not in ("numeric", "categorical"):
            raise BundleError(f"bundle {directory}: feature {feature.get('name')!r} has kind {feature.get('kind')!r}")
        if feature.get("name") in seen:
            raise BundleError(f"bundle {directory}: feature {feature.get('name')!r} is listed twice")
        seen.add(feature.get("name"))
    golden_pairs(directory, document, "probabilities", "probability", "probabilities")
    model_path(directory, document)


def check_graph(directory: Path, document: dict[str, Any]) -> None:
    """bundle.json against the graph: inputs, their types, the probability output, and each input's categories."""
    import onnx

    model = onnx.load_from_string(model_path(directory, document).read_bytes())
    graph = model.graph
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    features = document["schema"]["features"]
    # A feature reaches the graph under its input_name (the column's name made a valid ONNX name), else its name.
    names = [f.get("input_name") or f["name"] for f in features]
    missing = [n for n in names if n not in inputs]
    extra = [n for n in inputs if n not in names]
    if missing or extra:
        raise BundleError(
            f"bundle {directory}: features and graph inputs differ (no graph input for {missing}, "
            f"graph inputs not in the schema {extra})"
        )
    for feature in features:
        expected = _FLOAT if feature["kind"] == "numeric" else _STRING
        graph_input = feature.get("input_name") or feature["name"]
        if inputs[graph_input] != expected:
            raise BundleError(
                f"bundle {directory}: feature {feature['name']!r} is {feature['kind']} in bundle.json but the graph "
                f"input has element type {inputs[graph_input]}"
            )
        if feature["kind"] == "categorical":
            known = _graph_categories(graph, graph_input)
            unknown = [c for c in feature.get("categories", []) if c not in known]
            if not known or unknown:
                raise BundleError(
                    f"bundle {directory}: categories of {feature['name']!r} not known to the graph: {unknown or 'all'}"
                )
    output = document["onnx"].get("probability_output", "probabilities")
    outputs = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    # Older bundles give float32 probabilities; those with contributions compute the head in double.
    if outputs.get(output) not in (_FLOAT, _DOUBLE):
        raise BundleError(f"bundle {directory}: the graph has no float output named {output!r}")
    explanations = document.get("explanations") or {}
    if explanations.get("available"):
        contributions = explanations.get("output")
        if outputs.get(contributions) != _DOUBLE:
            raise BundleError(f"bundle {directory}: explanations.output {contributions!r} is not a double output")
        names = [f.get("name") for f in explanations.get("features") or []]
        if not names or len(set(names)) != len(names):
            raise BundleError(f"bundle {directory}: explanations.features must name each feature once, got {names}")


def _graph_categories(graph: Any, input_name: str) -> set[str]:
    found: set[str] = set()
    for node in graph.node:
        if input_name in node.input:
            for attribute in node.attribute:
                if attribute.name in _CATEGORY_ATTRIBUTES:
                    found.update(s.decode("utf-8") for s in attribute.strings)
    return found


def verify(directory: Path, digest: str | None = None, signature: str | None = None) -> Verification:
    """Every check a consumer makes: document rules, graph agreement, sha256 and golden vectors, and the
    registered digest (and signature, when a key is configured) when they are given."""
    directory = Path(directory)
    document = load_bundle(directory)
    if document.get("kind") == "uplift":
        from churnops_trainer.uplift.bundle import verify_uplift_bundle

        checked = verify_uplift_bundle(directory, digest, signature)
        return Verification(checked["bundle"], checked["sha256"], checked["golden_rows"], checked["max_abs_diff"])
    check_document(directory, document)
    check_graph(directory, document)
    result = verify_bundle(directory)
    check_registered(directory, digest, signature)
    return result
