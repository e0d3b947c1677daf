"""Tables as they come: any column names, repeated rows, leaky columns, and the story bands and decisions tell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops_trainer.cli import main
from churnops_trainer.data import DatasetSpec, TargetSpec, prepare
from churnops_trainer.errors import DataError
from churnops_trainer.export import load_bundle, verify_bundle, write_bundle
from churnops_trainer.features import to_model_frame
from churnops_trainer.predict import score_frame
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.train import (
    TrainConfig,
    _recall_notes,
    build_bundle_parts,
    fit_and_evaluate,
    guard_leaks,
    split_data,
)
from tests.conftest import SYNTH_SPEC

#: Spaces (double too), punctuation, non-ASCII letters, a leading digit, names equal but for case, names that
#: collide once made into identifiers, and names of the graph's own outputs.
NASTY = (
    "Monthly  Usage",
    "Monthly__Usage",
    "monthly usage",
    "Plan",
    "plan",
    "2nd line?",
    "Größe (cm)",
    "état",
    "a.b/c-d",
    "label",
    "probabilities",
)


def nasty_frame(n: int = 700, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "Monthly  Usage": rng.gamma(2.0, 30.0, n).round(2),
            "Monthly__Usage": rng.integers(0, 50, n),
            "monthly usage": rng.normal(0, 1, n).round(3),
            "Plan": rng.choice(["basic", "plus", "pro"], n),
            "plan": rng.choice(["a", "b"], n),
            "2nd line?": rng.choice(["yes", "no"], n),
            "Größe (cm)": rng.normal(170, 10, n).round(1),
            "état": rng.choice(["actif", "suspendu", "résilié"], n),
            "a.b/c-d": rng.integers(0, 5, n),
            "label": rng.choice(["x", "y"], n),
            "probabilities": rng.normal(size=n).round(3),
        }
    )
    logit = 0.02 * frame["Monthly  Usage"] - 1.5 + (frame["état"] == "suspendu") + 0.5 * frame["monthly usage"]
    frame["Churn?"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    return frame


NASTY_SPEC = DatasetSpec(target=TargetSpec(column="Churn?", positive="Yes"))


def test_any_column_names_train_export_verify_and_score_under_their_own_names(tmp_path: Path) -> None:
    raw = nasty_frame()
    config = TrainConfig(data="memory", spec=NASTY_SPEC)
    outcome = fit_and_evaluate(prepare(raw, NASTY_SPEC), config)
    parts = build_bundle_parts(outcome, config, {})
    bundle = write_bundle(tmp_path / "bundle", parts, "nasty", "local", "run-nasty")
    verify_bundle(bundle)

    features = load_bundle(bundle)["schema"]["features"]
    assert sorted(f["name"] for f in features) == sorted(NASTY)
    inputs = [f["input_name"] for f in features]
    assert len(set(inputs)) == len(inputs)
    assert set(load_bundle(bundle)["reference"]["features"]) == set(NASTY)
    scores, _, _ = score_frame(bundle, raw)
    native = outcome.pipeline.predict_proba(to_model_frame(raw, outcome.features))[:, 1]
    assert np.max(np.abs(scores - native)) <= 1e-4


def with_duplicates(frame: pd.DataFrame, copies: int) -> pd.DataFrame:
    """The table plus exact copies of its first `copies` rows (new ids: the rows are the same customers' data)."""
    twins = frame.head(copies).copy()
    twins["customer_id"] = [f"twin-{i}" for i in range(copies)]
    return pd.concat([frame, twins], ignore_index=True)


def test_duplicate_rows_are_reported_and_never_straddle_the_test_split_or_a_fold(synth_frame: pd.DataFrame) -> None:
    raw = with_duplicates(synth_frame, 300)
    prepared = prepare(raw, SYNTH_SPEC)
    assert any("300 row(s) repeat another row exactly" in note for note in prepared.notes)
    split = split_data(prepared, TrainConfig(data="memory", spec=SYNTH_SPEC))
    groups = prepared.groups
    assert not set(groups[split.train_index]) & set(groups[split.test_index])
    assert len(split.train_index) + len(split.test_index) == prepared.n_rows
    train_groups = groups[split.train_index]
    assert len(split.folds) == 5
    for fit, held_out in split.folds:
        assert not set(train_groups[fit]) & set(train_groups[held_out])
        assert len(fit) + len(held_out) == len(train_groups)


def test_a_table_without_duplicates_splits_as_before(synth_frame: pd.DataFrame) -> None:
    from sklearn.model_selection import StratifiedKFold, train_test_split

    prepared = prepare(synth_frame, SYNTH_SPEC)
    split = split_data(prepared, TrainConfig(data="memory", spec=SYNTH_SPEC))
    _, test_idx = train_test_split(np.arange(prepared.n_rows), test_size=0.2, random_state=42, stratify=prepared.y)
    assert np.array_equal(split.test_index, test_idx)
    expected = StratifiedKFold(5, shuffle=True, random_state=42).split(split.train, split.y_train)
    for (fit, held_out), (fit_0, held_out_0) in zip(split.folds, expected, strict=True):
        assert np.array_equal(fit, fit_0) and np.array_equal(held_out, held_out_0)


def leaky(synth_frame: pd.DataFrame) -> pd.DataFrame:
    frame = synth_frame.copy()
    noise = np.random.default_rng(0).normal(0, 0.05, len(frame))
    frame["partner_churn_score"] = frame["churned"] + noise
    return frame


def test_a_column_that_alone_predicts_the_target_stops_training_unless_allowed(synth_frame: pd.DataFrame) -> None:
    prepared = prepare(leaky(synth_frame), SYNTH_SPEC)
    with pytest.raises(DataError, match=r"'partner_churn_score' \(ROC AUC 1\.000\).*--allow-leaky"):
        guard_leaks(prepared, allow=False)
    guard_leaks(prepared, allow=True)
    assert any("--allow-leaky" in note and "partner_churn_score" in note for note in prepared.notes)
    guard_leaks(prepare(synth_frame, SYNTH_SPEC), allow=False)  # honest features pass


def test_train_names_the_leaky_column_in_one_line_and_exits_2(
    synth_frame: pd.DataFrame, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "leaky.csv"
    leaky(synth_frame).to_csv(data, index=False)
    flags = ["--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob"]
    assert main(["train", "--data", str(data), *flags, "--json"]) == 2
    _, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 1 column(s) predict 'churned'") and "'partner_churn_score'" in last
    assert "Traceback" not in err


def test_a_test_recall_below_the_target_is_said_so() -> None:
    assert _recall_notes(0.81, 0.8) == []
    (note,) = _recall_notes(0.797, 0.8)
    assert note.startswith("test recall 0.797 is below the recall target 0.80")


def test_no_flagged_customer_is_in_the_lowest_band(trained: dict[str, Any], synth_frame: pd.DataFrame) -> None:
    bundle = Path(trained["bundle_path"])
    scores, _, document = score_frame(bundle, synth_frame)
    operating = document["thresholds"]["operating"]
    bands = document["bands"]
    band = [next(b["name"] for b in bands if p >= b["min"]) for p in scores]
    flagged = scores >= operating
    assert flagged.any()
    assert not any(b == bands[-1]["name"] for b, f in zip(band, flagged, strict=True) if f)
    assert bands[-2]["min"] <= operating


def test_synthetic_ids_differ_by_seed_and_take_a_prefix() -> None:
    a = generate(SynthConfig(rows=50, seed=1))["customer_id"]
    b = generate(SynthConfig(rows=50, seed=2))["customer_id"]
    assert not set(a) & set(b)
    assert list(generate(SynthConfig(rows=2, seed=1, id_prefix="shop-"))["customer_id"]) == [
        "shop-0000000",
        "shop-0000001",
    ]


def test_bands_and_their_cut_offs_are_in_the_report(trained: dict[str, Any]) -> None:
    page = Path(trained["report_path"]).read_text(encoding="utf-8")
    assert "<h2>Risk bands</h2>" in page
    for band in trained["bands"]:
        assert f"<b>{band['name']}</b>: probability ≥ {band['min']:.6g}" in page
    assert json.loads((Path(trained["report_path"]).parent / "metrics.json").read_text())["bands"] == trained["bands"]


def test_train_logs_human_lines_with_progress_and_json_lines_when_asked(synth_csv: Path, tmp_path: Path) -> None:
    from tests.test_cli import run_cli

    flags = ["--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob"]
    env = {"CHURNOPS_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": "", "CHURNOPS_LOG_FORMAT": "text"}
    human = run_cli("train", "--data", str(synth_csv), *flags, env=env)
    assert human.returncode == 0, human.stderr[-2000:]
    assert not [line for line in human.stderr.splitlines() if line.startswith("{")]
    assert "[1/9] load …" in human.stderr and "[9/9] tracking done in" in human.stderr
    assert human.stdout.strip().splitlines()[-1].endswith("To serve it: churnops promote --version 1")
    quiet = run_cli(
        "train",
        "--data",
        str(synth_csv),
        *flags,
        env={**env, "CHURNOPS_LOG_FORMAT": "json", "CHURNOPS_LOG_LEVEL": "warn"},
    )
    assert quiet.returncode == 0 and quiet.stderr.strip() == ""
    assert "version 2 is the challenger" in quiet.stdout
    bad = run_cli("train", "--data", str(synth_csv), *flags, env={**env, "CHURNOPS_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: CHURNOPS_LOG_LEVEL='loud'")


def test_evaluate_without_json_prints_a_table(trained: dict[str, Any], synth_csv: Path) -> None:
    from tests.test_cli import run_cli

    done = run_cli("evaluate", "--bundle", trained["bundle_path"], "--data", str(synth_csv))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("model fixture version") and lines[1].split() == ["metric", "value"]
    assert any(line.split()[0] == "roc_auc" for line in lines[2:])
