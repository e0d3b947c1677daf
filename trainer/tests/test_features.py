"""Feature pipeline units: ratios, missing handling, float32-safe trees — native and ONNX agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from churnops_trainer.export import onnx_session
from churnops_trainer.features import FeatureSet, RatioFeatures, RatioSpec, monotone_vector, to_model_frame
from churnops_trainer.models import Float32LGBMClassifier, float32_safe_booster
from churnops_trainer.onnx_convert import register_converters


def test_ratio_is_zero_where_the_denominator_is_zero_and_matches_onnx() -> None:
    register_converters()
    x = np.array([[10.0, 0.0], [10.0, -1.0], [3.0, 2.0], [0.1, 0.3]], dtype=np.float32)
    step = RatioFeatures([(0, 1, 1.0, "per_month"), (1, 0, 0.0, "inverse")]).fit(x)
    native = step.transform(x)
    np.testing.assert_array_equal(
        native[:, 0], np.array([10.0, 0.0, 1.0, np.float32(0.1) / np.float32(1.3)], dtype=np.float32)
    )
    model = convert_sklearn(
        step, initial_types=[("x", FloatTensorType([None, 2]))], target_opset={"": 17, "ai.onnx.ml": 3}
    )
    onnx_out = onnx_session(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(onnx_out, native)
    assert list(step.get_feature_names_out()) == ["per_month", "inverse"]


def test_ratio_definition_reads_like_the_spec() -> None:
    assert RatioSpec("r", "MonthlyCharges", "tenure", 1).definition == "MonthlyCharges / (tenure + 1)"
    assert RatioSpec("r", "a", "b").definition == "a / b"


def test_model_frame_rounds_numerics_to_float32_and_fills_the_missing_token() -> None:
    features = FeatureSet(numeric=("x",), categorical=("c",))
    frame = to_model_frame(pd.DataFrame({"x": ["0.1", " ", None], "c": ["a", None, 2.0]}), features)
    assert frame["x"].iloc[0] == float(np.float32(0.1)) and frame["x"].isna().sum() == 2
    assert list(frame["c"]) == ["a", "__missing__", "2"]
    absent = to_model_frame(pd.DataFrame({"other": [1]}), features)
    assert np.isnan(absent["x"].iloc[0]) and absent["c"].iloc[0] == "__missing__"


def test_monotone_constraints_reach_ratios_through_their_numerator() -> None:
    features = FeatureSet(
        numeric=("tickets", "tenure"),
        categorical=(),
        ratios=(RatioSpec("per_month", "tickets", "tenure", 1),),
        monotone={"tickets": 1},
    )
    names = ["num__tickets", "num__tenure", "ratio__per_month"]
    assert monotone_vector(features, names) == [1, 0, 1]
    conflicting = FeatureSet(("tickets", "tenure"), (), features.ratios, {"tickets": 1, "tenure": 1})
    assert monotone_vector(conflicting, names) == [1, 1, 0]


def _adjacent_float32_table() -> tuple[np.ndarray, np.ndarray]:
    """One feature whose classes sit on neighbouring float32 values: the split falls between them."""
    rng = np.random.default_rng(0)
    lows = np.float32(1000.0) + np.arange(4, dtype=np.float32) * np.float32(0.25)
    highs = np.nextafter(lows, np.float32(np.inf))
    x = np.concatenate([np.repeat(lows, 300), np.repeat(highs, 300)]).astype(np.float64).reshape(-1, 1)
    y = np.concatenate([np.zeros(1200, int), np.ones(1200, int)])
    noise = rng.random(len(y)) < 0.1
    y[noise] = 1 - y[noise]
    return x, y


def _onnx_scores(model: object, x: np.ndarray) -> np.ndarray:
    converted = convert_sklearn(
        model,
        initial_types=[("x", FloatTensorType([None, x.shape[1]]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}},
    )
    return onnx_session(converted.SerializeToString()).run(None, {"x": x.astype(np.float32)})[1][:, 1]


def test_float32_safe_trees_keep_native_decisions_and_match_onnx() -> None:
    from lightgbm import LGBMClassifier

    register_converters()
    x, y = _adjacent_float32_table()
    params = {"n_estimators": 20, "num_leaves": 4, "min_child_samples": 5, "verbose": -1, "n_jobs": 1}
    plain = LGBMClassifier(**params).fit(x, y)
    safe = Float32LGBMClassifier(**params).fit(x, y)
    np.testing.assert_allclose(safe.predict_proba(x), plain.predict_proba(x), atol=1e-12)
    np.testing.assert_allclose(float32_safe_booster(plain.booster_).predict(x), plain.booster_.predict(x), atol=1e-12)
    assert np.abs(_onnx_scores(safe, x) - safe.predict_proba(x)[:, 1]).max() < 1e-6


def test_plain_lightgbm_would_disagree_with_its_onnx_graph_on_such_data() -> None:
    """Why the float32-safe trees exist: the converter rounds thresholds to nearest, flipping splits."""
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    x, y = _adjacent_float32_table()
    plain = LGBMClassifier(n_estimators=20, num_leaves=4, min_child_samples=5, verbose=-1, n_jobs=1).fit(x, y)
    assert np.abs(_onnx_scores(plain, x) - plain.predict_proba(x)[:, 1]).max() > 0.1


def test_calibration_reads_the_margin_the_exported_graph_computes() -> None:
    """CalibratedClassifierCV prefers decision_function: it must be the trees' raw log-odds (the margin that the
    ONNX graph's contributions sum to), i.e. the logit of LightGBM's own uncalibrated probability."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(int)
    clf = Float32LGBMClassifier(n_estimators=20, num_leaves=4, verbose=-1).fit(x, y)
    margin = clf.decision_function(x)
    p = clf.predict_proba(x)[:, 1]
    assert margin.dtype == np.float64 and margin.shape == (400,)
    np.testing.assert_allclose(margin, np.log(p / (1 - p)), rtol=1e-6, atol=1e-9)
