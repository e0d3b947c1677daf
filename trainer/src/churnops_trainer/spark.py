"""Score a customer table on Apache Spark with the same verified bundle, rules and output as the TS scorer.

The driver reads bundle.json (schema, bands, thresholds), ships model.onnx and bundle.json with the job
(SparkContext.addFile), and plans the input columns. Each Python worker on an executor fetches its own copy
through SparkFiles, verifies it (sha256 + golden vectors, with export.verify_bundle) before its first batch,
and only then validates and scores rows inside mapInPandas. Validation reproduces src/data/validate.ts message
for message, so a row is quarantined for the same reason, in the same words, by either scorer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from churnops_trainer.errors import BundleError, DataError, TrainerError
from churnops_trainer.export import BUNDLE_FILE, load_bundle, onnx_session, verify_bundle
from churnops_trainer.logs import get_logger
from churnops_trainer.redact import redact_url

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger("spark")

SourceKind = Literal["text", "string", "number", "bigint", "boolean"]
"""How a column's values reach the validator, named after what the TS scorer sees for the same column:
CSV text (parsed leniently), a string, a JS number, a JS bigint (64-bit integers), or a boolean."""

# ECMAScript's String.prototype.trim set: WhiteSpace and LineTerminator code points.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# validate.ts's number grammar for text; re.ASCII because JS's \d is ASCII only.
TEXT_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
SHOW_LIMIT = 40
CATEGORIES_SHOWN = 12
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# ---------------------------------------------------------------------------------------------------------------
# JavaScript's formatting, so that reasons are byte-for-byte the TS scorer's.


def js_number(x: float) -> str:
    """ECMAScript Number::toString(x): shortest round-trip digits, JS's choice of plain or exponent notation."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    digits, exponent = _shortest_digits(abs(x))
    k = len(digits)
    n = exponent + k  # the value is 0.digits × 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _shortest_digits(x: float) -> tuple[str, int]:
    """Python's repr gives the same shortest round-trip digits as JS; return them and their power of ten."""
    mantissa, _, exp = repr(float(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exponent = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, exponent


def js_json_string(text: str) -> str:
    """JSON.stringify of a string: non-ASCII kept, control characters and lone surrogates escaped."""
    out = json.dumps(text, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def js_slice(text: str, limit: int) -> str:
    """text.slice(0, limit) in UTF-16 code units, as JS counts string length."""
    if len(text) <= limit // 2:
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    if len(units) <= 2 * limit:
        return text
    return units[: 2 * limit].decode("utf-16-le", "surrogatepass")


def js_utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def show_text(text: str) -> str:
    """validate.ts show() of a string: quoted, cut at 40 UTF-16 units with an ellipsis."""
    return js_json_string(f"{js_slice(text, SHOW_LIMIT)}…" if js_utf16_length(text) > SHOW_LIMIT else text)


def js_trim(text: str) -> str:
    return text.strip(JS_WHITESPACE)


def describe_numeric(integer: bool, lower: float | None, upper: float | None) -> str:
    kind = "an integer" if integer else "a number"
    if lower is not None and upper is not None:
        return f"{kind} from {js_number(lower)} to {js_number(upper)}"
    if lower is not None:
        return f"{kind} >= {js_number(lower)}"
    if upper is not None:
        return f"{kind} <= {js_number(upper)}"
    return kind


def describe_categorical(categories: tuple[str, ...]) -> str:
    shown = ", ".join(js_json_string(c) for c in categories[:CATEGORIES_SHOWN])
    more = f", … ({len(categories)} in all)" if len(categories) > CATEGORIES_SHOWN else ""
    return f"one of {shown}{more}"


# ---------------------------------------------------------------------------------------------------------------
# Row validation over pandas batches (the same rules as validate.ts, vectorised; messages built for failures only).


@dataclass(frozen=True)
class ColumnPlan:
    """One feature as the validator needs it: its rules, the expected-text, and how its values arrive."""

    name: str
    numeric: bool
    required: bool
    integer: bool
    lower: float | None
    upper: float | None
    categories: tuple[str, ...]
    source: SourceKind
    expected: str
    #: The graph input this column feeds (docs/bundle.md `input_name`; older bundles: the column's name).
    input_name: str = ""

    @classmethod
    def from_spec(cls, spec: dict[str, Any], source: SourceKind) -> ColumnPlan:
        numeric = spec["kind"] == "numeric"
        lower = None if spec.get("lower_bound") is None else float(spec["lower_bound"])
        upper = None if spec.get("upper_bound") is None else float(spec["upper_bound"])
        categories = tuple(spec.get("categories", ()))
        integer = bool(spec.get("integer", False))
        expected = describe_numeric(integer, lower, upper) if numeric else describe_categorical(categories)
        return cls(
            spec["name"],
            numeric,
            bool(spec.get("required", True)),
            integer,
            lower,
            upper,
            categories,
            source,
            expected,
            spec.get("input_name", spec["name"]),
        )


@dataclass(frozen=True)
class ValidationPlan:
    """Everything a worker needs to validate and feed the graph, built on the driver and shipped in the closure."""

    columns: tuple[ColumnPlan, ...]
    id_column: str | None
    id_source: SourceKind
    missing_token: str


Reasons = dict[int, list[str]]


def _add(reasons: Reasons, rows: Iterable[int], message_of: Any) -> None:
    for i in rows:
        reasons.setdefault(int(i), []).append(message_of(int(i)))


def _blank_text(values: np.ndarray) -> np.ndarray:
    """Missing in text mode: null, or text that is empty once trimmed the JS way."""
    return np.fromiter((v is None or js_trim(v) == "" for v in values), dtype=bool, count=len(values))


def _null(values: np.ndarray) -> np.ndarray:
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _show_value(value: Any, source: SourceKind) -> str:
    if source in ("text", "string"):
        return show_text(value)
    if source == "boolean":
        return "true" if value else "false"
    if source == "bigint":
        return str(int(value))
    return js_number(float(value))


def _js_typeof(source: SourceKind) -> str:
    return {"number": "number", "bigint": "bigint", "boolean": "boolean"}.get(source, "string")


def validate_numeric(plan: ColumnPlan, raw: np.ndarray, isnull: np.ndarray | None, reasons: Reasons) -> np.ndarray:
    """float32 graph input (NaN where missing); failures recorded in `reasons` with validate.ts's messages."""
    n = len(raw)
    fail = f"{plan.name}: {{}} (expected {plan.expected})"
    numbers = np.full(n, np.nan)
    if plan.source == "text":
        missing = _blank_text(raw)
        present = np.flatnonzero(~missing)
        trimmed = [js_trim(raw[i]) for i in present]
        parsed = [float(t) if TEXT_NUMBER.fullmatch(t) else None for t in trimmed]
        ok = np.zeros(n, dtype=bool)
        for i, value in zip(present, parsed, strict=True):
            if value is None:
                continue
            numbers[i] = value
            ok[i] = True
        _add(reasons, present[~ok[present]], lambda i: fail.format(f"{show_text(raw[i])} is not a number"))
    elif plan.source in ("number", "bigint"):
        missing = isnull if isnull is not None else pd.isna(raw)
        numbers = np.asarray(raw, dtype=np.float64)
        ok = ~missing
    else:
        missing = _null(raw)
        what = "is text" if plan.source == "string" else "is a boolean"
        _add(
            reasons,
            np.flatnonzero(~missing),
            lambda i: fail.format(f"{_show_value(raw[i], plan.source)} {what}, not a number"),
        )
        ok = np.zeros(n, dtype=bool)
    if plan.required:
        _add(reasons, np.flatnonzero(missing), lambda _i: fail.format("a value is required"))
    with np.errstate(invalid="ignore"):
        finite = ok & np.isfinite(numbers)
        bad = ok & ~finite
        shown = (lambda i: show_text(raw[i])) if plan.source == "text" else (lambda i: js_number(numbers[i]))
        _add(reasons, np.flatnonzero(bad), lambda i: fail.format(f"{shown(i)} is not a finite number"))
        # validate.ts reports the first of these that fails, in this order.
        checks: list[tuple[np.ndarray, str]] = []
        if plan.integer:
            checks.append((numbers != np.floor(numbers), "is not a whole number"))
        if plan.lower is not None:
            checks.append((numbers < plan.lower, f"is below the minimum {js_number(plan.lower)}"))
        if plan.upper is not None:
            checks.append((numbers > plan.upper, f"is above the maximum {js_number(plan.upper)}"))
        remaining = finite.copy()
        for failing, what in checks:
            hit = remaining & failing
            _add(reasons, np.flatnonzero(hit), lambda i, what=what: fail.format(f"{js_number(numbers[i])} {what}"))
            remaining &= ~hit
    return np.where(ok, numbers, np.nan).astype(np.float32)


def validate_categorical(plan: ColumnPlan, raw: np.ndarray, missing_token: str, reasons: Reasons) -> np.ndarray:
    """String graph input (the missing token where missing); failures recorded with validate.ts's messages."""
    fail = f"{plan.name}: {{}} (expected {plan.expected})"
    missing = _blank_text(raw) if plan.source == "text" else _null(raw)
    if plan.required:
        _add(reasons, np.flatnonzero(missing), lambda _i: fail.format("a value is required"))
    present = np.flatnonzero(~missing)
    if plan.source not in ("text", "string"):
        typeof = _js_typeof(plan.source)
        _add(
            reasons,
            present,
            lambda i: fail.format(f"{_show_value(raw[i], plan.source)} is a {typeof}, not text"),
        )
        return np.full(len(raw), missing_token, dtype=object)
    out = np.where(missing, missing_token, raw).astype(object)
    allowed = set(plan.categories)
    unseen = [i for i in present if raw[i] not in allowed]
    _add(reasons, unseen, lambda i: fail.format(f"{show_text(raw[i])} is a category the model never saw"))
    return out


def customer_ids(raw: np.ndarray, source: SourceKind) -> list[str | None]:
    """String(id) as batch.ts stores it; None when null or blank (the row is then quarantined)."""
    out: list[str | None] = []
    for v in raw:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
            continue
        text = v if isinstance(v, str) else _show_value(v, source)
        out.append(None if js_trim(text) == "" else text)
    return out


def validate_batch(plan: ValidationPlan, batch: pd.DataFrame) -> tuple[dict[str, np.ndarray], Reasons]:
    """Graph inputs ([N,1] each) for every row, and the reasons of the rows that must not be scored."""
    reasons: Reasons = {}
    inputs: dict[str, np.ndarray] = {}
    for k, col in enumerate(plan.columns):
        raw = batch[f"c{k}"].to_numpy(dtype=object if col.source != "number" else None)
        if col.numeric:
            flag = batch[f"n{k}"].to_numpy(dtype=bool) if f"n{k}" in batch else None
            values = validate_numeric(col, raw, flag, reasons)
        else:
            values = validate_categorical(col, raw, plan.missing_token, reasons)
        inputs[col.input_name] = values.reshape(-1, 1)
    return inputs, reasons


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


# ---------------------------------------------------------------------------------------------------------------
# The bundle on the executors: fetched through SparkFiles, verified once per Python worker, then cached.


@dataclass(frozen=True)
class ShippedBundle:
    """What tasks need to find the job's copy of a bundle: the SparkFiles names and the driver's sha256."""

    json_name: str
    onnx_name: str
    onnx_file: str
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.json_name}:{self.sha256}"


_VERIFIED: dict[str, Any] = {}


def executor_session(shipped: ShippedBundle) -> tuple[Any, bool]:
    """The ONNX session for the shipped bundle, verified on this worker before first use; (session, verified now)."""
    cached = _VERIFIED.get(shipped.key)
    if cached is not None:
        return cached, False
    from pyspark import SparkFiles

    workdir = Path(tempfile.mkdtemp(prefix="churnops-spark-bundle-"))
    try:
        shutil.copyfile(SparkFiles.get(shipped.json_name), workdir / BUNDLE_FILE)
        shutil.copyfile(SparkFiles.get(shipped.onnx_name), workdir / shipped.onnx_file)
        verification = verify_bundle(workdir)
        if verification.sha256 != shipped.sha256:
            raise BundleError(
                f"the bundle this executor received has model sha256 {verification.sha256}, "
                f"but the driver loaded {shipped.sha256}"
            )
        model_bytes = (workdir / shipped.onnx_file).read_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if hashlib.sha256(model_bytes).hexdigest() != shipped.sha256:
        raise BundleError("the model file changed on this executor while it was being verified")
    session = onnx_session(model_bytes)
    _VERIFIED[shipped.key] = session
    return session, True


BROADCAST_DUPLICATES = 2_000_000
SCORED_SCHEMA = (
    "part int, idx long, customer_id string, probability double, band string, decision boolean, reason string"
)


def scored_schema(reasons: int) -> str:
    """SCORED_SCHEMA plus, with --reasons N, reason_1..N, reason_1..N_text and the stored JSON (`reasons`)."""
    if reasons <= 0:
        return SCORED_SCHEMA
    extra = "".join(f", reason_{k} string, reason_{k}_text string" for k in range(1, reasons + 1))
    return f"{SCORED_SCHEMA}{extra}, reasons string"


def reason_columns(reasons: int) -> list[str]:
    """The score file's reason columns, in order (as batch.ts writes them)."""
    return [c for k in range(1, reasons + 1) for c in (f"reason_{k}", f"reason_{k}_text")]


@dataclass(frozen=True)
class BatchScorer:
    """The mapInPandas function: validate, score the valid rows with the verified graph, band and decide."""

    plan: ValidationPlan
    shipped: ShippedBundle
    probability_output: str
    positive_index: int
    bands: tuple[tuple[str, float], ...]
    operating: float
    verifications: Any = None  # a Spark accumulator counting worker-side verifications
    #: --reasons N: the top-N reasons per scored row, from the graph's contribution output.
    reasons: int = 0
    writer: ReasonWriter | None = None
    contribution_output: str | None = None

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        session, verified_now = executor_session(self.shipped)
        if verified_now and self.verifications is not None:
            self.verifications.add(1)
        for batch in batches:
            yield self.score(session, batch)

    def score(self, session: Any, batch: pd.DataFrame) -> pd.DataFrame:
        n = len(batch)
        inputs, reasons = validate_batch(self.plan, batch)
        if self.plan.id_column is not None:
            ids = customer_ids(batch["cid"].to_numpy(dtype=object), self.plan.id_source)
        else:
            ids = [None] * n
        reason_text: list[str | None] = [None] * n
        for i, messages in reasons.items():
            reason_text[i] = "; ".join(messages)
        if self.plan.id_column is not None:
            empty = f"{self.plan.id_column}: the customer id is empty"
            for i in range(n):
                if reason_text[i] is None and ids[i] is None:
                    reason_text[i] = empty
        good = np.fromiter((r is None for r in reason_text), dtype=bool, count=n)
        probability = np.full(n, np.nan)
        reason_cells: dict[str, list[str | None]] = {}
        if good.any():
            feed = {name: values[good] for name, values in inputs.items()}
            if self.reasons > 0 and self.contribution_output is not None:
                output, contributions = session.run([self.probability_output, self.contribution_output], feed)
                reason_cells = self.reason_cells(feed, contributions, good)
            else:
                output = session.run([self.probability_output], feed)[0]
            probability[good] = np.asarray(output[:, self.positive_index], dtype=np.float32).astype(np.float64)
        band = np.full(n, None, dtype=object)
        for name, low in self.bands:
            band[good & (band == None) & (probability >= low)] = name  # noqa: E711 - elementwise
        band[good & (band == None)] = self.bands[-1][0]  # noqa: E711 - elementwise
        mid = batch["mid"].to_numpy(dtype=np.int64)
        return pd.DataFrame(
            {
                "part": batch["pid"].to_numpy(dtype=np.int32),
                "idx": mid & ((1 << 33) - 1),
                "customer_id": ids,
                "probability": np.where(good, probability, np.nan),
                "band": band,
                "decision": pd.array(np.where(good, probability >= self.operating, False), dtype="boolean"),
                "reason": reason_text,
            }
        ).assign(
            probability=lambda f: f["probability"].where(good, None),
            decision=lambda f: f["decision"].where(good, None),
            **reason_cells,
        )

    def reason_cells(self, feed: dict[str, np.ndarray], contributions: np.ndarray, good: np.ndarray) -> dict[str, Any]:
        """reason_k / reason_k_text / reasons columns for the batch (None on rows not scored)."""
        writer = self.writer
        assert writer is not None
        n, m = len(good), self.reasons
        cells: dict[str, list[Any]] = {c: [None] * n for c in [*reason_columns(m), "reasons"]}
        by_input = {col.input_name: col for col in self.plan.columns}
        token = self.plan.missing_token
        columns: dict[str, np.ndarray] = {by_input[k].name: v[:, 0] for k, v in feed.items()}
        numeric = {col.name for col in self.plan.columns if col.numeric}
        rows = np.flatnonzero(good)
        for r, i in enumerate(rows):
            row = contributions[r]
            top = writer.top(row, m)
            values: dict[str, Any] = {}
            for name, column in columns.items():
                v = column[r]
                if name in numeric:
                    values[name] = None if np.isnan(v) else float(v)
                else:
                    values[name] = None if v == token else str(v)
            items = []
            for rank, j in enumerate(top):
                value = writer.value(j, values, token)
                text = writer.text(j, value, rank == 0)
                cells[f"reason_{rank + 1}"][i] = writer.features[j]["name"]
                cells[f"reason_{rank + 1}_text"][i] = text
                items.append((j, value, float(row[j]), text))
            cells["reasons"][i] = writer.json(items)
        return cells


# ---------------------------------------------------------------------------------------------------------------
# The job on the driver.


class SparkScoreConfig(BaseModel):
    """One Spark scoring run, as the CLI (or a caller) describes it."""

    model_config = ConfigDict(frozen=True)

    bundle: Path
    data: str
    table: str | None = None
    query: str | None = None
    kind: Literal["daily", "monthly"] = "daily"
    as_of: str
    out: str | None = None
    quarantine_out: str | None = None
    jdbc_out: str | None = None
    master: str | None = None
    conf: dict[str, str] = {}
    #: --reasons N (0 = none): reason_1..N columns in --out and the JSON `reasons` column in the store.
    reasons: int = Field(default=0, ge=0, le=10)
    language: Literal["en", "ja"] = "en"

    @field_validator("as_of")
    @classmethod
    def _date(cls, value: str) -> str:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"--as-of must be a date YYYY-MM-DD, got '{value}'") from None
        if parsed.isoformat() != value:
            raise ValueError(f"--as-of must be a date YYYY-MM-DD, got '{value}'")
        return value

    @model_validator(mode="after")
    def _targets(self) -> SparkScoreConfig:
        if self.out is None and self.jdbc_out is None:
            raise ValueError("nothing to write to: give --out FILE and/or --jdbc-out URL")
        if self.table is not None and self.query is not None:
            raise ValueError("give --table or --query, not both")
        if self.is_jdbc_source and self.table is None and self.query is None:
            raise ValueError(f"{redact_url(self.data)} is a database: say which rows with --table NAME or --query SQL")
        for path in (self.out, self.quarantine_out):
            if path is not None and output_format(path) is None:
                raise ValueError(f"{path}: expected a path ending in .parquet or .csv")
        return self

    @property
    def is_jdbc_source(self) -> bool:
        return self.data.startswith("jdbc:")

    @property
    def quarantine_path(self) -> str | None:
        """Quarantined rows are never dropped silently: next to --out unless given or stored over JDBC."""
        if self.quarantine_out is not None or self.out is None:
            return self.quarantine_out
        stem, _, _ = self.out.rstrip("/").rpartition(".")
        return f"{stem}.quarantine.parquet"


def output_format(path: str) -> Literal["parquet", "csv"] | None:
    lower = path.lower().rstrip("/")
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    return None


def run_id_of(kind: str, as_of: str, document: dict[str, Any]) -> str:
    """batch.ts's run id: `<kind>-<as_of>-<model_name>-v<version>`."""
    return f"{kind}-{as_of}-{document['model_name']}-v{document['model_version']}"


def spark_session(master: str | None, conf: dict[str, str], app_name: str = "churnops-spark-score") -> SparkSession:
    """A session (or the one spark-submit made); workers run this interpreter unless told otherwise."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Column names are the bundle's exactly: `Plan` and `plan` are two features, not one ambiguous name.
        "spark.sql.caseSensitive": "true",
        # A terminal gets Spark's progress bar; logs get a progress line every PROGRESS_SECONDS (ProgressLog).
        "spark.ui.showConsoleProgress": "true" if sys.stderr.isatty() else "false",
        **conf,
    }
    # Without --master and outside spark-submit (which hands its driver a gateway port and its own master),
    # Spark runs local too. Local workers are forked by this process: they must run this interpreter, which
    # has the trainer; a cluster's workers get theirs from spark-submit's settings.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if (master is None and not submitted) or (master is not None and master.startswith("local")):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def active_session() -> SparkSession | None:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


PROGRESS_SECONDS = 30.0


class ProgressLog:
    """Logs the running stages' finished/total tasks every PROGRESS_SECONDS while a run is on."""

    def __init__(self, spark: SparkSession, run_id: str) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.run_id = run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="churnops-progress", daemon=True)

    def __enter__(self) -> ProgressLog:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.wait(PROGRESS_SECONDS):
            for stage_id in self.tracker.getActiveStageIds():
                info = self.tracker.getStageInfo(stage_id)
                if info is not None:
                    log.info(
                        "spark stage progress",
                        extra={
                            "run_id": self.run_id,
                            "stage": info.name.split(" at ")[0],
                            "tasks_done": info.numCompletedTasks,
                            "tasks": info.numTasks,
                        },
                    )


def ship_bundle(spark: SparkSession, directory: Path, document: dict[str, Any]) -> ShippedBundle:
    """Add the bundle's two files to the job under names unique to its contents, for SparkFiles on executors."""
    sha = document["onnx"]["sha256"]
    onnx_file = document["onnx"]["file"]
    staging = Path(tempfile.mkdtemp(prefix="churnops-ship-"))
    # Named after both files' contents: Spark refuses a second, different file under a name it already shipped.
    digest = hashlib.sha256(sha.encode() + (directory / BUNDLE_FILE).read_bytes()).hexdigest()[:20]
    names = (f"churnops-{digest}-{BUNDLE_FILE}", f"churnops-{digest}-{onnx_file}")
    for name, source in zip(names, (directory / BUNDLE_FILE, directory / onnx_file), strict=True):
        shutil.copyfile(source, staging / name)
        try:
            spark.sparkContext.addFile(str(staging / name))
        except Exception as exc:
            if "already registered" not in str(exc):
                raise
    return ShippedBundle(json_name=names[0], onnx_name=names[1], onnx_file=onnx_file, sha256=sha)


def source_kind(data_type: Any, text: bool) -> SourceKind:
    from pyspark.sql import types as T

    if text:
        return "text"
    if isinstance(data_type, T.LongType):
        return "bigint"
    if isinstance(data_type, (T.IntegerType, T.ShortType, T.ByteType, T.FloatType, T.DoubleType, T.DecimalType)):
        return "number"
    if isinstance(data_type, T.BooleanType):
        return "boolean"
    return "string"


def read_source(spark: SparkSession, config: SparkScoreConfig) -> tuple[DataFrame, bool, str]:
    """The customer table, whether its values are text (CSV), and a description without secrets."""
    data = config.data
    if config.is_jdbc_source:
        reader = spark.read.format("jdbc").option("url", data)
        if (driver := jdbc_driver(data)) is not None:
            reader = reader.option("driver", driver)
        reader = reader.option("query", config.query) if config.query else reader.option("dbtable", config.table)
        return reader.load(), False, f"{redact_url(data)} {config.table or '(query)'}"
    lower = data.lower()
    if re.search(r"\.(csv|tsv|txt)(\.gz)?$", lower):
        frame = (
            spark.read.option("header", "true")
            .option("inferSchema", "false")
            .option("escape", '"')
            .option("sep", "\t" if ".tsv" in lower else ",")
            .csv(data)
        )
        return frame, True, data
    return spark.read.parquet(data), False, data


def plan_columns(frame: DataFrame, document: dict[str, Any], text: bool, description: str) -> ValidationPlan:
    schema = document["schema"]
    types = {f.name: f.dataType for f in frame.schema.fields}
    wanted = [f["name"] for f in schema["features"]]
    id_column = schema.get("id_column")
    if id_column is not None:
        wanted = [id_column, *wanted]
    missing = [c for c in wanted if c not in types]
    if missing:
        raise DataError(
            f"{description} has no column {', '.join(json.dumps(m) for m in missing)} (the model needs it); "
            f"columns present: {', '.join(types)}"
        )
    columns = tuple(ColumnPlan.from_spec(f, source_kind(types[f["name"]], text)) for f in schema["features"])
    id_source = source_kind(types[id_column], text) if id_column is not None else "string"
    return ValidationPlan(columns, id_column, id_source, schema["missing_token"])


def prepared_input(frame: DataFrame, plan: ValidationPlan) -> DataFrame:
    """Positional column names (c0…, cid), NULL flags for floating columns, and each row's place in the input."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    selected = [
        F.spark_partition_id().alias("pid"),
        F.monotonically_increasing_id().alias("mid"),
    ]
    if plan.id_column is not None:
        selected.append(_plain(frame, plan.id_column).alias("cid"))
    for k, col in enumerate(plan.columns):
        selected.append(_plain(frame, col.name).alias(f"c{k}"))
        data_type = frame.schema[col.name].dataType
        # Arrow → pandas turns NULL into NaN in floating columns; the flag keeps "missing" apart from NaN.
        if col.numeric and isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
            selected.append(_column(col.name).isNull().alias(f"n{k}"))
    return frame.select(*selected)


def _column(name: str) -> Any:
    """A column by its exact name: quoted, so spaces, dots and punctuation are part of the name."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _plain(frame: DataFrame, name: str) -> Any:
    """Decimals become doubles (as DuckDB hands them to the TS scorer); dates, times and the like become text."""
    from pyspark.sql import types as T

    column = _column(name)
    data_type = frame.schema[name].dataType
    if isinstance(data_type, T.DecimalType):
        return column.cast("double")
    plain = (
        T.StringType,
        T.LongType,
        T.IntegerType,
        T.ShortType,
        T.ByteType,
        T.FloatType,
        T.DoubleType,
        T.BooleanType,
    )
    return column if isinstance(data_type, plain) else column.cast("string")


@dataclass(frozen=True)
class ScoredTables:
    """The run's two outputs, its band tally (None = quarantined), and the cached frames to unpersist."""

    scores: DataFrame
    quarantine: DataFrame
    tally: DataFrame
    persisted: tuple[DataFrame, ...]

    def unpersist(self) -> None:
        for frame in self.persisted:
            frame.unpersist()


@dataclass(frozen=True)
class Job:
    """One run's scored tables and what the writers need to label them."""

    config: SparkScoreConfig
    document: dict[str, Any]
    run_id: str
    source: str
    tables: ScoredTables


def score_dataframe(
    spark: SparkSession,
    frame: DataFrame,
    document: dict[str, Any],
    shipped: ShippedBundle,
    plan: ValidationPlan,
    run_id: str,
    scored_at: str,
    verifications: Any = None,
    reasons: int = 0,
    language: str = "en",
) -> ScoredTables:
    """Scores and quarantine rows in batch.ts's shape; intermediates stay cached until tables.unpersist()."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    scorer = BatchScorer(
        plan=plan,
        shipped=shipped,
        probability_output=document["onnx"]["probability_output"],
        positive_index=int(document["onnx"].get("positive_index", 1)),
        bands=tuple((b["name"], float(b["min"])) for b in document["bands"]),
        operating=float(document["thresholds"]["operating"]),
        verifications=verifications,
        reasons=reasons,
        writer=ReasonWriter.of(document, language) if reasons > 0 else None,
        contribution_output=(document.get("explanations") or {}).get("output") if reasons > 0 else None,
    )
    scored = (
        prepared_input(frame, plan).mapInPandas(scorer, scored_schema(reasons)).persist(StorageLevel.MEMORY_AND_DISK)
    )
    # Row numbers follow the input order: partition by partition, row by row within one.
    counts = sorted(
        (int(r["part"]), int(r["n"])) for r in scored.groupBy("part").agg(F.count("*").alias("n")).collect()
    )
    offsets, total = [], 0
    for part, n in counts:
        offsets.append((part, total))
        total += n
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "part int, base long")
    numbered = scored.join(F.broadcast(offset_frame), "part").withColumn(
        "row_number", F.col("base") + F.col("idx") + F.lit(1)
    )
    if plan.id_column is None:
        numbered = numbered.withColumn("customer_id", F.col("row_number").cast("string"))
    # The first valid occurrence of an id is scored; later ones are quarantined, naming the row that was scored.
    firsts = (
        numbered.filter(F.col("reason").isNull())
        .groupBy("customer_id")
        .agg(F.min("row_number").alias("first_row"), F.count("*").alias("occurrences"))
        .filter(F.col("occurrences") > 1)
        .select("customer_id", "first_row")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    # Usually no id repeats: the (small) duplicate list is broadcast, so the scored rows are never shuffled.
    joinable = F.broadcast(firsts) if firsts.count() <= BROADCAST_DUPLICATES else firsts
    duplicate = F.col("first_row").isNotNull() & (F.col("row_number") > F.col("first_row"))
    resolved = numbered.join(joinable, "customer_id", "left").withColumn(
        "reason",
        F.when(
            F.col("reason").isNull() & duplicate,
            F.concat(
                F.lit(f"{plan.id_column}: duplicate customer id "),
                F.col("customer_id"),
                F.lit(" (already scored from row "),
                F.col("first_row").cast("string"),
                F.lit(")"),
            ),
        ).otherwise(F.col("reason")),
    )
    scores = resolved.filter(F.col("reason").isNull()).select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "probability",
        "band",
        "decision",
        F.lit(str(document["model_name"])).alias("model_name"),
        F.lit(str(document["model_version"])).alias("model_version"),
        F.lit(scored_at).alias("scored_at"),
        *reason_columns(reasons),
        *(["reasons"] if reasons > 0 else []),
    )
    quarantine = resolved.filter(F.col("reason").isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        "row_number",
        "customer_id",
        "reason",
    )
    outcome = F.when(F.col("reason").isNull(), F.col("band")).otherwise(F.lit(None))
    tally = resolved.groupBy(outcome.alias("band")).agg(F.count("*").alias("n"))
    return ScoredTables(scores=scores, quarantine=quarantine, tally=tally, persisted=(scored, firsts))


def _write(frame: DataFrame, path: str) -> None:
    writer = frame.write.mode("overwrite")
    if output_format(path) == "csv":
        writer.option("header", "true").csv(path)
    else:
        writer.option("compression", "zstd").parquet(path)


def refused_on_executor(exc: BaseException) -> BundleError | None:
    """A worker's BundleError, surfaced by Spark as a task failure, as the one-line error it is."""
    text = str(exc)
    marker = "BundleError: "
    if marker not in text:
        return None
    message = text.split(marker, 1)[1].strip().splitlines()[0]
    return BundleError(f"refused on an executor: {message}")


def resolve_bundle(model: str, model_name: str = "churn") -> Path:
    """`champion`, `challenger` or a version number, through the registry, as `churnops score --model`."""
    from churnops_trainer.registry import Settings, resolve

    if model.isdigit():
        return Path(resolve(Settings.from_env(), model_name, version=model)["bundle_path"])
    if model in ("champion", "challenger"):
        return Path(resolve(Settings.from_env(), model_name, alias=model)["bundle_path"])
    raise TrainerError(f"--model {model}: expected champion, challenger or a version number (or use --bundle DIR)")


def run(config: SparkScoreConfig, spark: SparkSession | None = None) -> dict[str, Any]:
    """Score config.data on Spark; returns a summary shaped like batch.ts's BatchSummary (snake_case)."""
    started = time.perf_counter()
    document = load_bundle(config.bundle)
    # Fail fast on the driver; the executors check again, on the copy they were sent.
    verification = verify_bundle(config.bundle)
    run_id = run_id_of(config.kind, config.as_of, document)
    # A session this call starts is stopped at the end; one that already ran (a notebook's, a caller's) is kept.
    own_session = spark is None and active_session() is None
    session = spark if spark is not None else spark_session(config.master, config.conf)
    try:
        if config.jdbc_out is not None and store_status(session, config.jdbc_out, run_id) == "complete":
            log.info("run already complete in the store; nothing to do", extra={"run_id": run_id})
            return {
                "run_id": run_id,
                "status": "already_complete",
                "kind": config.kind,
                "as_of": config.as_of,
            }
        frame, text, description = read_source(session, config)
        plan = plan_columns(frame, document, text, description)
        shipped = ship_bundle(session, config.bundle, document)
        verifications = session.sparkContext.accumulator(0)
        scored_at = _iso(datetime.now(UTC))
        log.info(
            "spark scoring started",
            extra={"run_id": run_id, "source": description, "master": session.sparkContext.master},
        )
        tables: ScoredTables | None = None
        try:
            with ProgressLog(session, run_id):
                tables = score_dataframe(
                    session,
                    frame,
                    document,
                    shipped,
                    plan,
                    run_id,
                    scored_at,
                    verifications,
                    config.reasons,
                    config.language,
                )
                summary = _write_outputs(session, Job(config, document, run_id, description, tables))
        except Exception as exc:
            refused = refused_on_executor(exc)
            if refused is not None:
                raise refused from None
            raise
        finally:
            if tables is not None:
                tables.unpersist()
    finally:
        if own_session:
            session.stop()
    duration = time.perf_counter() - started
    rows_read = summary["rows_scored"] + summary["rows_quarantined"]
    result = {
        "run_id": run_id,
        "status": "complete",
        "kind": config.kind,
        "as_of": config.as_of,
        "model_name": str(document["model_name"]),
        "model_version": str(document["model_version"]),
        "source": description,
        "rows_read": rows_read,
        **summary,
        "bundle_sha256": verification.sha256,
        "executor_verifications": int(verifications.value),
        "duration_ms": round(duration * 1000, 1),
        "rows_per_second": round(rows_read / duration, 1) if duration > 0 else 0.0,
        "out": config.out,
        "quarantine_out": config.quarantine_path,
        "jdbc_out": redact_url(config.jdbc_out) if config.jdbc_out else None,
    }
    log.info("spark scoring finished", extra={k: result[k] for k in ("run_id", "rows_scored", "rows_quarantined")})
    return result


def _write_outputs(spark: SparkSession, job: Job) -> dict[str, Any]:
    config, tables = job.config, job.tables
    if config.out is not None:
        # The file has the reason_k columns; the store's JSON `reasons` column is for the store only.
        _write(tables.scores.drop("reasons") if config.reasons > 0 else tables.scores, config.out)
    quarantine_path = config.quarantine_path
    if quarantine_path is not None:
        _write(tables.quarantine, quarantine_path)
    if config.jdbc_out is not None:
        write_store(spark, job)
    tally = {r["band"]: int(r["n"]) for r in tables.tally.collect()}
    quarantined = tally.pop(None, 0)
    return {"rows_scored": sum(tally.values()), "rows_quarantined": quarantined, "bands": tally}


# ---------------------------------------------------------------------------------------------------------------
# The store over JDBC: the same score_runs / scores / quarantine tables the TS scorer fills (001_scoring.ts). Since
# migration 020 `scores` is a view over the compact score_rows: rows appended to it go through its INSTEAD OF
# trigger (run key and band code looked up per row); Spark keeps no categorical codes (`features` stays null).

LEASE_SECONDS = 120
JDBC_DRIVERS = {
    "jdbc:postgresql:": "org.postgresql.Driver",
    "jdbc:sqlite:": "org.sqlite.JDBC",
    "jdbc:mysql:": "com.mysql.cj.jdbc.Driver",
    "jdbc:mariadb:": "org.mariadb.jdbc.Driver",
}


def jdbc_driver(url: str) -> str | None:
    return next((cls for prefix, cls in JDBC_DRIVERS.items() if url.startswith(prefix)), None)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StoreRun:
    """One score_runs row, claimed like runs.ts claims it (a lease that a live scorer renews), over JDBC."""

    def __init__(self, spark: SparkSession, url: str, run_id: str) -> None:
        self.url = url
        self.run_id = run_id
        self.owner = f"spark:{socket.gethostname()}:{os.getpid()}"
        jvm = spark.sparkContext._jvm
        driver = jdbc_driver(url)
        if driver is not None:
            # DriverManager cannot see jars added with spark.jars; Spark's registry wraps them so it can.
            jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(driver)
        try:
            self.connection = jvm.java.sql.DriverManager.getConnection(url)
        except Exception as exc:
            raise DataError(f"cannot connect to {redact_url(url)}: {str(exc).splitlines()[0]}") from None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _execute(self, sql: str, *params: Any) -> int:
        statement = self.connection.prepareStatement(sql)
        try:
            for k, value in enumerate(params, start=1):
                if value is None:
                    statement.setNull(k, 12)  # java.sql.Types.VARCHAR
                elif isinstance(value, bool) or not isinstance(value, (int, float)):
                    statement.setString(k, str(value))
                elif isinstance(value, int):
                    statement.setLong(k, value)
                else:
                    statement.setDouble(k, value)
            return int(statement.executeUpdate())
        finally:
            statement.close()

    def _row(self) -> dict[str, Any] | None:
        statement = self.connection.prepareStatement(
            "SELECT status, lease_owner, lease_expires_at FROM score_runs WHERE run_id = ?"
        )
        try:
            statement.setString(1, self.run_id)
            result = statement.executeQuery()
            if not result.next():
                return None
            return {k: result.getString(k) for k in ("status", "lease_owner", "lease_expires_at")}
        except Exception as exc:
            raise DataError(
                f"{redact_url(self.url)} has no usable score_runs table (create the store first, e.g. with "
                f"`churnops score` or `churnops runs`): {str(exc).splitlines()[0]}"
            ) from None
        finally:
            statement.close()

    def status(self) -> str | None:
        row = self._row()
        return None if row is None else row["status"]

    def claim(self, config: SparkScoreConfig, document: dict[str, Any], source: str) -> None:
        """Create or take over the run; a run a live scorer holds is refused; an unfinished one is redone whole."""
        now = datetime.now(UTC)
        row = self._row()
        if row is None:
            self._execute(
                "INSERT INTO score_runs (run_id, kind, as_of, model_name, model_version, source, status, started_at, "
                "rows_read, rows_scored, rows_quarantined, checkpoint_rows) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, 0, 0, 0, 0)",
                self.run_id,
                config.kind,
                config.as_of,
                str(document["model_name"]),
                str(document["model_version"]),
                source,
                _iso(now),
            )
        elif row["lease_owner"] is not None and (row["lease_expires_at"] or "") >= _iso(now):
            raise TrainerError(
                f"score run {self.run_id} is being scored by {row['lease_owner']} "
                f"(claim holds until {row['lease_expires_at']}); try again later"
            )
        claimed = self._execute(
            "UPDATE score_runs SET status = 'running', error = NULL, source = ?, lease_owner = ?, "
            "lease_expires_at = ? WHERE run_id = ? AND status <> 'complete'",
            source,
            self.owner,
            _iso(now + timedelta(seconds=LEASE_SECONDS)),
            self.run_id,
        )
        if claimed != 1:
            raise TrainerError(f"score run {self.run_id} was completed or claimed by another process just now")
        # Spark rewrites a run whole: whatever an interrupted attempt left is removed first.
        # score_rows is the table under the `scores` view (migration 020), keyed by the run's integer key.
        self._execute(
            "DELETE FROM score_rows WHERE run_key = (SELECT run_key FROM score_runs WHERE run_id = ?)", self.run_id
        )
        self._execute("DELETE FROM quarantine WHERE run_id = ?", self.run_id)
        self._renewer = threading.Thread(target=self._renew, name="churnops-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 4):
            expires = _iso(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS))
            self._execute(
                "UPDATE score_runs SET lease_expires_at = ? WHERE run_id = ? AND lease_owner = ?",
                expires,
                self.run_id,
                self.owner,
            )

    def finish(
        self,
        status: Literal["complete", "failed"],
        counts: tuple[int, int],
        duration_ms: float,
        error: str | None,
    ) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        scored, quarantined = counts
        self._execute(
            "UPDATE score_runs SET status = ?, finished_at = ?, rows_read = ?, rows_scored = ?, rows_quarantined = ?, "
            "checkpoint_rows = ?, duration_ms = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL "
            "WHERE run_id = ?",
            status,
            _iso(datetime.now(UTC)),
            scored + quarantined,
            scored,
            quarantined,
            scored + quarantined,
            duration_ms,
            error,
            self.run_id,
        )

    def close(self) -> None:
        self._stop.set()
        self.connection.close()


def store_status(spark: SparkSession, url: str, run_id: str) -> str | None:
    probe = StoreRun(spark, url, run_id)
    try:
        return probe.status()
    finally:
        probe.close()


def write_store(spark: SparkSession, job: Job) -> tuple[int, int]:
    """Append scores and quarantine rows to the store's tables under a claimed run, then mark it complete."""
    from pyspark.sql import functions as F

    config, tables = job.config, job.tables
    assert config.jdbc_out is not None
    started = time.perf_counter()
    run = StoreRun(spark, config.jdbc_out, job.run_id)
    try:
        run.claim(config, job.document, job.source)
        try:
            options = {"url": config.jdbc_out, "batchsize": "5000"}
            if (driver := jdbc_driver(config.jdbc_out)) is not None:
                options["driver"] = driver
            scores = tables.scores.withColumn("decision", F.col("decision").cast("int")).drop(
                *reason_columns(config.reasons)
            )
            scores.write.format("jdbc").options(dbtable="scores", **options).mode("append").save()
            tables.quarantine.write.format("jdbc").options(dbtable="quarantine", **options).mode("append").save()
            counts = (tables.scores.count(), tables.quarantine.count())
        except Exception as exc:
            refused = refused_on_executor(exc)
            message = str(refused) if refused is not None else str(exc).splitlines()[0]
            run.finish("failed", (0, 0), (time.perf_counter() - started) * 1000, message[:2000])
            raise
        run.finish("complete", counts, (time.perf_counter() - started) * 1000, None)
        return counts
    finally:
        run.close()


def cli_run(args: Any) -> dict[str, Any]:
    """`spark-score`: argparse namespace → validated config → run. Configuration mistakes are user errors."""
    from pydantic import ValidationError

    try:
        import pyspark  # noqa: F401 - only to report a missing extra as one line
    except ImportError:
        raise TrainerError(
            "pyspark is not installed: pip install 'churnops-trainer[spark]' (or pip install pyspark)"
        ) from None
    conf: dict[str, str] = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TrainerError(f"--conf {item}: expected KEY=VALUE")
        conf[key.strip()] = value
    bundle = Path(args.bundle) if args.bundle else resolve_bundle(args.model, args.model_name)
    try:
        config = SparkScoreConfig(
            bundle=bundle,
            data=args.data,
            table=args.table,
            query=args.query,
            kind=args.kind,
            as_of=args.as_of,
            out=args.out,
            quarantine_out=args.quarantine_out,
            jdbc_out=args.jdbc_out,
            master=args.master,
            conf=conf,
            reasons=getattr(args, "reasons", 0) or 0,
            language=getattr(args, "lang", "en") or "en",
        )
    except ValidationError as exc:
        raise TrainerError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    return run(config)
