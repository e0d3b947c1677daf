"""`predict --native` reads the native pipeline as data (skops), so a planted pickle never runs."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio

from churnops_trainer.cli import main
from churnops_trainer.errors import BundleError
from churnops_trainer.native import load_native
from churnops_trainer.registry import NATIVE_ARTIFACTS, NATIVE_FILE


class Planted:
    """Unpickling this object runs a command: what an attacker would put in an artifact store."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_or_an_untrusted_type_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    planted = tmp_path / "pipeline.skops"
    planted.write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(BundleError, match="is not a skops file"):
        load_native(planted)
    assert not marker.exists()
    sio.dump({"model": Planted(marker)}, planted)
    with pytest.raises(BundleError, match=r"types outside the trusted list: .*tests\.test_native\.Planted"):
        load_native(planted)
    assert not marker.exists()


def test_predict_native_refuses_a_pickle_planted_in_the_run_artifacts(
    trained: dict[str, Any], session_home: Path, synth_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (stored,) = session_home.glob(f"**/{trained['run_id']}/artifacts/{NATIVE_ARTIFACTS}/{NATIVE_FILE}")
    saved = tmp_path / "saved.skops"
    shutil.copyfile(stored, saved)
    marker = tmp_path / "ran"
    try:
        stored.write_bytes(pickle.dumps(Planted(marker)))
        args = ["predict", "--bundle", trained["bundle_path"], "--data", str(synth_csv), "--native"]
        assert main([*args, "--out", str(tmp_path / "p.csv")]) == 2
        assert "is not a skops file of the native pipeline" in capsys.readouterr().err
        assert not marker.exists()
    finally:
        shutil.copyfile(saved, stored)
