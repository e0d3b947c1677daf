"""The bundle contract (docs/bundle.md), the golden-vector verifier and the export refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from churnops_trainer.errors import BundleError, ExportRefused
from churnops_trainer.export import (
    NATIVE_TOLERANCE,
    UNSEEN_CATEGORY,
    bundle_features,
    export_check,
    load_bundle,
    onnx_session,
    rows_frame,
    sha256_file,
    verify_bundle,
)


@pytest.fixture()
def bundle_copy(trained: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(trained["bundle_path"], target)
    return target


def test_bundle_has_exactly_the_contract_files_and_fields(trained: dict[str, Any]) -> None:
    directory = Path(trained["bundle_path"])
    assert sorted(p.name for p in directory.iterdir()) == ["bundle.json", "model.onnx"]
    doc = load_bundle(directory)
    assert doc["model_name"] == "fixture" and doc["model_version"] == trained["version"]
    assert doc["run_id"] == trained["run_id"]
    assert doc["onnx"]["sha256"] == sha256_file(directory / "model.onnx")
    assert doc["onnx"]["probability_output"] == "probabilities" and doc["onnx"]["positive_index"] == 1
    schema = doc["schema"]
    assert schema["id_column"] == "customer_id" and schema["target"] == {"column": "churned", "positive": "1"}
    names = [f["name"] for f in schema["features"]]
    assert "customer_id" not in names and "true_churn_prob" not in names
    total = next(f for f in schema["features"] if f["name"] == "total_charges")
    assert total["required"] is False and total["lower_bound"] == 0
    contract = next(f for f in schema["features"] if f["name"] == "contract_type")
    assert contract["categories"] == ["month-to-month", "one_year", "two_year"]
    assert set(doc["thresholds"]) == {"operating", "recall_target", "accuracy_optimal", "cost_based"}
    assert [b["name"] for b in doc["bands"]] == ["high", "medium", "low"]
    assert doc["bands"][0]["min"] > doc["bands"][1]["min"] > doc["bands"][2]["min"] == 0.0
    assert set(doc["metrics"]["baselines"]) == {"logistic", "original_recipe"}
    assert doc["export_check"]["max_abs_diff_vs_native"] <= NATIVE_TOLERANCE
    assert doc["export_check"]["decisions_flipped"] == 0
    assert {"python", "lightgbm", "scikit-learn", "onnx", "onnxruntime", "skl2onnx", "onnxmltools"} <= set(
        doc["versions"]
    )


def test_graph_inputs_are_one_per_raw_column_with_the_contract_types(trained: dict[str, Any]) -> None:
    doc = load_bundle(Path(trained["bundle_path"]))
    model = onnx.load(str(Path(trained["bundle_path"]) / "model.onnx"))
    kinds = {f["name"]: f["kind"] for f in doc["schema"]["features"]}
    inputs = [
        (i.name, i.type.tensor_type.elem_type, [d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    ]
    assert [name for name, _, _ in inputs] == [f["name"] for f in doc["schema"]["features"]]
    for name, elem, dims in inputs:
        expected = onnx.TensorProto.FLOAT if kinds[name] == "numeric" else onnx.TensorProto.STRING
        assert elem == expected and dims[1] == 1


def test_golden_rows_cover_missing_values_and_unseen_categories(trained: dict[str, Any]) -> None:
    golden = load_bundle(Path(trained["bundle_path"]))["golden"]
    rows = golden["rows"]
    assert len(rows) >= 200 and len(golden["probabilities"]) == len(rows)
    assert any(v is None for row in rows for k, v in row.items() if k == "contract_type")
    assert any(v is None for row in rows for k, v in row.items() if k == "tenure_months")
    assert any(isinstance(v, str) and v.startswith(UNSEEN_CATEGORY) for row in rows for v in row.values())
    assert all(0.0 <= p <= 1.0 for p in golden["probabilities"])


def test_reference_profile_follows_the_binning_rule(trained: dict[str, Any]) -> None:
    reference = load_bundle(Path(trained["bundle_path"]))["reference"]
    tenure = reference["features"]["tenure_months"]
    assert tenure["edges"] == sorted(tenure["edges"]) and len(tenure["freqs"]) == len(tenure["edges"]) + 1
    assert sum(tenure["freqs"]) == pytest.approx(1.0)
    contract = reference["features"]["contract_type"]
    assert sum(contract["freqs"].values()) == pytest.approx(1.0)
    assert reference["features"]["total_charges"]["missing_share"] > 0
    assert sum(reference["score"]["freqs"]) == pytest.approx(1.0)


def test_verifier_accepts_the_exported_bundle(trained: dict[str, Any]) -> None:
    result = verify_bundle(Path(trained["bundle_path"]))
    assert result.golden_rows >= 200 and result.max_abs_diff <= 1e-6


def test_verifier_refuses_a_tampered_model_file(bundle_copy: Path) -> None:
    data = bytearray((bundle_copy / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (bundle_copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"sha256 of model\.onnx"):
        verify_bundle(bundle_copy)


def test_verifier_refuses_a_changed_model_even_with_a_matching_sha(bundle_copy: Path) -> None:
    model = onnx.load(str(bundle_copy / "model.onnx"))
    for node in model.graph.node:
        if node.op_type == "TreeEnsembleRegressor":
            for attr in node.attribute:
                if attr.name == "target_weights":
                    attr.floats[0] += 0.5
    onnx.save(model, str(bundle_copy / "model.onnx"))
    doc = json.loads((bundle_copy / "bundle.json").read_text())
    doc["onnx"]["sha256"] = sha256_file(bundle_copy / "model.onnx")
    (bundle_copy / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"golden vectors differ by more than 1e-06"):
        verify_bundle(bundle_copy)


def test_verifier_refuses_a_tampered_golden_value(bundle_copy: Path) -> None:
    doc = json.loads((bundle_copy / "bundle.json").read_text())
    doc["golden"]["probabilities"][17] += 2e-6
    (bundle_copy / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"1 of \d+ golden vectors differ .* row 17"):
        verify_bundle(bundle_copy)


def _golden_session(trained: dict[str, Any]) -> tuple[Any, pd.DataFrame, Any, np.ndarray]:
    directory = Path(trained["bundle_path"])
    doc = load_bundle(directory)
    features = bundle_features(doc)
    frame = rows_frame(doc["golden"]["rows"], features)
    session = onnx_session((directory / "model.onnx").read_bytes())
    return session, frame, features, np.asarray(doc["golden"]["probabilities"])


def test_export_refuses_a_graph_that_drifts_from_the_native_model(trained: dict[str, Any]) -> None:
    session, frame, features, probabilities = _golden_session(trained)
    ok = export_check(session, probabilities, frame, features, 0.5)
    assert ok["max_abs_diff_vs_native"] < 1e-6 and ok["rows_checked"] == len(frame)
    drifted = probabilities.copy()
    drifted[3] += 2 * NATIVE_TOLERANCE
    with pytest.raises(ExportRefused, match=r"max \|p_onnx - p_native\| = 0.0002 at row 3"):
        export_check(session, drifted, frame, features, 0.5)


def test_export_refuses_a_flipped_decision(trained: dict[str, Any]) -> None:
    session, frame, features, probabilities = _golden_session(trained)
    threshold = float(probabilities[5]) + 1e-5
    nudged = probabilities.copy()
    nudged[5] += 2e-5
    with pytest.raises(ExportRefused, match=r"1 decision\(s\) flipped"):
        export_check(session, nudged, frame, features, threshold)


def test_the_run_logged_bundle_report_and_native_pipeline(trained: dict[str, Any]) -> None:
    from churnops_trainer.registry import Settings, client

    mlclient = client(Settings.from_env())
    paths = {a.path for a in mlclient.list_artifacts(trained["run_id"])}
    assert {"bundle", "report", "native"} <= paths
    bundle = {a.path for a in mlclient.list_artifacts(trained["run_id"], "bundle")}
    assert bundle == {"bundle/bundle.json", "bundle/model.onnx"}
    run = mlclient.get_run(trained["run_id"])
    assert len(run.data.tags["data_fingerprint"]) == 64 and "git_commit" in run.data.tags
    assert run.data.metrics["test_roc_auc"] == pytest.approx(trained["metrics"]["test"]["roc_auc"])
    report = Path(trained["report_path"])
    assert report.is_file() and (report.parent / "roc.png").is_file() and (report.parent / "importance.png").is_file()


def test_bands_hold_their_top_shares_of_scores() -> None:
    from churnops_trainer.cli import _bands
    from churnops_trainer.errors import TrainerError
    from churnops_trainer.export import bands_from_scores

    scores = np.linspace(0, 1, 1001)
    bands = bands_from_scores(scores, 0.8, (("high", 0.1), ("medium", 0.3)))
    assert [b["name"] for b in bands] == ["high", "medium", "low"]
    assert bands[0]["min"] == pytest.approx(0.9) and bands[1]["min"] == pytest.approx(0.7)
    # An operating threshold below the lowest named band's share: that band reaches down to it, exactly.
    assert [b["min"] for b in bands_from_scores(scores, 0.4123456789)] == [pytest.approx(0.9), 0.4123456789, 0.0]
    assert _bands("high:0.05,medium:0.25") == (("high", 0.05), ("medium", 0.25))
    with pytest.raises(TrainerError, match="shares must grow"):
        _bands("high:0.3,medium:0.1")
