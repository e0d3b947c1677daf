"""Scoring a table with a bundle: metrics on labelled data, and row-level output for parity checks."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_trainer import evaluate as ev
from churnops_trainer.data import TargetSpec, labels_from, read_table
from churnops_trainer.errors import DataError
from churnops_trainer.export import MODEL_FILE, bundle_features, load_bundle, onnx_probabilities, onnx_session
from churnops_trainer.features import FeatureSet, to_model_frame


def score_frame(bundle_dir: Path, raw: pd.DataFrame) -> tuple[np.ndarray, FeatureSet, dict[str, Any]]:
    """ONNX probabilities for every row of a raw table (missing columns/values fed as missing)."""
    document = load_bundle(bundle_dir)
    features = bundle_features(document)
    session = onnx_session((Path(bundle_dir) / MODEL_FILE).read_bytes())
    frame = to_model_frame(raw, features)
    return onnx_probabilities(session, frame, features), features, document


def unseen_category_rows(raw: pd.DataFrame, document: dict[str, Any]) -> int:
    """Rows holding a category the model never saw (consumers would quarantine these)."""
    features = bundle_features(document)
    frame = to_model_frame(raw, features)
    unseen = np.zeros(len(raw), dtype=bool)
    for spec in document["schema"]["features"]:
        if spec["kind"] == "categorical":
            allowed = set(spec["categories"]) | {features.missing_token}
            unseen |= ~frame[spec["name"]].isin(allowed).to_numpy()
    return int(unseen.sum())


def evaluate_bundle(
    bundle_dir: Path,
    data: str,
    table: str | None = None,
    query: str | None = None,
    target: str | None = None,
    positive: str | None = None,
) -> dict[str, Any]:
    """Metrics of a bundle on a labelled table, at the bundle's operating threshold."""
    raw = read_table(data, table, query)
    document = load_bundle(bundle_dir)
    spec_target = document["schema"]["target"]
    target_spec = TargetSpec(column=target or spec_target["column"], positive=positive or spec_target["positive"])
    if target_spec.column not in raw.columns:
        raise DataError(f"target column '{target_spec.column}' not found in {data}")
    labelled = raw[raw[target_spec.column].astype("string").str.strip().fillna("") != ""].reset_index(drop=True)
    y = labels_from(
        labelled[target_spec.column].astype("string").str.strip(), target_spec, labelled[target_spec.column]
    )
    if y.min() == y.max():
        raise DataError(f"target '{target_spec.column}' has only one class in {len(y)} labelled rows")
    scores, _features, document = score_frame(bundle_dir, labelled)
    threshold = float(document["thresholds"]["operating"])
    return {
        "bundle": str(bundle_dir),
        "model_name": document["model_name"],
        "model_version": document["model_version"],
        "rows": len(y),
        "positives": int(y.sum()),
        "unseen_category_rows": unseen_category_rows(labelled, document),
        "threshold": threshold,
        "metrics": ev.classification_metrics(y, scores, threshold),
    }


def predict_to_csv(bundle_dir: Path, data: str, out: Path, native_pipeline: Any | None = None) -> int:
    """Write `row, id, p_onnx[, p_native]` for every input row; returns the row count."""
    raw = read_table(data)
    scores, features, document = score_frame(bundle_dir, raw)
    id_column = document["schema"].get("id_column")
    ids = raw[id_column].astype(str).tolist() if id_column and id_column in raw.columns else [""] * len(raw)
    native = None
    if native_pipeline is not None:
        native = native_pipeline.predict_proba(to_model_frame(raw, features))[:, 1]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "id", "p_onnx", *(["p_native"] if native is not None else [])])
        for i in range(len(raw)):
            line = [i, ids[i], repr(float(scores[i]))]
            if native is not None:
                line.append(repr(float(native[i])))
            writer.writerow(line)
    return len(raw)
