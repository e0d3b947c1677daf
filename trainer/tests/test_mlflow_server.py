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
from tests.test_cli import run_cli

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


def test_round_trip_through_a_real_server(mlflow_server: str, tmp_path: Path, synth_csv: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "CHURNOPS_HOME": str(tmp_path / "trainer-home")}
    trained = run_cli(
        "train", "--data", str(synth_csv), *SYNTH_TRAIN_FLAGS, "--model-name", "served", "--json", env=env
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = json.loads(trained.stdout)
    assert out["version"] == "1"
    assert not (tmp_path / "trainer-home" / "mlflow.db").exists()

    # Another machine: a fresh CHURNOPS_HOME has no cached bundle, so resolve must download it.
    other = {**env, "CHURNOPS_HOME": str(tmp_path / "scorer-home")}
    resolved = run_cli("resolve", "--alias", "challenger", "--model-name", "served", "--json", env=other)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    info = json.loads(resolved.stdout)
    bundle = Path(info["bundle_path"])
    assert info["version"] == "1" and info["run_id"] == out["run_id"] and info["aliases"] == ["challenger"]
    assert bundle == (tmp_path / "scorer-home" / "bundles" / "served" / "v1").resolve()
    assert (bundle / "model.onnx").read_bytes() == (Path(out["bundle_path"]) / "model.onnx").read_bytes()
    assert run_cli("verify", str(bundle), env=other).returncode == 0

    shutil.rmtree(bundle)
    plain = run_cli("resolve", "--version", "1", "--model-name", "served", env=other)
    assert plain.returncode == 0 and plain.stdout.strip() == str(bundle)

    promoted = run_cli("promote", "--model-name", "served", "--json", env=other)
    assert promoted.returncode == 0 and json.loads(promoted.stdout)["version"] == "1"
    listed = json.loads(run_cli("models", "--model-name", "served", "--json", env=other).stdout)
    assert listed[0]["aliases"] == ["challenger", "champion"]
    missing = run_cli("resolve", "--alias", "champion", "--model-name", "nope", env=other)
    assert missing.returncode == 2 and "error: registered model 'nope' has no alias 'champion'" in missing.stderr

    native = run_cli(
        "predict",
        "--bundle",
        str(bundle),
        "--data",
        str(synth_csv),
        "--out",
        str(tmp_path / "p.csv"),
        "--native",
        env=other,
    )
    assert native.returncode == 0, native.stderr[-2000:]
