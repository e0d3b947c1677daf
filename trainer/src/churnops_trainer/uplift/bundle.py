"""The uplift bundle (docs/bundle.md, "The uplift bundle"): model.onnx computing the uplift from raw columns, and
bundle.json with the schema, how the uplift is defined, held-out metrics and golden vectors; its verification.

The graph holds the learner's pipelines side by side on the same raw-column inputs as a churn bundle (one [N,1]
input per feature, float32 numerics, string categoricals) and one output ``uplift`` [N,1] float:

* T-learner: uplift = p_control − p_treated, the positive-class probabilities of the two arms' classifiers;
* X-learner: uplift = g · tau_control + (1 − g) · tau_treated, the two effect regressors weighted by the
  randomised probability of treatment g.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from churnops_trainer.bundle_contract import (
    _graph_categories,
    check_registered,
    golden_pairs,
    model_path,
)
from churnops_trainer.errors import BundleError, ExportRefused
from churnops_trainer.export import (
    BUNDLE_FILE,
    FORMAT_VERSION,
    GOLDEN_TOLERANCE,
    MODEL_FILE,
    NATIVE_TOLERANCE,
    bundle_features,
    golden_rows,
    library_versions,
    load_bundle,
    onnx_session,
    rows_frame,
    sha256_file,
)
from churnops_trainer.features import FeatureSet, to_model_frame
from churnops_trainer.onnx_convert import ML_OPSET, ONNX_OPSET, onnx_inputs, register_converters
from churnops_trainer.uplift.learners import Float32LGBMRegressor, UpliftModel

KIND = "uplift"
UPLIFT_OUTPUT = "uplift"
_FLOAT, _STRING = 1, 8


def _register() -> None:
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    register_converters()
    update_registered_converter(
        Float32LGBMRegressor, "ChurnopsLightGbmRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
    )


def _convert(pipeline: Any, features: FeatureSet) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types: list[tuple[str, Any]] = [(n, FloatTensorType([None, 1])) for n in features.numeric]
    initial_types += [(n, StringTensorType([None, 1])) for n in features.categorical]
    return convert_sklearn(
        pipeline,
        initial_types=initial_types,
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(pipeline): {"zipmap": False}} if hasattr(pipeline, "predict_proba") else None,
        name="churnops_uplift",
    )


def _prefixed(model: onnx.ModelProto, prefix: str) -> tuple[list[Any], list[Any], list[str]]:
    """The graph's nodes and initializers with every internal name prefixed (graph inputs keep theirs), and
    its output names after prefixing."""
    graph = model.graph
    names = {o for n in graph.node for o in n.output} | {i.name for i in graph.initializer}
    rename = {name: f"{prefix}{name}" for name in names}
    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{prefix}{node.name}"
        copy.input[:] = [rename.get(i, i) for i in node.input]
        copy.output[:] = [rename.get(o, o) for o in node.output]
        nodes.append(copy)
    initializers = []
    for init in graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = rename[init.name]
        initializers.append(copy)
    return nodes, initializers, [rename.get(o.name, o.name) for o in graph.output]


def _const(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array([[value]], dtype=np.float32), name)


def convert_model(model: UpliftModel) -> tuple[onnx.ModelProto, list[str]]:
    """One graph for the fitted learner, and its input names (in feature order)."""
    _register()
    parts = (
        [("c_", model.control), ("t_", model.treated)]
        if model.name == "t_learner"
        else [("c_", model.tau_control), ("t_", model.tau_treated)]
    )
    converted = [_convert(p, model.features) for _, p in parts]
    inputs = list(converted[0].graph.input)
    input_names = [i.name for i in inputs]
    if len(input_names) != len(model.features.raw_columns):
        raise ExportRefused(f"converted uplift graph has inputs {input_names} for {list(model.features.raw_columns)}")
    nodes: list[Any] = []
    initializers: list[Any] = []
    heads: list[str] = []
    for (prefix, _), graph in zip(parts, converted, strict=True):
        n, i, outputs = _prefixed(graph, prefix)
        nodes += n
        initializers += i
        if model.name == "t_learner":
            probabilities = outputs[1]
            sliced = f"{prefix}p1"
            initializers += [
                numpy_helper.from_array(np.array([1], dtype=np.int64), f"{prefix}start"),
                numpy_helper.from_array(np.array([2], dtype=np.int64), f"{prefix}end"),
                numpy_helper.from_array(np.array([1], dtype=np.int64), f"{prefix}axis"),
            ]
            nodes.append(
                helper.make_node(
                    "Slice",
                    [probabilities, f"{prefix}start", f"{prefix}end", f"{prefix}axis"],
                    [sliced],
                    name=f"{prefix}slice",
                )
            )
            heads.append(sliced)
        else:
            heads.append(outputs[0])
    if model.name == "t_learner":
        nodes.append(helper.make_node("Sub", heads, [UPLIFT_OUTPUT], name="uplift_sub"))
    else:
        g = model.propensity
        initializers += [_const("g_control", g), _const("g_treated", 1 - g)]
        nodes += [
            helper.make_node("Mul", [heads[0], "g_control"], ["w_control"], name="uplift_w_control"),
            helper.make_node("Mul", [heads[1], "g_treated"], ["w_treated"], name="uplift_w_treated"),
            helper.make_node("Add", ["w_control", "w_treated"], [UPLIFT_OUTPUT], name="uplift_add"),
        ]
    output = helper.make_tensor_value_info(UPLIFT_OUTPUT, TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(nodes, "churnops_uplift", inputs, [output], initializers)
    merged = helper.make_model(graph, opset_imports=list(converted[0].opset_import), producer_name="churnops")
    merged.ir_version = converted[0].ir_version
    onnx.checker.check_model(merged)
    return merged, input_names


def onnx_uplift(session: Any, frame: pd.DataFrame, features: FeatureSet, names: list[str]) -> np.ndarray:
    out = session.run([UPLIFT_OUTPUT], onnx_inputs(frame, features, names))[0]
    return np.asarray(out, dtype=np.float64).reshape(-1)


def schema_features(
    model: UpliftModel, typed: pd.DataFrame, integer: dict[str, bool], names: list[str]
) -> list[dict[str, Any]]:
    by_column = dict(zip(model.features.raw_columns, names, strict=True))
    out: list[dict[str, Any]] = []
    for name in model.features.numeric:
        out.append(
            {
                "name": name,
                "input_name": by_column[name],
                "kind": "numeric",
                "integer": integer.get(name, False),
                "required": False,
            }
        )
    for name in model.features.categorical:
        values = to_model_frame(typed, model.features)[name]
        categories = sorted({v for v in values if v != model.features.missing_token})
        out.append(
            {
                "name": name,
                "input_name": by_column[name],
                "kind": "categorical",
                "required": False,
                "categories": categories,
            }
        )
    return out


def build_bundle(
    model: UpliftModel, typed: pd.DataFrame, integer: dict[str, bool], seed: int, extra: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """The graph's bytes and bundle.json (without name, version and run), after checking the graph against the
    native learner on real rows and the golden rows; refused beyond 1e-4."""
    graph, names = convert_model(model)
    data = graph.SerializeToString()
    session = onnx_session(data)
    features = model.features
    rows = golden_rows(typed, features, integer, seed)
    golden_frame = rows_frame(rows, features)
    check_frame = to_model_frame(typed.iloc[: min(len(typed), 2000)], features)
    diffs = []
    for frame in (check_frame, golden_frame):
        diffs.append(np.abs(onnx_uplift(session, frame, features, names) - model.predict(frame)))
    worst = float(max(d.max() for d in diffs))
    if worst > NATIVE_TOLERANCE:
        raise ExportRefused(
            f"export refused: the uplift graph disagrees with the native learner by {worst:.3g} "
            f"(limit {NATIVE_TOLERANCE:g})"
        )
    document = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "onnx": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "opset": ONNX_OPSET,
            "ml_opset": ML_OPSET,
            "uplift_output": UPLIFT_OUTPUT,
        },
        "schema": {
            "id_column": None,
            "missing_token": features.missing_token,
            "features": schema_features(model, typed, integer, names),
        },
        "uplift": {
            "definition": "p(churn | control) - p(churn | treated): the predicted reduction in churn probability "
            "if treated",
            "learner": model.name,
            **({"propensity": model.propensity} if model.name == "x_learner" else {}),
        },
        "golden": {"rows": rows, "uplift": [float(v) for v in onnx_uplift(session, golden_frame, features, names)]},
        "export_check": {"max_abs_diff_vs_native": worst, "rows_checked": int(sum(len(d) for d in diffs))},
        "versions": library_versions(),
        **extra,
    }
    return data, document


def write_uplift_bundle(
    directory: Path, data: bytes, document: dict[str, Any], model_name: str, version: str, run_id: str | None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(data)
    full = {
        "format_version": document["format_version"],
        "kind": KIND,
        "model_name": model_name,
        "model_version": version,
        "run_id": run_id,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{k: v for k, v in document.items() if k not in ("format_version", "kind")},
    }
    (directory / BUNDLE_FILE).write_text(json.dumps(full, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    verify_uplift_bundle(directory)
    return directory


def verify_uplift_bundle(directory: Path, digest: str | None = None, signature: str | None = None) -> dict[str, Any]:
    """Every check a consumer makes before scoring an uplift bundle: the document's rules, the graph's inputs,
    types, categories and output, the graph's sha256, every golden vector to 1e-6, and the registered digest
    (and signature, when CHURNOPS_BUNDLE_KEY is set) when given."""
    directory = Path(directory)
    document = load_bundle(directory)
    if document.get("kind") != KIND:
        raise BundleError(f"bundle {directory}: kind is {document.get('kind')!r}, not an uplift bundle")
    path = model_path(directory, document)
    actual = sha256_file(path)
    if actual != document["onnx"].get("sha256"):
        raise BundleError(
            f"bundle {directory}: sha256 of {path.name} is {actual}, bundle.json says {document['onnx'].get('sha256')}"
        )
    features = document.get("schema", {}).get("features") or []
    names = [f.get("input_name") or f["name"] for f in features]
    if len(set(f["name"] for f in features)) != len(features) or not features:
        raise BundleError(f"bundle {directory}: schema.features must name each feature once")
    rows, expected = golden_pairs(directory, document, "uplift", "uplift", "uplift values")
    graph = onnx.load_from_string(path.read_bytes()).graph
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    if sorted(inputs) != sorted(names):
        raise BundleError(f"bundle {directory}: graph inputs {sorted(inputs)} differ from the schema's {sorted(names)}")
    for feature, name in zip(features, names, strict=True):
        want = _FLOAT if feature["kind"] == "numeric" else _STRING
        if inputs[name] != want:
            raise BundleError(
                f"bundle {directory}: feature {feature['name']!r} is {feature['kind']} "
                f"but its graph input has type {inputs[name]}"
            )
        if feature["kind"] == "categorical":
            unknown = [c for c in feature.get("categories", []) if c not in _graph_categories(graph, name)]
            if unknown:
                raise BundleError(
                    f"bundle {directory}: categories of {feature['name']!r} not known to the graph: {unknown}"
                )
    output = document["onnx"].get("uplift_output", UPLIFT_OUTPUT)
    if output not in {o.name for o in graph.output}:
        raise BundleError(f"bundle {directory}: the graph has no output named {output!r}")
    feature_set = bundle_features(document)
    session = onnx_session(path.read_bytes())
    got = onnx_uplift(session, rows_frame(rows, feature_set), feature_set, names)
    diff = np.abs(got - np.asarray(expected, dtype=np.float64))
    bad = np.flatnonzero(diff > GOLDEN_TOLERANCE)
    if len(bad):
        raise BundleError(
            f"bundle {directory}: {len(bad)} of {len(rows)} golden uplift values differ by more than "
            f"{GOLDEN_TOLERANCE:g} "
            f"(first: row {int(bad[0])}, expected {expected[bad[0]]:.9f}, got {got[bad[0]]:.9f})"
        )
    check_registered(directory, digest, signature)
    return {"bundle": str(directory), "sha256": actual, "golden_rows": len(rows), "max_abs_diff": float(diff.max())}


def score_table(directory: Path, frame: pd.DataFrame) -> np.ndarray:
    """Verify the bundle, then its uplift for every row of a raw table (missing feature columns are missing values)."""
    verify_uplift_bundle(directory)
    document = load_bundle(directory)
    features = bundle_features(document)
    names = [f.get("input_name") or f["name"] for f in document["schema"]["features"]]
    session = onnx_session(model_path(Path(directory), document).read_bytes())
    return onnx_uplift(session, to_model_frame(frame, features), features, names)
