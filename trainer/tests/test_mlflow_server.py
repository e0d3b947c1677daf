"""Round trip against a real `mlflow server` on loopback: train → register → resolve (download) → promote."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SYNTH_TRAIN_FLAGS
from tests.test_cli import call, run_cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_round_trip_through_a_real_server(
    mlflow_server: str,
    tmp_path: Path,
    synth_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "CHURNOPS_HOME": str(tmp_path / "trainer-home")}
    trained = run_cli(
        "train", "--data", str(synth_csv), *SYNTH_TRAIN_FLAGS, "--model-name", "served", "--json", env=env
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = json.loads(trained.stdout)  # stdout holds the result alone, even though MLflow prints run URLs
    assert out["version"] == "1"
    assert not (tmp_path / "trainer-home" / "mlflow.db").exists()

    # Another machine: a fresh CHURNOPS_HOME has no cached bundle, so resolve must download it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "scorer-home"))
    code, info, _ = call(capsys, "resolve", "--alias", "challenger", "--model-name", "served", "--json")
    assert code == 0
    bundle = Path(info["bundle_path"])
    assert info["version"] == "1" and info["run_id"] == out["run_id"] and info["aliases"] == ["challenger"]
    assert bundle == (tmp_path / "scorer-home" / "bundles" / "served" / "v1").resolve()
    assert (bundle / "model.onnx").read_bytes() == (Path(out["bundle_path"]) / "model.onnx").read_bytes()
    assert call(capsys, "verify", str(bundle))[0] == 0

    shutil.rmtree(bundle)
    code, printed, _ = call(capsys, "resolve", "--version", "1", "--model-name", "served")
    assert code == 0 and printed.strip() == str(bundle)

    code, promoted, _ = call(capsys, "promote", "--model-name", "served", "--json")
    assert code == 0 and promoted["version"] == "1"
    listed = call(capsys, "models", "--model-name", "served", "--json")[1]
    assert listed[0]["aliases"] == ["challenger", "champion"]
    code, _, err = call(capsys, "resolve", "--alias", "champion", "--model-name", "nope")
    assert code == 2 and "error: registered model 'nope' has no alias 'champion'" in err

    predictions = tmp_path / "p.csv"
    code, _, _ = call(
        capsys, "predict", "--bundle", str(bundle), "--data", str(synth_csv), "--out", str(predictions), "--native"
    )
    assert code == 0 and predictions.read_text().startswith("row,id,p_onnx,p_native")
