"""Shared fixtures: a private CHURNOPS_HOME per test session, small synthetic tables, one trained bundle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from churnops_trainer.data import DatasetSpec, TargetSpec
from churnops_trainer.synthetic import SynthConfig, generate

REPO = Path(__file__).resolve().parents[2]
TELCO = REPO.parent / "shared" / "data" / "telco-customer-churn.csv"
#: `train` flags for a table written by `synth` (what the Makefile's demo passes), minus --data.
SYNTH_TRAIN_FLAGS = ("--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob")
SYNTH_SPEC = DatasetSpec(
    target=TargetSpec(column="churned", positive="1"), id_column="customer_id", drop=["true_churn_prob"]
)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """CHURNOPS_HOME for the whole session, with the default local MLflow store (no server)."""
    home = tmp_path_factory.mktemp("churnops-home")
    saved = {k: os.environ.get(k) for k in ("CHURNOPS_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["CHURNOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CHURNOPS_HOME for one test."""
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def synth_frame() -> pd.DataFrame:
    return generate(SynthConfig(rows=1500, seed=7, recipe="churnops"))


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory: pytest.TempPathFactory, synth_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "synth.csv"
    synth_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(session_home: Path, synth_csv: Path) -> dict[str, Any]:
    """One model trained, exported and registered through the library (default local MLflow store)."""
    from churnops_trainer.train import TrainConfig, train

    # Labels (bundle.json explanations.features[].label/labels) on two features no text assertion names.
    labels = {
        "num_support_tickets": {"en": "Support tickets", "ja": "問い合わせ件数"},
        "monthly_charges": "Monthly charges",
    }
    spec = SYNTH_SPEC.model_copy(update={"monotone": {"num_support_tickets": 1}, "labels": labels})
    return train(TrainConfig(data=str(synth_csv), spec=spec, model_name="fixture"))
