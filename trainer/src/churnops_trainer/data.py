"""Data in: read a customer table, describe it with a dataset spec, validate it, and type its columns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from churnops_trainer.errors import DataError
from churnops_trainer.features import DEFAULT_MISSING_TOKEN, FeatureSet, RatioSpec
from churnops_trainer.redact import redact_url

#: Columns the synthetic generator writes that are labels, oracle values or campaign fields, never features.
NON_FEATURE_COLUMNS = ("true_churn_prob", "snapshot_month", "opted_out", "customer_value")
#: Text read as a missing value (after stripping whitespace).
MISSING_TEXT = frozenset({"", "nan", "NaN", "NULL", "null", "None"})
#: A text column that parses as numbers for at least this share of its values is taken to be numeric
#: with bad values in it (an error) rather than categorical.
NUMERIC_SHARE = 0.95
MAX_CATEGORIES = 100
MIN_CLASS_ROWS = 10


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    positive: str


class BoundsSpec(BaseModel):
    """Hard validity bounds: a value outside them is impossible, and consumers quarantine it."""

    model_config = ConfigDict(extra="forbid")
    lower: float | None = None
    upper: float | None = None


class DerivedRatio(BaseModel):
    """`name = numerator / (denominator + offset)`, computed inside the ONNX graph."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    numerator: str
    denominator: str
    offset: float = 0.0


#: A label a person reads in a reason ("Contract type"): one for every language, or one per language.
Label = Annotated[str, Field(min_length=1, max_length=80)]
LabelTexts = Label | dict[Literal["en", "ja"], Label]


class DatasetSpec(BaseModel):
    """What a customer table means: the id, the target, what to leave out and how to read the rest."""

    model_config = ConfigDict(extra="forbid")
    id_column: str | None = None
    target: TargetSpec | None = None
    drop: list[str] = Field(default_factory=list)
    columns: dict[str, Literal["numeric", "categorical"]] = Field(default_factory=dict)
    bounds: dict[str, BoundsSpec] = Field(default_factory=dict)
    derived: list[DerivedRatio] = Field(default_factory=list)
    monotone: dict[str, Literal[-1, 0, 1]] = Field(default_factory=dict)
    #: Human labels for reason texts, per column or derived feature (bundle.json explanations.features[].label).
    labels: dict[str, LabelTexts] = Field(default_factory=dict)
    missing_token: str = DEFAULT_MISSING_TOKEN
    min_rows: int = Field(default=100, ge=20)

    def with_overrides(
        self,
        target: str | None = None,
        positive: str | None = None,
        id_column: str | None = None,
        drop: list[str] | None = None,
    ) -> DatasetSpec:
        """The spec with command-line values taking precedence."""
        update: dict[str, Any] = {}
        if target is not None or positive is not None:
            current = self.target
            column = target if target is not None else (current.column if current else None)
            label = positive if positive is not None else (current.positive if current else None)
            if column is None or label is None:
                raise DataError("both the target column (--target) and its positive label (--positive) are needed")
            update["target"] = TargetSpec(column=column, positive=label)
        if id_column is not None:
            update["id_column"] = id_column
        if drop:
            update["drop"] = list(dict.fromkeys([*self.drop, *drop]))
        return self.model_copy(update=update)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read a YAML dataset spec; a malformed one is a user error naming the field."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise DataError(f"cannot read dataset spec {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"dataset spec {path} is not valid YAML: {exc}") from None
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(f"dataset spec {path}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def is_sql_url(source: str) -> bool:
    return source.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+"))


def read_table(source: str, table: str | None = None, query: str | None = None) -> pd.DataFrame:
    """A customer table from CSV, Parquet, or a SQLite/PostgreSQL URL with a table name or query.

    CSV cells are read as text so that typing (and its error messages) happens in one place.
    """
    if is_sql_url(source):
        return _read_sql(source, table, query)
    if table or query:
        raise DataError("--table/--query only apply to a database URL (sqlite:///… or postgresql://…)")
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file not found: {source}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {source}: {exc}") from None
    raise DataError(f"unsupported data file type '{suffix}' (use .csv, .parquet or a database URL)")


def _read_sql(url: str, table: str | None, query: str | None) -> pd.DataFrame:
    import sqlalchemy as sa

    if bool(table) == bool(query):
        raise DataError("a database URL needs exactly one of --table or --query")
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if table:
                if not sa.inspect(conn).has_table(table):
                    raise DataError(f"table '{table}' not found in {redact_url(url)}")
                return pd.read_sql_table(table, conn)
            return pd.read_sql_query(sa.text(query or ""), conn)
    except sa.exc.SQLAlchemyError as exc:
        message = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        raise DataError(f"cannot read from {redact_url(url)}: {redact_url(message)}") from None
    finally:
        engine.dispose()


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the table's content (column names, types and values), independent of the file format."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class NumericInfo:
    """What training saw of a numeric column (written into the bundle schema)."""

    integer: bool
    minimum: float | None
    maximum: float | None
    lower_bound: float | None
    upper_bound: float | None
    missing: int


@dataclass
class PreparedData:
    """A validated table: typed feature columns, labels, ids, and what was decided about each column."""

    frame: pd.DataFrame
    y: np.ndarray
    ids: pd.Series
    id_column: str | None
    target: TargetSpec
    features: FeatureSet
    numeric_info: dict[str, NumericInfo]
    excluded: dict[str, str]
    notes: list[str]
    fingerprint: str
    n_rows: int
    positives: int
    categories: dict[str, list[str]] = field(default_factory=dict)
    #: Feature → {language or "": label} from the spec's `labels:` ("" = every language), features only.
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Row → duplicate group: rows equal in every feature and the label share a group (see duplicate_groups).
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _missing_mask(values: pd.Series) -> pd.Series:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype("string").str.strip()
        return values.isna() | text.isin(MISSING_TEXT).fillna(True)
    return values.isna()


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip()


def _type_column(name: str, values: pd.Series, declared: str | None, notes: list[str]) -> tuple[str, pd.Series]:
    """Decide numeric or categorical and return typed values (float64 with NaN, or object with None)."""
    missing = _missing_mask(values)
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    if pd.api.types.is_numeric_dtype(values) and declared != "categorical":
        numeric = pd.to_numeric(values, errors="coerce").astype("float64")
        infinite = int(np.isinf(numeric).sum())
        if infinite:
            notes.append(f"column '{name}': {infinite} infinite value(s) treated as missing")
            numeric[np.isinf(numeric)] = np.nan
        return "numeric", numeric
    text = _as_text(values).where(~missing)
    present = int((~missing).sum())
    parsed = pd.to_numeric(text, errors="coerce")
    bad = (~missing) & parsed.isna()
    n_bad = int(bad.sum())
    blank = int((missing & values.notna()).sum())
    looks_numeric = present > 0 and (present - n_bad) / present >= NUMERIC_SHARE
    if declared == "numeric" or (declared is None and looks_numeric):
        if n_bad:
            examples = ", ".join(repr(v) for v in text[bad].unique()[:3])
            raise DataError(
                f"column '{name}': {n_bad} non-numeric value(s) in a numeric column (e.g. {examples}); "
                f"fix them or declare the column categorical in the dataset spec"
            )
        if blank:
            notes.append(f"column '{name}': {blank} blank value(s) treated as missing")
        return "numeric", parsed.astype("float64")
    return "categorical", text.astype(object).where(~missing, None)


def prepare(frame: pd.DataFrame, spec: DatasetSpec) -> PreparedData:
    """Validate a raw table against the spec and type its columns; user errors name column and count."""
    if spec.target is None:
        raise DataError("no target given: pass --target COLUMN --positive LABEL (or set target in the spec)")
    columns = [str(c) for c in frame.columns]
    frame = frame.copy()
    frame.columns = columns
    target = spec.target
    _require_columns(columns, target, spec)
    notes: list[str] = []
    digest = fingerprint(frame)

    labels = _as_text(frame[target.column])
    unlabeled = _missing_mask(frame[target.column])
    if unlabeled.any():
        notes.append(f"target '{target.column}': {int(unlabeled.sum())} row(s) without a label were left out")
        frame = frame.loc[~unlabeled].reset_index(drop=True)
        labels = labels.loc[~unlabeled].reset_index(drop=True)
    y = labels_from(labels, target, frame[target.column])
    _check_counts(y, target, spec.min_rows)

    ids = _ids(frame, spec.id_column)
    excluded: dict[str, str] = {}
    for name in spec.drop:
        excluded[name] = "dropped by request"
    candidates = [c for c in columns if c not in (target.column, spec.id_column) and c not in excluded]
    for name in candidates:
        if name in NON_FEATURE_COLUMNS and name not in spec.columns:
            excluded[name] = "label, oracle or campaign column written by the synthetic generator"
    typed: dict[str, pd.Series] = {}
    kinds: dict[str, str] = {}
    for name in candidates:
        if name in excluded:
            continue
        kind, values = _type_column(name, frame[name], spec.columns.get(name), notes)
        reason = _exclusion_reason(kind, values)
        if reason and name not in spec.columns:
            excluded[name] = reason
            continue
        typed[name], kinds[name] = values, kind
    for name, reason in excluded.items():
        if reason not in ("dropped by request",):
            notes.append(f"column '{name}' excluded: {reason}")
    if not typed:
        raise DataError("no feature columns left after excluding ids, constants and dropped columns")

    numeric = tuple(n for n in typed if kinds[n] == "numeric")
    categorical = tuple(n for n in typed if kinds[n] == "categorical")
    ratios = _ratios(spec, numeric)
    for name in spec.monotone:
        if name not in numeric:
            raise DataError(f"monotone constraint on '{name}', which is not a numeric feature column")
    features = FeatureSet(
        numeric=numeric,
        categorical=categorical,
        ratios=ratios,
        monotone={k: int(v) for k, v in spec.monotone.items() if v},
        missing_token=spec.missing_token,
    )
    labels = _labels(spec, columns, typed, ratios)
    numeric_info = {n: _numeric_info(n, typed[n], spec) for n in numeric}
    categories = {n: sorted({str(v) for v in typed[n] if v is not None}) for n in categorical}
    table = pd.DataFrame(typed)
    groups = duplicate_groups(table, y)
    repeated = len(y) - int(groups.max()) - 1
    if repeated:
        notes.append(
            f"{repeated} row(s) repeat another row exactly (every feature and the label); identical rows are kept "
            "on one side of the test split and of every cross-validation fold"
        )
    return PreparedData(
        frame=table,
        y=y,
        ids=ids,
        id_column=spec.id_column,
        target=target,
        features=features,
        numeric_info=numeric_info,
        excluded=excluded,
        notes=notes,
        fingerprint=digest,
        n_rows=len(y),
        positives=int(y.sum()),
        categories=categories,
        labels=labels,
        groups=groups,
    )


def _labels(
    spec: DatasetSpec, columns: list[str], features: dict[str, pd.Series], ratios: tuple[RatioSpec, ...]
) -> dict[str, dict[str, str]]:
    """The spec's labels of the features trained on; a label of a name the table does not have is a typo."""
    derived = {r.name for r in ratios}
    out: dict[str, dict[str, str]] = {}
    for name, label in spec.labels.items():
        if name not in columns and name not in derived:
            known = ", ".join([*columns, *sorted(derived)][:20])
            raise DataError(
                f"dataset spec labels: {name!r} is neither a column of the table nor a derived feature ({known})"
            )
        if name in features or name in derived:
            out[name] = {"": label} if isinstance(label, str) else dict(label)
    return out


def duplicate_groups(frame: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """A group number per row, numbered by first appearance; exact duplicates (features and label) share one.

    Splitting by group keeps a repeated row out of the side that would score it after training on its twin.
    """
    keyed = frame.assign(**{"\x00label": y})
    hashes = pd.util.hash_pandas_object(keyed, index=False).to_numpy()
    codes, _ = pd.factorize(hashes)
    return codes.astype(np.int64)


#: A single column that ranks the label at least this well on its own is a leak, not a feature.
LEAK_ROC_AUC = 0.99


def leaky_columns(prepared: PreparedData, limit: float = LEAK_ROC_AUC) -> dict[str, float]:
    """Feature columns whose values alone separate the classes with ROC AUC ≥ `limit` (either direction).

    A numeric column ranks by its value (missing as the lowest); a categorical one by its categories' churn
    rate (missing as a category of its own). Such a column is usually the outcome leaking in (a churn score
    from another system, a cancellation date), and a model built on it is worthless once deployed.
    """
    from sklearn.metrics import roc_auc_score

    found: dict[str, float] = {}
    y = prepared.y
    for name in prepared.features.raw_columns:
        values = prepared.frame[name]
        if name in prepared.features.numeric:
            numbers = values.to_numpy(dtype=np.float64)
            lowest = np.nanmin(numbers) if np.isfinite(numbers).any() else 0.0
            ranking = np.where(np.isnan(numbers), lowest - 1.0, numbers)
        else:
            keys = values.fillna("\x00missing").astype(str)
            ranking = keys.map(pd.Series(y, index=keys.index).groupby(keys).mean()).to_numpy(dtype=np.float64)
        auc = float(roc_auc_score(y, ranking))
        auc = max(auc, 1.0 - auc)
        if auc >= limit:
            found[name] = round(auc, 4)
    return found


def _require_columns(columns: list[str], target: TargetSpec, spec: DatasetSpec) -> None:
    shown = ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")
    if target.column not in columns:
        raise DataError(f"target column '{target.column}' not found; the table has {len(columns)} columns: {shown}")
    if spec.id_column is not None and spec.id_column not in columns:
        raise DataError(f"id column '{spec.id_column}' not found; the table has {len(columns)} columns: {shown}")
    missing = [c for c in [*spec.drop, *spec.columns] if c not in columns]
    if missing:
        raise DataError(f"{len(missing)} column(s) named in --drop or the spec are not in the table: {missing}")


def labels_from(labels: pd.Series, target: TargetSpec, raw: pd.Series) -> np.ndarray:
    positive = target.positive.strip()
    if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        number = pd.to_numeric(pd.Series([positive]), errors="coerce").iloc[0]
        if positive.lower() in ("true", "false"):
            number = 1.0 if positive.lower() == "true" else 0.0
        y = (pd.to_numeric(raw.astype("float64"), errors="coerce") == number).to_numpy()
    else:
        y = (labels == positive).fillna(False).to_numpy()
    if not y.any():
        values = ", ".join(repr(v) for v in labels.unique()[:10])
        raise DataError(
            f"positive label {target.positive!r} does not occur in target column '{target.column}' "
            f"(its values: {values})"
        )
    return y.astype(np.int64)


def _check_counts(y: np.ndarray, target: TargetSpec, min_rows: int) -> None:
    positives, n = int(y.sum()), len(y)
    if positives == n:
        raise DataError(f"target '{target.column}' has only one class: all {n} rows are {target.positive!r}")
    if n < min_rows:
        raise DataError(f"too few rows: {n} labelled rows, at least {min_rows} are needed")
    smaller = min(positives, n - positives)
    if smaller < MIN_CLASS_ROWS:
        which = f"{target.positive!r}" if positives < n - positives else f"not {target.positive!r}"
        raise DataError(
            f"target '{target.column}': only {smaller} row(s) are {which}; at least {MIN_CLASS_ROWS} are needed"
        )


def _ids(frame: pd.DataFrame, id_column: str | None) -> pd.Series:
    if id_column is None:
        return pd.Series(np.arange(len(frame)).astype(str), name="row")
    ids = _as_text(frame[id_column])
    missing = int(_missing_mask(frame[id_column]).sum())
    if missing:
        raise DataError(f"id column '{id_column}': {missing} row(s) have no id")
    duplicated = ids[ids.duplicated(keep=False)]
    if len(duplicated):
        examples = ", ".join(repr(v) for v in duplicated.unique()[:3])
        raise DataError(
            f"id column '{id_column}': {duplicated.nunique()} duplicated id(s) over {len(duplicated)} rows "
            f"(e.g. {examples})"
        )
    return ids.astype(str).reset_index(drop=True).rename(id_column)


def _exclusion_reason(kind: str, values: pd.Series) -> str | None:
    present = values.dropna()
    distinct = present.nunique()
    if distinct <= 1:
        return "constant (a single value)" if distinct == 1 else "empty (every value is missing)"
    if kind == "categorical":
        if distinct > 50 and distinct >= 0.5 * len(present):
            return f"mostly-unique text ({distinct} distinct values in {len(present)} rows), looks like an id"
        if distinct > MAX_CATEGORIES:
            return f"{distinct} categories, more than the {MAX_CATEGORIES} one-hot encoding allows"
    return None


def _ratios(spec: DatasetSpec, numeric: tuple[str, ...]) -> tuple[RatioSpec, ...]:
    out = []
    for derived in spec.derived:
        for role, column in (("numerator", derived.numerator), ("denominator", derived.denominator)):
            if column not in numeric:
                raise DataError(f"derived feature '{derived.name}': {role} '{column}' is not a numeric feature column")
        out.append(RatioSpec(derived.name, derived.numerator, derived.denominator, derived.offset))
    return tuple(out)


def _numeric_info(name: str, values: pd.Series, spec: DatasetSpec) -> NumericInfo:
    present = values.dropna()
    bounds = spec.bounds.get(name, BoundsSpec())
    minimum = float(present.min()) if len(present) else None
    maximum = float(present.max()) if len(present) else None
    lower = bounds.lower
    if lower is None and name not in spec.bounds and minimum is not None and minimum >= 0:
        # Counts, months and charges cannot go negative: a non-negative training column is taken to be
        # non-negative by nature (override with `bounds` in the spec).
        lower = 0.0
    return NumericInfo(
        integer=bool(len(present)) and bool(np.all(np.equal(np.floor(present), present))),
        minimum=minimum,
        maximum=maximum,
        lower_bound=lower,
        upper_bound=bounds.upper,
        missing=int(values.isna().sum()),
    )
