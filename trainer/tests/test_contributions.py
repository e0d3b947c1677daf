"""Contributions in the bundle (docs/bundle.md, "Explanations"): exact, checked, refused when tampered."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.errors import BundleError
from churnops_trainer.export import (
    GOLDEN_TOLERANCE,
    IDENTITY_TOLERANCE,
    bundle_features,
    identity_gap,
    load_bundle,
    onnx_explained,
    onnx_session,
    rows_frame,
    verify_bundle,
)
from churnops_trainer.features import to_model_frame
from churnops_trainer.spark import ReasonWriter, percentile_of
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.train import ADDITIVE_TOLERANCE, CandidateCV, choose_candidate


def _explained(trained: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    directory = Path(trained["bundle_path"])
    document = load_bundle(directory)
    return document, bundle_features(document), onnx_session((directory / "model.onnx").read_bytes())


@pytest.fixture(scope="module")
def many_rows() -> pd.DataFrame:
    """10,000 customers the model never saw (another seed), some values blanked."""
    frame = generate(SynthConfig(rows=10_000, seed=99, recipe="churnops"))
    frame.loc[frame.index % 17 == 0, "total_charges"] = np.nan
    frame.loc[frame.index % 23 == 0, "payment_method"] = None
    return frame


def test_the_fixture_model_is_additive_and_names_one_contribution_per_raw_feature(trained: dict[str, Any]) -> None:
    document, features, _ = _explained(trained)
    explanations = document["explanations"]
    assert explanations["available"] is True
    assert [f["name"] for f in explanations["features"]] == [*features.numeric, *features.categorical]
    assert all(len(f.get("percentiles", [])) == 101 for f in explanations["features"] if f["kind"] == "numeric")


def test_baseline_plus_contributions_is_the_logit_on_golden_rows_and_10000_more(
    trained: dict[str, Any], many_rows: pd.DataFrame
) -> None:
    document, features, session = _explained(trained)
    baseline = document["explanations"]["baseline"]
    golden = rows_frame(document["golden"]["rows"], features)
    for frame in (golden, to_model_frame(many_rows, features)):
        probabilities, contributions = onnx_explained(session, frame, features)
        assert identity_gap(probabilities, contributions, baseline).max() <= IDENTITY_TOLERANCE
    probabilities, contributions = onnx_explained(session, golden, features)
    assert np.abs(contributions - np.asarray(document["golden"]["contributions"])).max() <= GOLDEN_TOLERANCE


def test_the_baseline_is_the_mean_log_odds_of_the_training_split(trained: dict[str, Any]) -> None:
    """The contributions are centred on the training split: they average to ~0 over customers like it."""
    _, features, session = _explained(trained)
    frame = to_model_frame(generate(SynthConfig(rows=20_000, seed=5, recipe="churnops")), features)
    _, contributions = onnx_explained(session, frame, features)
    assert np.abs(contributions.mean(axis=0)).max() < 0.05


def test_a_feature_contribution_changes_only_when_that_feature_changes(
    trained: dict[str, Any], many_rows: pd.DataFrame
) -> None:
    """Invariance of an additive model, and exactness: swapping one feature moves the log-odds by exactly the
    difference of that feature's contributions, and leaves every other contribution as it was."""
    document, features, session = _explained(trained)
    names = [f["name"] for f in document["explanations"]["features"]]
    frame = to_model_frame(many_rows.head(500), features)
    p0, c0 = onnx_explained(session, frame, features)
    donor = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for j, name in enumerate(names):
        changed = frame.copy()
        changed[name] = donor[name].to_numpy()
        p1, c1 = onnx_explained(session, changed, features)
        others = [k for k in range(len(names)) if k != j]
        assert np.array_equal(c1[:, others], c0[:, others]), name
        moved = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
        assert np.abs(moved - (c1[:, j] - c0[:, j])).max() <= IDENTITY_TOLERANCE, name
        same = changed[name].astype(str).to_numpy() == frame[name].astype(str).to_numpy()
        assert np.array_equal(c1[same, j], c0[same, j]), name


def _bundle_copy(trained: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(trained["bundle_path"], target)
    return target


def test_a_tampered_golden_contribution_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    bundle = _bundle_copy(trained, tmp_path)
    doc = json.loads((bundle / "bundle.json").read_text())
    doc["golden"]["contributions"][11][2] += 2e-6
    (bundle / "bundle.json").write_text(json.dumps(doc))
    name = doc["explanations"]["features"][2]["name"]
    with pytest.raises(BundleError, match=rf"golden contribution of '{name}' on row 11"):
        verify_bundle(bundle)


def test_a_tampered_baseline_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    bundle = _bundle_copy(trained, tmp_path)
    doc = json.loads((bundle / "bundle.json").read_text())
    doc["explanations"]["baseline"] += 1e-4
    (bundle / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"baseline \+ sum of contributions differs from logit\(p\)"):
        verify_bundle(bundle)


def test_missing_golden_contributions_are_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    bundle = _bundle_copy(trained, tmp_path)
    doc = json.loads((bundle / "bundle.json").read_text())
    del doc["golden"]["contributions"]
    (bundle / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"golden\.contributions must hold"):
        verify_bundle(bundle)


def _candidate(name: str, auc: float, leaves: int | None) -> CandidateCV:
    params = {} if leaves is None else {"num_leaves": leaves}
    return CandidateCV(name, 1.0, np.zeros(1), [1], params, roc_auc=auc, precision_at_target=0.5)


def test_the_additive_candidate_wins_within_the_tolerance_and_loses_beyond_it() -> None:
    trees = _candidate("lightgbm", 0.800, None)
    close = _candidate("lightgbm_stumps", 0.800 - ADDITIVE_TOLERANCE / 2, 2)
    far = _candidate("lightgbm_stumps", 0.800 - ADDITIVE_TOLERANCE * 2, 2)
    assert choose_candidate([trees, close]) is close
    assert choose_candidate([trees, far]) is trees


def test_reason_texts_use_the_reference_profile(trained: dict[str, Any]) -> None:
    document, _, _ = _explained(trained)
    writer = ReasonWriter.of(document)
    names = [f["name"] for f in writer.features]
    contract = names.index("contract_type")
    share = document["reference"]["features"]["contract_type"]["freqs"]["month-to-month"]
    assert writer.text(contract, "month-to-month", True) == (
        f"contract_type: month-to-month — {round(share * 100)}% of customers; raises risk the most"
    )
    tenure = names.index("tenure_months")
    low = writer.features[tenure]["percentiles"][5]
    assert writer.text(tenure, low, False).endswith("of customers; raises risk")
    assert "lower than" in writer.text(tenure, low, False)
    japanese = ReasonWriter.of(document, "ja").text(contract, None, True)
    assert japanese == "contract_type: 未記録 — 未記録。リスクを最も高めています"


def test_the_dataset_spec_labels_reach_the_bundle_and_the_reasons_in_each_language(trained: dict[str, Any]) -> None:
    document, _, _ = _explained(trained)
    by_name = {f["name"]: f for f in document["explanations"]["features"]}
    assert by_name["num_support_tickets"]["label"] == "Support tickets"
    assert by_name["num_support_tickets"]["labels"] == {"en": "Support tickets", "ja": "問い合わせ件数"}
    assert by_name["monthly_charges"]["label"] == "Monthly charges"
    assert "labels" not in by_name["monthly_charges"] and "label" not in by_name["contract_type"]
    names = list(by_name)
    tickets, charges = names.index("num_support_tickets"), names.index("monthly_charges")
    assert ReasonWriter.of(document, "en").text(tickets, 3.0, True).startswith("Support tickets: 3 — ")
    assert ReasonWriter.of(document, "ja").text(tickets, 3.0, True).startswith("問い合わせ件数: 3 — ")
    assert ReasonWriter.of(document, "ja").text(charges, None, True).startswith("Monthly charges: 未記録")
    # A bundle from before labels says the column's name.
    del by_name["num_support_tickets"]["label"], by_name["num_support_tickets"]["labels"]
    assert ReasonWriter.of(document, "ja").text(tickets, 3.0, True).startswith("num_support_tickets: 3 — ")


def test_the_report_shows_raw_features_and_which_way_their_values_move_the_risk(trained: dict[str, Any]) -> None:
    report = Path(trained["report_path"])
    page = report.read_text(encoding="utf-8")
    assert (report.parent / "importance.png").is_file() and (report.parent / "direction.png").is_file()
    assert "num__" not in page and "cat__" not in page  # no pipeline names
    assert "<th>Support tickets</th>" in page  # the spec's label
    assert "<th>contract_type</th>" in page  # a raw categorical feature, its one-hot group counted once


def test_the_reports_direction_per_category_has_the_sign_of_the_bundles_contributions(
    trained: dict[str, Any], many_rows: pd.DataFrame
) -> None:
    page = Path(trained["report_path"]).read_text(encoding="utf-8")
    row = re.search(r"<tr><th>contract_type</th>.*?</tr>", page)
    assert row is not None
    reported = {m[1]: float(m[2]) for m in re.finditer(r">([^<>:]+): ([+-][0-9.]+)</span>", row[0])}
    assert len(reported) >= 2
    document, features, session = _explained(trained)
    _, contributions = onnx_explained(session, to_model_frame(many_rows, features), features)
    column = [f["name"] for f in document["explanations"]["features"]].index("contract_type")
    for category, mean in reported.items():
        rows = (many_rows["contract_type"] == category).to_numpy()
        bundle_mean = float(contributions[rows, column].mean())
        if abs(bundle_mean) > 0.05:
            assert np.sign(mean) == np.sign(bundle_mean), (category, mean, bundle_mean)


def test_percentile_of_interpolates_and_takes_the_middle_of_ties() -> None:
    grid = [float(v) for v in range(101)]
    assert percentile_of(grid, 50.0) == pytest.approx(0.5)
    assert percentile_of(grid, 25.5) == pytest.approx(0.255)
    assert percentile_of(grid, -1.0) == 0.0 and percentile_of(grid, 200.0) == 1.0
    assert percentile_of([0.0] * 51 + [1.0] * 50, 0.0) == pytest.approx(0.25)
