"""Conversion of the fitted pipeline to ONNX: converter registration and the graph's raw-column inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import onnx
import pandas as pd
from sklearn.pipeline import Pipeline

from churnops_trainer.contributions import (
    CONTRIBUTION_OUTPUT,
    Calibration,
    column_groups,
    explained_features,
    replace_head,
)
from churnops_trainer.features import FeatureSet, Float32Imputer, RatioFeatures
from churnops_trainer.tree_compact import Compaction, compact_trees

ONNX_OPSET = 17
ML_OPSET = 3
PROBABILITY_OUTPUT = "probabilities"
#: bundle.json's explanations.method per kind of head (contributions.replace_head).
METHODS = {
    "additive": "exact Shapley values of an additive model (one tree sum per raw feature)",
    "treeshap": (
        "exact interventional TreeSHAP of trees that test several features (each tree re-expressed over its "
        "internal nodes with its Shapley vector in the leaves)"
    ),
}


def _ratio_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, len(operator.raw_operator.ratios)])


def _ratio_converter(scope: Any, operator: Any, container: Any) -> None:
    """numerator / (denominator + offset) per ratio, 0 where that denominator is 0 (as RatioFeatures)."""
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxConcat, OnnxDiv, OnnxEqual, OnnxGather, OnnxWhere

    opv = container.target_opset
    source = operator.inputs[0]
    zero = np.array([0.0], dtype=np.float32)
    columns = []
    for num, den, offset, _name in operator.raw_operator.ratios:
        numerator = OnnxGather(source, np.array([num], dtype=np.int64), axis=1, op_version=opv)
        denominator = OnnxAdd(
            OnnxGather(source, np.array([den], dtype=np.int64), axis=1, op_version=opv),
            np.array([offset], dtype=np.float32),
            op_version=opv,
        )
        quotient = OnnxDiv(numerator, denominator, op_version=opv)
        columns.append(OnnxWhere(OnnxEqual(denominator, zero, op_version=opv), zero, quotient, op_version=opv))
    result = OnnxConcat(*columns, axis=1, op_version=opv, output_names=[operator.outputs[0]])
    result.add_to(scope, container)


@cache
def register_converters() -> None:
    """Teach skl2onnx about LightGBM (via onnxmltools) and the trainer's own transformers. Idempotent."""
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

    from churnops_trainer.models import Float32LGBMClassifier

    update_registered_converter(
        Float32LGBMClassifier,
        "ChurnopsLightGbmClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        Float32Imputer,
        "ChurnopsFloat32Imputer",
        calculate_sklearn_imputer_output_shapes,
        convert_sklearn_imputer,
    )
    update_registered_converter(RatioFeatures, "ChurnopsRatioFeatures", _ratio_shape, _ratio_converter)


@dataclass
class Converted:
    """The exported graph, what tree merging did, and bundle.json's `explanations` block (docs/bundle.md)."""

    model: onnx.ModelProto
    compaction: Compaction
    explanations: dict[str, Any]


def convert_pipeline(pipeline: Pipeline, features: FeatureSet, background: pd.DataFrame) -> Converted:
    """The whole fitted pipeline as one ONNX graph: one [N,1] input per raw column, calibrated probabilities
    and, for an additive model, per-feature contributions to their log-odds (contributions.py).

    The preprocessing and LightGBM's trees come from the converters; the scoring head (trees regrouped per
    raw feature, Platt calibration of the margin) is built here. `background` is the training split as a
    model frame: the contributions' reference is its mean. Inputs follow `features.raw_columns` in order;
    their names are the converter's (see onnx_inputs), which the bundle records per feature as `input_name`.

    One-feature trees are merged per feature afterwards (tree_compact): same function, far fewer trees.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    register_converters()
    pre = pipeline.named_steps["pre"]
    fitted = pipeline.named_steps["clf"].calibrated_classifiers_[0]
    calibrator = fitted.calibrators[0]
    calibration = Calibration(slope=-float(calibrator.a_), intercept=-float(calibrator.b_))
    bare = Pipeline([("pre", pre), ("clf", fitted.estimator)])
    initial_types: list[tuple[str, Any]] = [(name, FloatTensorType([None, 1])) for name in features.numeric]
    initial_types += [(name, StringTensorType([None, 1])) for name in features.categorical]
    converted = convert_sklearn(
        bare,
        initial_types=initial_types,
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(bare): {"zipmap": False}},
        name="churnops",
    )
    inputs = [i.name for i in converted.graph.input]
    if len(inputs) != len(features.raw_columns) or len(set(inputs)) != len(inputs):
        raise RuntimeError(f"converted graph has inputs {inputs} for feature columns {list(features.raw_columns)}")
    groups = column_groups(pre, features)
    matrix = np.asarray(pre.transform(background), dtype=np.float32)
    model = onnx.ModelProto()
    model.CopyFrom(converted)
    method, baseline = replace_head(model, groups, calibration, None, PROBABILITY_OUTPUT, matrix)
    compaction = compact_trees(model)
    if method is None:
        return Converted(model, compaction, _unavailable())
    if method == "additive":
        # Second pass: measure each feature's mean term on the training split, then centre on it.
        parts = _run(model, onnx_inputs(background, features, inputs))[1]
        reference = parts.mean(axis=0) / calibration.slope
        model = onnx.ModelProto()
        model.CopyFrom(converted)
        _, baseline = replace_head(model, groups, calibration, reference, PROBABILITY_OUTPUT)
        compaction = compact_trees(model)
    explanations = {
        "available": True,
        "output": CONTRIBUTION_OUTPUT,
        "scale": "log_odds",
        "method": METHODS[method],
        "background": {"source": "training split", "rows": len(background)},
        "baseline": baseline,
        "features": [
            {
                "name": f.name,
                "kind": f.kind,
                **({"definition": f.definition} if f.definition else {}),
                **({"ratio": f.ratio} if f.ratio else {}),
            }
            for f in explained_features(features)
        ],
    }
    return Converted(model, compaction, explanations)


def _unavailable() -> dict[str, Any]:
    return {
        "available": False,
        "reason": (
            "the chosen model's trees test several features at once, so its log-odds do not split exactly into "
            "one contribution per feature; this bundle carries no contributions"
        ),
    }


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def onnx_inputs(frame: Any, features: FeatureSet, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Feeds for the graph from a model frame (see features.to_model_frame).

    `input_names` are the graph's inputs in feature order (numeric, then categorical): the converter names
    them after the columns but makes them valid ONNX names (`Monthly  Usage` → `Monthly__Usage`, unique).
    """
    columns = features.raw_columns
    if len(input_names) != len(columns):
        raise ValueError(f"the graph has {len(input_names)} inputs for {len(columns)} feature columns")
    feeds: dict[str, np.ndarray] = {}
    for name, input_name in zip(columns, input_names, strict=True):
        if name in features.numeric:
            feeds[input_name] = np.asarray(frame[name], dtype=np.float32).reshape(-1, 1)
        else:
            feeds[input_name] = np.asarray(frame[name], dtype=object).astype(str).reshape(-1, 1)
    return feeds
