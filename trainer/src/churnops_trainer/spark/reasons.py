"""Reasons exactly as src/model/reasons.ts writes them (same texts, same JSON), from the same contributions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops_trainer.errors import BundleError
from churnops_trainer.spark.validation import js_json_string, js_number

# ---------------------------------------------------------------------------------------------------------------
# Reasons, exactly as src/model/reasons.ts writes them (same texts, same JSON), from the same contributions.

_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "missing": "not recorded",
        "share": "{pct}% of customers",
        "higher": "higher than {pct}% of customers",
        "lower": "lower than {pct}% of customers",
        "first": "raises risk the most",
        "other": "raises risk",
        "join": "{head} — {profile}; {effect}",
    },
    "ja": {
        "missing": "未記録",
        "share": "顧客の{pct}%",
        "higher": "顧客の{pct}%より高い",
        "lower": "顧客の{pct}%より低い",
        "first": "リスクを最も高めています",
        "other": "リスクを高めています",
        "join": "{head} — {profile}。{effect}",
    },
}


def js_round(x: float) -> int:
    """Math.round: halves go up (Python's round goes to even)."""
    return math.floor(x + 0.5)


def percentile_of(percentiles: list[float], value: float) -> float:
    """reasons.ts percentileOf: share of training values below `value`, ties at their middle."""
    n = len(percentiles)
    if n < 2:
        return 0.5
    below = 0
    while below < n and percentiles[below] < value:
        below += 1
    up_to = below
    while up_to < n and percentiles[up_to] == value:
        up_to += 1
    step = 1 / (n - 1)
    if up_to > below:
        return ((below + up_to - 1) / 2) * step
    if below == 0:
        return 0.0
    if below == n:
        return 1.0
    lo, hi = percentiles[below - 1], percentiles[below]
    return (below - 1 + (value - lo) / (hi - lo)) * step


def _format_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return js_number(float(value))
    return js_number(float(f"{value:.4g}"))


@dataclass(frozen=True)
class ReasonWriter:
    """The top-N risk-raising features of each row and their sentences (bundle.json `explanations`)."""

    features: tuple[dict[str, Any], ...]
    shares: tuple[dict[str, float] | None, ...]
    language: str = "en"

    @classmethod
    def of(cls, document: dict[str, Any], language: str = "en") -> ReasonWriter:
        explanations = document.get("explanations") or {}
        if not explanations.get("available"):
            raise BundleError(
                f"model {document['model_name']} v{document['model_version']} has no contributions "
                f"({explanations.get('reason', 'the bundle predates them')}); score without --reasons"
            )
        features = tuple(explanations["features"])
        profiles = document["reference"]["features"]
        shares = tuple(
            dict(profiles[f["name"]]["freqs"])
            if f["kind"] == "categorical" and profiles.get(f["name"], {}).get("kind") == "categorical"
            else None
            for f in features
        )
        return cls(features, shares, language)

    def label(self, j: int) -> str:
        """The spec's label in this language, else its one label, else the feature's name (as reasons.ts)."""
        feature = self.features[j]
        own = (feature.get("labels") or {}).get(self.language)
        return str(own or feature.get("label") or feature["name"])

    def text(self, j: int, value: float | str | None, first: bool) -> str:
        words = _PHRASES[self.language]
        head = f"{self.label(j)}: {words['missing'] if value is None else _format_value(value)}"
        effect = words["first" if first else "other"]
        shares = self.shares[j]
        if shares is not None:
            share = None if value is None else shares.get(str(value))
            profile = words["missing"] if share is None else words["share"].format(pct=js_round(share * 100))
        else:
            percentiles = self.features[j].get("percentiles") or []
            if not isinstance(value, float | int) or len(percentiles) < 2:
                profile = words["missing"]
            else:
                below = percentile_of(percentiles, float(value))
                profile = (
                    words["higher"].format(pct=js_round(below * 100))
                    if below >= 0.5
                    else words["lower"].format(pct=js_round((1 - below) * 100))
                )
        return words["join"].format(head=head, profile=profile, effect=effect)

    def top(self, row: np.ndarray, n: int) -> list[int]:
        """Indexes of the largest positive contributions, highest first (ties keep feature order)."""
        order = sorted((j for j in range(len(row)) if row[j] > 0), key=lambda j: -row[j])
        return order[:n]

    def value(self, j: int, inputs: dict[str, Any], missing_token: str) -> float | str | None:
        """The customer's value of feature j from the graph's inputs (a derived ratio from its two inputs)."""
        feature = self.features[j]
        ratio = feature.get("ratio")
        if ratio is None:
            return inputs.get(feature["name"])
        num, den = inputs.get(ratio["numerator"]), inputs.get(ratio["denominator"])
        if not isinstance(num, float) or not isinstance(den, float):
            return None
        d = den + float(ratio["offset"])
        return 0.0 if d == 0 else num / d

    def json(self, items: list[tuple[int, float | str | None, float, str]]) -> str:
        """JSON.stringify of the reasons list, as the TS scorer stores it."""
        parts = []
        for j, value, contribution, text in items:
            shown = "null" if value is None else js_json_string(value) if isinstance(value, str) else js_number(value)
            parts.append(
                f'{{"feature":{js_json_string(self.features[j]["name"])},"label":{js_json_string(self.label(j))},'
                f'"value":{shown},"contribution":{js_number(contribution)},"text":{js_json_string(text)}}}'
            )
        return "[" + ",".join(parts) + "]"
