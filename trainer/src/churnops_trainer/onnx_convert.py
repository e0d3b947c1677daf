"""Conversion of the fitted pipeline to ONNX: converter registration and the graph's raw-column inputs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import onnx
from sklearn.pipeline import Pipeline

from churnops_trainer.features import FeatureSet, Float32Imputer, RatioFeatures
from churnops_trainer.tree_compact import Compaction, compact_trees

ONNX_OPSET = 17
ML_OPSET = 3
PROBABILITY_OUTPUT = "probabilities"


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


def convert_pipeline(pipeline: Pipeline, features: FeatureSet) -> tuple[onnx.ModelProto, Compaction]:
    """The whole fitted pipeline as one ONNX graph: one [N,1] input per raw column, calibrated probabilities.

    Inputs follow `features.raw_columns` in order; their names are the converter's (see onnx_inputs), which
    the bundle records per feature as `input_name`.

    One-feature trees are merged per feature afterwards (tree_compact): same function, far fewer trees.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    register_converters()
    initial_types: list[tuple[str, Any]] = [(name, FloatTensorType([None, 1])) for name in features.numeric]
    initial_types += [(name, StringTensorType([None, 1])) for name in features.categorical]
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types,
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(pipeline): {"zipmap": False}},
        name="churnops",
    )
    inputs = [i.name for i in model.graph.input]
    if len(inputs) != len(features.raw_columns) or len(set(inputs)) != len(inputs):
        raise RuntimeError(f"converted graph has inputs {inputs} for feature columns {list(features.raw_columns)}")
    outputs = [o.name for o in model.graph.output]
    if PROBABILITY_OUTPUT not in outputs:
        raise RuntimeError(f"converted graph has no '{PROBABILITY_OUTPUT}' output (outputs: {outputs})")
    return model, compact_trees(model)


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
