"""The uplift training table: the contract of the export `churnops uplift train` writes, and its checks.

One row per randomised campaign member (docs/uplift.md, "The data"):

* ``__customer_id``, ``__campaign``: who and which campaign;
* ``__arm``: ``treatment`` or ``control``;
* ``__delivery``: the offer's delivery state (``delivered``, ``pending``, ``dead``; ``none`` for control);
* ``__churned``: 1 if the member churned within the campaign's horizon, else 0;
* ``__risk``: the churn probability the member was planned with (to compare uplift with risk targeting);
* every other column is a feature, exactly as the run the campaign was planned on scored it.

Treated members are analysed as assigned (intention to treat): a member whose message was not delivered stays in
the treatment arm, so the effect estimated is that of planning an offer, which is what targeting decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_trainer.errors import DataError
from churnops_trainer.features import FeatureSet

META = ("__customer_id", "__campaign", "__arm", "__delivery", "__churned", "__risk")
ARMS = ("treatment", "control")
#: The least an arm needs to learn anything: rows, and churners (and stayers) among them.
MIN_ROWS_PER_ARM = 200
MIN_CHURNERS_PER_ARM = 20


@dataclass(frozen=True)
class UpliftData:
    frame: pd.DataFrame
    """Feature columns only (raw values)."""
    treated: np.ndarray
    churned: np.ndarray
    risk: np.ndarray
    campaign: np.ndarray
    customer_id: np.ndarray
    delivery: np.ndarray
    features: FeatureSet
    integer: dict[str, bool]

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def subset(self, index: np.ndarray) -> UpliftData:
        return UpliftData(
            self.frame.iloc[index].reset_index(drop=True),
            self.treated[index],
            self.churned[index],
            self.risk[index],
            self.campaign[index],
            self.customer_id[index],
            self.delivery[index],
            self.features,
            self.integer,
        )

    def arm_counts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for arm, mask in (("treatment", self.treated), ("control", ~self.treated)):
            n = int(mask.sum())
            churners = int(self.churned[mask].sum())
            out[arm] = {"rows": n, "churners": churners, "churn_rate": churners / n if n else None}
        delivered = self.delivery[self.treated]
        out["treatment"]["delivery"] = {
            str(k): int(v) for k, v in zip(*np.unique(delivered, return_counts=True), strict=True)
        }
        return out


def read_export(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"uplift data {path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def infer_features(frame: pd.DataFrame, drop: tuple[str, ...] = ()) -> FeatureSet:
    """Numeric columns stay numeric; everything else is categorical. Meta and dropped columns are not features."""
    numeric: list[str] = []
    categorical: list[str] = []
    for column in frame.columns:
        if column in META or column in drop:
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            numeric.append(column)
        else:
            categorical.append(column)
    if not numeric and not categorical:
        raise DataError("uplift data: no feature columns besides " + ", ".join(META))
    return FeatureSet(numeric=tuple(numeric), categorical=tuple(categorical))


def prepare(
    raw: pd.DataFrame,
    drop: tuple[str, ...] = (),
    min_rows: int = MIN_ROWS_PER_ARM,
    min_churners: int = MIN_CHURNERS_PER_ARM,
) -> UpliftData:
    """Validate the export and split it into features and the arm / outcome arrays; refuse too little data."""
    missing = [c for c in ("__arm", "__churned") if c not in raw.columns]
    if missing:
        raise DataError(
            f"uplift data: missing column(s) {', '.join(missing)}; its columns are {', '.join(raw.columns)}"
        )
    arms = raw["__arm"].astype(str).to_numpy()
    bad = np.flatnonzero(~np.isin(arms, ARMS))
    if len(bad):
        raise DataError(f"uplift data row {int(bad[0])}: __arm is {arms[bad[0]]!r}; expected treatment or control")
    churned_raw = pd.to_numeric(raw["__churned"], errors="coerce")
    bad = np.flatnonzero(~churned_raw.isin([0, 1]).to_numpy())
    if len(bad):
        raise DataError(
            f"uplift data row {int(bad[0])}: __churned is {raw['__churned'].iloc[bad[0]]!r}; expected 0 or 1"
        )
    churned = churned_raw.to_numpy(dtype=np.int64)
    treated = arms == "treatment"
    risk = (
        pd.to_numeric(raw["__risk"], errors="coerce").to_numpy(dtype=float)
        if "__risk" in raw.columns
        else np.full(len(raw), np.nan)
    )
    features = infer_features(raw, drop)
    integer = {c: bool(pd.api.types.is_integer_dtype(raw[c])) for c in features.numeric}
    data = UpliftData(
        frame=raw[list(features.raw_columns)].reset_index(drop=True),
        treated=treated,
        churned=churned,
        risk=risk,
        campaign=raw["__campaign"].astype(str).to_numpy() if "__campaign" in raw.columns else np.full(len(raw), ""),
        customer_id=(
            raw["__customer_id"].astype(str).to_numpy()
            if "__customer_id" in raw.columns
            else np.arange(len(raw)).astype(str)
        ),
        delivery=(
            raw["__delivery"].astype(str).to_numpy()
            if "__delivery" in raw.columns
            else np.where(treated, "unknown", "none")
        ),
        features=features,
        integer=integer,
    )
    require_enough(data, min_rows, min_churners)
    return data


def require_enough(data: UpliftData, min_rows: int, min_churners: int) -> None:
    """Refuse, naming every arm that is short and what it has, when there is too little to learn from."""
    counts = data.arm_counts()
    problems = []
    for arm in ARMS:
        c = counts[arm]
        stayers = c["rows"] - c["churners"]
        if c["rows"] < min_rows or c["churners"] < min_churners or stayers < min_churners:
            problems.append(
                f"the {arm} arm has {c['rows']} rows with {c['churners']} churners and {stayers} stayers "
                f"(needs at least {min_rows} rows, {min_churners} churners and {min_churners} stayers)"
            )
    if problems:
        raise DataError(
            "too little data to learn an uplift model: "
            + "; ".join(problems)
            + " — run more campaigns with a control group, or wait for more outcomes"
        )
