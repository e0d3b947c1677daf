"""The bundle contract in the trainer: what `verify` and `resolve` refuse, and what registration records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from churnops_trainer import bundle_contract, registry
from churnops_trainer.errors import BundleError


def _edited(trained: dict[str, Any], tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(trained["bundle_path"], copy)
    document = json.loads((copy / "bundle.json").read_text())
    edit(document)
    (copy / "bundle.json").write_text(json.dumps(document))
    return copy


def _one_golden_row(d: dict[str, Any]) -> None:
    d["golden"] = {"rows": d["golden"]["rows"][:1], "probabilities": d["golden"]["probabilities"][:1]}


def _extra_category(d: dict[str, Any]) -> None:
    next(f for f in d["schema"]["features"] if f["kind"] == "categorical")["categories"].append("fax")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_one_golden_row, "at least 200 rows"),
        (_extra_category, "not known to the graph: \\['fax'\\]"),
        (lambda d: d["onnx"].update(file="../../etc/passwd"), "must name a file inside the bundle folder"),
        (lambda d: d["onnx"].update(file="/dev/zero"), "must name a file inside the bundle folder"),
        (lambda d: d["thresholds"].update(operating=1.0), "must be in \\(0, 1\\)"),
        (lambda d: d["bands"].reverse(), "ordered from highest"),
        (lambda d: d["schema"]["features"].append(dict(d["schema"]["features"][0])), "listed twice"),
        (lambda d: d["onnx"].update(probability_output="label"), "no float output"),
    ],
)
def test_verify_refuses_a_malformed_bundle(
    trained: dict[str, Any], tmp_path: Path, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    with pytest.raises(BundleError, match=reason):
        bundle_contract.verify(_edited(trained, tmp_path, edit))


def test_registration_records_the_digest_and_resolve_checks_it(trained: dict[str, Any]) -> None:
    bundle = Path(trained["bundle_path"])
    digest = bundle_contract.bundle_digest(bundle)
    settings = registry.Settings.from_env()
    resolved = registry.resolve(settings, trained["model_name"], version=trained["version"])
    assert resolved["bundle_digest"] == digest
    with pytest.raises(BundleError, match="differs from the registered"):
        bundle_contract.verify(bundle, "0" * 64, None)
    assert (settings.home / registry.CACHE_FILE).is_file()
