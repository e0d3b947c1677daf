"""Uplift (issue 19): the learners recover a known effect, too little data is refused, the metrics mean what they
say, and the uplift bundle is verified like the churn bundle (sha256, golden vectors, registered digest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops_trainer import bundle_contract
from churnops_trainer.cli import main
from churnops_trainer.errors import BundleError, DataError
from churnops_trainer.synthetic import SynthConfig, generate
from churnops_trainer.uplift import metrics
from churnops_trainer.uplift.bundle import build_bundle, score_table, verify_uplift_bundle, write_uplift_bundle
from churnops_trainer.uplift.data import prepare
from churnops_trainer.uplift.learners import LEARNERS, fit_learner
from churnops_trainer.uplift.synthetic import NOT_FEATURES, EffectConfig, add_effects, draw_outcomes


def campaign_export(rows: int, seed: int, effects: EffectConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A randomised campaign on synthetic customers with known effects: (export rows, the truth per row)."""
    truth = add_effects(generate(SynthConfig(rows=rows, seed=seed)), effects or EffectConfig(dependence=2.0))
    # A stream of its own: generate() draws the features from default_rng(seed), and reusing it here would assign
    # treatment by the very uniforms that chose each customer's contract (a confounded "experiment").
    rng = np.random.default_rng(seed + 10_000)
    treated = rng.random(rows) < 0.5
    churned = draw_outcomes(truth, treated, rng)
    export = truth.drop(columns=list(NOT_FEATURES)).copy()
    export["__customer_id"] = truth["customer_id"]
    export["__campaign"] = "c1"
    export["__arm"] = np.where(treated, "treatment", "control")
    export["__delivery"] = np.where(treated, "delivered", "none")
    export["__churned"] = churned
    export["__risk"] = truth["true_churn_prob"]
    return export, truth


@pytest.fixture(scope="module")
def known() -> tuple[pd.DataFrame, pd.DataFrame]:
    return campaign_export(8000, 11)


@pytest.mark.parametrize("learner", LEARNERS)
def test_learner_recovers_the_direction_of_a_known_effect(
    known: tuple[pd.DataFrame, pd.DataFrame], learner: str
) -> None:
    export, _ = known
    data = prepare(export)
    model = fit_learner(learner, data.frame, data.treated, data.churned, data.features, seed=3)  # type: ignore[arg-type]
    fresh, fresh_truth = campaign_export(4000, 12)
    predicted = model.predict(fresh.drop(columns=[c for c in fresh.columns if c.startswith("__")]))
    segment = fresh_truth["segment"].to_numpy()
    # Persuadables are predicted to gain from the offer, sleeping dogs to lose; the ranking follows the truth.
    assert predicted[segment == "persuadable"].mean() > 0.02
    assert predicted[segment == "sleeping_dog"].mean() < predicted[segment == "persuadable"].mean() - 0.05
    assert np.corrcoef(predicted, fresh_truth["true_effect"])[0, 1] > 0.3


def test_too_little_data_is_refused_with_each_arms_counts(known: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    export, _ = known
    small = export.iloc[:300]
    with pytest.raises(DataError) as err:
        prepare(small)
    message = str(err.value)
    assert message.startswith("too little data to learn an uplift model")
    treated = int((small["__arm"] == "treatment").sum())
    assert f"the treatment arm has {treated} rows" in message
    assert "needs at least 200 rows, 20 churners and 20 stayers" in message


def test_a_bad_arm_or_outcome_names_the_row(known: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    export, _ = known
    bad = export.copy()
    bad.loc[5, "__arm"] = "treated"
    with pytest.raises(DataError, match=r"row 5: __arm is 'treated'; expected treatment or control"):
        prepare(bad)
    bad = export.copy()
    bad["__churned"] = bad["__churned"].astype(object)
    bad.loc[7, "__churned"] = "maybe"
    with pytest.raises(DataError, match=r"row 7: __churned is 'maybe'; expected 0 or 1"):
        prepare(bad)


def test_qini_is_zero_for_no_information_and_positive_for_the_truth() -> None:
    # Hand-checked: 4 members, the top two a treated stayer and a control churner.
    treated = np.array([True, False, True, False])
    churned = np.array([0, 1, 1, 0])
    x, q = metrics.qini_curve(np.array([4.0, 3.0, 2.0, 1.0]), treated, churned)
    assert x.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    # k=2: 1 control churner × 1 treated / 1 control − 0 treated churners = 1 prevented, per member 0.25;
    # k=3: 1 × 2 / 1 − 1 = 1; k=4: 1 × 2 / 2 − 1 = 0 (the same churn rate in both arms overall).
    assert q.tolist() == [0.0, 0.0, 0.25, 0.25, 0.0]
    export, truth = campaign_export(6000, 21)
    t = (export["__arm"] == "treatment").to_numpy()
    y = export["__churned"].to_numpy()
    oracle = metrics.qini_coefficient(truth["true_effect"].to_numpy(), t, y)
    shuffled = [metrics.qini_coefficient(np.random.default_rng(s).random(len(y)), t, y, seed=s) for s in range(20)]
    assert oracle > 0.005
    assert abs(float(np.mean(shuffled))) < oracle / 4


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, known: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    export, _ = known
    data = prepare(export.iloc[:3000])
    model = fit_learner("t_learner", data.frame, data.treated, data.churned, data.features, seed=1)
    graph, document = build_bundle(model, data.frame, data.integer, 1, {})
    return write_uplift_bundle(tmp_path_factory.mktemp("uplift") / "b", graph, document, "churn-uplift", "1", None)


def test_the_bundle_reproduces_its_golden_vectors_and_the_native_learner(bundle_dir: Path) -> None:
    document = json.loads((bundle_dir / "bundle.json").read_text())
    assert document["kind"] == "uplift" and document["onnx"]["uplift_output"] == "uplift"
    assert len(document["golden"]["rows"]) >= 200
    assert document["export_check"]["max_abs_diff_vs_native"] <= 1e-4
    assert verify_uplift_bundle(bundle_dir)["max_abs_diff"] <= 1e-6
    # Every consumer's check (bundle_contract.verify, used by resolve) takes uplift bundles too.
    assert bundle_contract.verify(bundle_dir).golden_rows == len(document["golden"]["rows"])


def test_a_tampered_uplift_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    import shutil

    golden = tmp_path / "golden"
    shutil.copytree(bundle_dir, golden)
    document = json.loads((golden / "bundle.json").read_text())
    document["golden"]["uplift"][3] += 0.01
    (golden / "bundle.json").write_text(json.dumps(document))
    with pytest.raises(BundleError, match="golden uplift values differ"):
        verify_uplift_bundle(golden)
    with pytest.raises(BundleError, match="golden uplift values differ"):
        score_table(golden, pd.DataFrame({"tenure_months": [3]}))
    graph = tmp_path / "graph"
    shutil.copytree(bundle_dir, graph)
    with (graph / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"sha256 of model\.onnx"):
        bundle_contract.verify(graph)
    with pytest.raises(BundleError, match="differs from the registered"):
        verify_uplift_bundle(bundle_dir, digest="0" * 64)


def test_uplift_train_registers_and_gates_on_held_out_qini(
    home: Path, known: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, _ = known
    data = tmp_path / "uplift.parquet"
    export.iloc[:4000].to_parquet(data)
    args = ["uplift-train", "--data", str(data), "--campaigns", "c1", "--bootstrap", "40", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["version"] == "1" and first["gate"]["promoted"] is True
    assert set(first["rankings"]) == {"uplift", "risk", "random"}
    low, high = first["rankings"]["uplift"]["qini_ci95"]
    assert low <= first["rankings"]["uplift"]["qini"] <= high
    assert len(first["deciles"]) == 10
    # The same data and seed give the same held-out Qini: not better, so v1 stays champion.
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["version"] == "2" and second["gate"]["promoted"] is False
    assert "does not beat champion v1" in second["gate"]["reason"]
    # Scoring through the registry resolves the champion and verifies it before scoring.
    table = tmp_path / "customers.csv"
    raw = generate(SynthConfig(rows=50, seed=99))
    raw.to_csv(table, index=False)
    out = tmp_path / "scores.csv"
    assert main(["uplift-score", "--model", "champion", "--data", str(table), "--out", str(out), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["version"] == "1" and scored["rows"] == 50
    assert list(pd.read_csv(out).columns) == ["customer_id", "uplift"]


def test_uplift_train_refuses_too_little_data_with_exit_2(
    home: Path, known: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, _ = known
    data = tmp_path / "few.csv"
    export.iloc[:250].to_csv(data, index=False)
    assert main(["uplift-train", "--data", str(data), "--json"]) == 2
    assert "error: too little data to learn an uplift model" in capsys.readouterr().err


def test_synth_writes_each_rows_true_effect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.parquet"
    assert (
        main(
            [
                "synth",
                "--rows",
                "2000",
                "--out",
                str(out),
                "--uplift",
                "heterogeneous",
                "--sleeping-dog",
                "0.5",
                "--json",
            ]
        )
        == 0
    )
    frame = pd.read_parquet(out)
    assert {"segment", "true_churn_prob_treated", "true_effect"} <= set(frame.columns)
    np.testing.assert_allclose(frame["true_effect"], frame["true_churn_prob"] - frame["true_churn_prob_treated"])
    assert (frame.loc[frame["segment"] == "sleeping_dog", "true_effect"] < 0).all()
    assert (frame.loc[frame["segment"].isin(["sure_thing", "lost_cause"]), "true_effect"] == 0).all()
    assert (frame.loc[frame["segment"] == "persuadable", "true_effect"] > 0).all()
    flat = tmp_path / "h.csv"
    assert main(["synth", "--rows", "500", "--out", str(flat), "--uplift", "homogeneous", "--json"]) == 0
    effect = pd.read_csv(flat)["true_effect"]
    assert effect.max() == pytest.approx(0.05)
