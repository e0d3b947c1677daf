"""Row validation with the TS scorer's rules and words: JavaScript's formatting of numbers and text, and
src/data/validate.ts's checks vectorised over pandas batches, so a row is quarantined for the same reason, in
the same words, by either scorer."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

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
