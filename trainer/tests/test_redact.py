"""Secrets in URLs never reach a message, an MLflow parameter or the report (docs/security.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnops_trainer.data import DatasetSpec, TargetSpec
from churnops_trainer.redact import redact_url
from churnops_trainer.train import TrainConfig, _describe_source

CASES = json.loads((Path(__file__).parents[2] / "test" / "fixtures" / "redaction-cases.json").read_text())["cases"]


@pytest.mark.parametrize(("url", "shown"), CASES)
def test_redacts_the_shared_cases_like_the_typescript_twin(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_mlflow_data_parameter_carries_no_password() -> None:
    url = "postgresql://churn:p@ss@db.example/crm?sslpassword=k3y"
    config = TrainConfig(
        data=url, spec=DatasetSpec(target=TargetSpec(column="left", positive="Yes")), table="customers"
    )
    described = _describe_source(config)
    assert "p@ss" not in described and "ss@" not in described and "k3y" not in described
    assert described == "postgresql://churn:***@db.example/crm?sslpassword=*** (table customers)"
