"""The command line as the TypeScript side and the Makefile use it: exit codes, stdout JSON, stderr lines."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.cli import main
from churnops_trainer.export import verify_bundle
from tests.conftest import SYNTH_TRAIN_FLAGS, TELCO

TEST_KEYS = {"roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnops_trainer", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        check=False,
    )


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() and "--json" in args else out), err


def test_user_errors_are_one_line_with_exit_code_2(home: Path, synth_csv: Path) -> None:
    result = run_cli("train", "--data", str(synth_csv), "--target", "left", "--positive", "1", "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: target column 'left' not found")
    missing = run_cli("train", "--data", str(home / "nope.csv"), "--target", "a", "--positive", "b")
    assert missing.returncode == 2 and "error: data file not found" in missing.stderr


def test_synth_writes_deterministic_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = call(
        capsys, "synth", "--rows", "300", "--seed", "9", "--out", str(tmp_path / "a.parquet"), "--json"
    )
    assert code == 0 and result["rows"] == 300 and "true_churn_prob" in result["columns"]
    for name in ("b.csv", "c.csv"):
        out = str(tmp_path / name)
        call(capsys, "synth", "--rows", "300", "--seed", "9", "--out", out, "--recipe", "original", "--json")
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    code, _, err = call(capsys, "synth", "--rows", "10", "--out", str(tmp_path / "x.txt"))
    assert code == 2 and "--out must end in .csv or .parquet" in err


@pytest.mark.slow
def test_train_on_telco_end_to_end(home: Path) -> None:
    result = run_cli(
        "train",
        "--data",
        str(TELCO),
        "--target",
        "Churn",
        "--positive",
        "Yes",
        "--id-col",
        "customerID",
        "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    for key in ("model_name", "version", "run_id", "bundle_path", "report_path", "threshold", "timings"):
        assert key in out
    assert out["version"] == "1" and out["model_name"] == "churn"
    assert set(out["metrics"]["test"]) >= TEST_KEYS and "roc_auc" in out["metrics"]["cv"]
    for baseline in ("logistic", "original_recipe"):
        assert set(out["baselines"][baseline]["test"]) >= TEST_KEYS
    assert out["timings"]["total_s"] > 0 and out["timings"]["original_recipe_s"] > 0
    assert any("'TotalCharges': 11 blank value(s)" in n for n in out["metrics"]["notes"])
    test = out["metrics"]["test"]
    assert test["roc_auc"] >= 0.84 and test["recall"] >= 0.75
    assert test["precision"] > out["baselines"]["original_recipe"]["test"]["precision_at_equal_recall"]
    assert Path(out["bundle_path"]) == home.resolve() / "bundles" / "churn" / "v1"
    verify_bundle(Path(out["bundle_path"]))
    assert Path(out["report_path"]).is_file()
    for line in result.stderr.strip().splitlines():
        json.loads(line)


@pytest.mark.slow
def test_a_never_seen_table_trains_with_only_target_positive_and_id(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    n = 900
    visits = rng.poisson(6, n)
    plan = rng.choice(["bronze", "silver", "gold"], n)
    age = rng.integers(18, 80, n)
    logit = 1.5 - 0.5 * visits + np.where(plan == "bronze", 1.5, 0.0) + 0.03 * (age - 40)
    table = pd.DataFrame(
        {
            "member_no": [f"M{i:05d}" for i in range(n)],
            "age": age,
            "visits_last_month": visits,
            "plan": plan,
            "joined": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i}" for i in range(n)],
            "cancelled": np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Y", "N"),
        }
    )
    path = tmp_path / "gym.parquet"
    table.to_parquet(path, index=False)
    code, out, _ = call(
        capsys,
        "train",
        "--data",
        str(path),
        "--target",
        "cancelled",
        "--positive",
        "Y",
        "--id-col",
        "member_no",
        "--model-name",
        "gym",
        "--json",
    )
    assert code == 0
    assert out["data"]["features"] == ["age", "visits_last_month", "plan"]
    assert "looks like an id" in out["data"]["excluded"]["joined"]
    assert out["metrics"]["test"]["roc_auc"] > 0.7
    verify_bundle(Path(out["bundle_path"]))


@pytest.mark.slow
def test_promote_rollback_resolve_models_and_predict(
    home: Path, synth_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--data", str(synth_csv), *SYNTH_TRAIN_FLAGS, "--json"]
    code, first, _ = call(capsys, *base)
    assert code == 0 and first["version"] == "1"
    code, _, err = call(capsys, "resolve", "--alias", "champion", "--json")
    assert code == 2 and "registered model 'churn' has no alias 'champion'" in err
    assert call(capsys, "promote", "--json")[1] == {
        "model_name": "churn",
        "version": "1",
        "previous_champion": None,
    }
    code, second, _ = call(capsys, *base, "--seed", "7")
    assert second["version"] == "2"
    versions = call(capsys, "models", "--json")[1]
    assert [v["version"] for v in versions] == ["2", "1"]
    assert versions[0]["aliases"] == ["challenger"] and versions[1]["aliases"] == ["champion"]
    assert set(versions[0]["metrics"]) == {"roc_auc", "recall", "precision", "accuracy"}
    assert versions[0]["threshold"] == pytest.approx(second["threshold"], abs=1e-6)
    assert call(capsys, "promote", "--json")[1]["previous_champion"] == "1"
    resolved = call(capsys, "resolve", "--alias", "champion", "--json")[1]
    assert resolved["version"] == "2" and resolved["bundle_path"] == second["bundle_path"]
    assert call(capsys, "rollback", "--json")[1] == {"model_name": "churn", "version": "1", "replaced": "2"}
    assert call(capsys, "resolve", "--alias", "champion", "--json")[1]["version"] == "1"
    code, _, err = call(capsys, "rollback")
    assert code == 2 and "no previous champion" in err
    assert call(capsys, "resolve", "--version", "9")[0] == 2

    out_csv = tmp_path / "pred.csv"
    code, result, _ = call(
        capsys,
        "predict",
        "--bundle",
        first["bundle_path"],
        "--data",
        str(synth_csv),
        "--out",
        str(out_csv),
        "--native",
        "--json",
    )
    assert code == 0 and result["rows"] == 1500
    with out_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0].keys() == {"row", "id", "p_onnx", "p_native"} and rows[0]["id"] == "S7-0000000"
    diff = max(abs(float(r["p_onnx"]) - float(r["p_native"])) for r in rows)
    assert diff <= 1e-4

    code, evaluated, _ = call(capsys, "evaluate", "--bundle", first["bundle_path"], "--data", str(synth_csv), "--json")
    assert code == 0 and evaluated["rows"] == 1500 and set(evaluated["metrics"]) >= TEST_KEYS
    code, verified, _ = call(capsys, "verify", first["bundle_path"], "--json")
    assert code == 0 and verified["ok"] and verified["golden_rows"] >= 200


@pytest.mark.slow
def test_a_failed_export_leaves_no_registered_version(
    home: Path, synth_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from churnops_trainer import train as train_module
    from churnops_trainer.errors import BundleError, RegistryError
    from churnops_trainer.registry import Settings, client, list_versions
    from tests.conftest import SYNTH_SPEC

    def broken(*_args: object, **_kwargs: object) -> None:
        raise BundleError("simulated failure while writing the bundle")

    monkeypatch.setattr(train_module, "write_bundle", broken)
    with pytest.raises(BundleError, match="simulated"):
        train_module.train(train_module.TrainConfig(data=str(synth_csv), spec=SYNTH_SPEC, model_name="broken"))
    with pytest.raises(RegistryError, match="has no versions"):
        list_versions(Settings.from_env(), "broken")
    runs = client(Settings.from_env()).search_runs(
        [e.experiment_id for e in client(Settings.from_env()).search_experiments()]
    )
    assert [r.info.status for r in runs] == ["FAILED"]
