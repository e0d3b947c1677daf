"""Feature engineering as ONE scikit-learn pipeline that converts, whole, to ONNX.

Numeric inputs are rounded to float32 before anything sees them, because ONNX Runtime feeds the graph float32
tensors and its tree ensembles compare in float32: if the native pipeline saw float64 values a split threshold
could fall between a value and its float32 rounding and the two sides would disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

DEFAULT_MISSING_TOKEN = "__missing__"


@dataclass(frozen=True)
class RatioSpec:
    """A derived ratio feature: numerator / (denominator + offset), 0 where that denominator is 0."""

    name: str
    numerator: str
    denominator: str
    offset: float = 0.0

    @property
    def definition(self) -> str:
        """Human-readable definition, as written into bundle.json."""
        if self.offset:
            sign = "+" if self.offset > 0 else "-"
            return f"{self.numerator} / ({self.denominator} {sign} {abs(self.offset):g})"
        return f"{self.numerator} / {self.denominator}"


@dataclass(frozen=True)
class FeatureSet:
    """Which raw columns feed the model, how each is treated, and the derived ratios."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ratios: tuple[RatioSpec, ...] = ()
    monotone: dict[str, int] = field(default_factory=dict)
    missing_token: str = DEFAULT_MISSING_TOKEN

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Graph inputs, in order: numeric columns first, then categorical ones."""
        return self.numeric + self.categorical

    @property
    def ratio_inputs(self) -> tuple[str, ...]:
        """Numeric columns the ratios read, each once, in first-use order."""
        seen: dict[str, None] = {}
        for ratio in self.ratios:
            seen.setdefault(ratio.numerator)
            seen.setdefault(ratio.denominator)
        return tuple(seen)


class Float32Imputer(SimpleImputer):
    """SimpleImputer whose fill values are float32-representable, like the ONNX Imputer's."""

    def fit(self, X: Any, y: Any = None) -> Float32Imputer:
        super().fit(X, y)
        self.statistics_ = self.statistics_.astype(np.float32).astype(np.float64)
        return self


class RatioFeatures(TransformerMixin, BaseEstimator):
    """Computes ratio features in float32, exactly as the ONNX converter below does.

    `ratios` holds (numerator index, denominator index, offset, name) over this step's input columns.
    """

    def __init__(self, ratios: Sequence[tuple[int, int, float, str]] = ()) -> None:
        self.ratios = ratios

    def fit(self, X: Any, y: Any = None) -> RatioFeatures:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        values = np.asarray(X, dtype=np.float32)
        out = np.zeros((values.shape[0], len(self.ratios)), dtype=np.float32)
        for k, (num, den, offset, _name) in enumerate(self.ratios):
            denominator = values[:, den] + np.float32(offset)
            np.divide(values[:, num], denominator, out=out[:, k], where=denominator != 0)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([name for *_rest, name in self.ratios], dtype=object)


def to_model_frame(frame: pd.DataFrame, features: FeatureSet) -> pd.DataFrame:
    """The exact table the native pipeline sees: float32-rounded numerics, strings with a missing token."""
    out: dict[str, Any] = {}
    for name in features.numeric:
        if name in frame:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out[name] = values.astype(np.float32).astype(np.float64)
        else:
            out[name] = np.full(len(frame), np.nan)
    for name in features.categorical:
        if name in frame:
            out[name] = categorical_strings(frame[name], features.missing_token)
        else:
            out[name] = np.full(len(frame), features.missing_token, dtype=object)
    return pd.DataFrame(out, index=frame.index)


def categorical_strings(values: pd.Series, missing_token: str) -> np.ndarray:
    """Categorical values as strings; integral floats lose their '.0'; missing becomes the token."""

    def one(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return missing_token
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        text = str(value)
        return missing_token if text.strip() == "" else text

    return np.asarray([one(v) for v in values.tolist()], dtype=object)


def build_preprocessor(features: FeatureSet) -> ColumnTransformer:
    """Imputation (median), one-hot with unseen categories mapped to all zeros, derived ratios."""
    steps: list[tuple[str, Any, list[str]]] = []
    if features.numeric:
        steps.append(("num", Float32Imputer(strategy="median"), list(features.numeric)))
    if features.categorical:
        steps.append(
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64),
                list(features.categorical),
            )
        )
    if features.ratios:
        inputs = features.ratio_inputs
        index = {name: i for i, name in enumerate(inputs)}
        ratios = [(index[r.numerator], index[r.denominator], float(r.offset), r.name) for r in features.ratios]
        steps.append(
            (
                "ratio",
                Pipeline([("impute", Float32Imputer(strategy="median")), ("ratio", RatioFeatures(ratios))]),
                list(inputs),
            )
        )
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def monotone_vector(features: FeatureSet, transformed_names: Sequence[str]) -> list[int]:
    """LightGBM monotone constraints per transformed feature; a ratio inherits its numerator's direction."""
    ratio_sign = {f"ratio__{r.name}": _ratio_direction(features, r) for r in features.ratios}
    out = []
    for name in transformed_names:
        if name.startswith("num__"):
            out.append(int(features.monotone.get(name[len("num__") :], 0)))
        else:
            out.append(int(ratio_sign.get(name, 0)))
    return out


def _ratio_direction(features: FeatureSet, ratio: RatioSpec) -> int:
    """A ratio rises with its numerator and falls with its denominator; conflicting hints give 0."""
    up = features.monotone.get(ratio.numerator, 0)
    down = -features.monotone.get(ratio.denominator, 0)
    if up and down and up != down:
        return 0
    return up or down
