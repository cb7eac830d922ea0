"""Shared fixtures: real servers on loopback (MLflow, S3 via moto's server mode), a SQLite
registry for fast registry tests, and the built-in dataset split once."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.mlflow_server import LocalMlflowServer, free_port

# Credentials for the loopback S3 server only (moto accepts any); never real ones.
FAKE_S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflowServer]:
    """A real ``mlflow server`` process (SQLite store, proxied artifacts) for the session."""
    with LocalMlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture
def sqlite_tracking_uri(tmp_path: Path) -> str:
    """A throw-away SQLite tracking + registry store (no server; fast)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's server mode) for boto3 code paths."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [shutil.which("moto_server") or "moto_server"]
    port = free_port()
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the loopback S3 server through the standard environment variables."""
    for key, value in FAKE_S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    return s3_endpoint


@pytest.fixture
def s3_bucket(s3_env: str, request: pytest.FixtureRequest) -> str:
    import boto3

    name = "qubeflow-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    client = boto3.client("s3", endpoint_url=s3_env)
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def breast_cancer():
    from components.data.sources import load_table

    frame, _ = load_table("sklearn:breast_cancer")
    return frame


@pytest.fixture(scope="session")
def prepared_small(breast_cancer):
    """A split + fitted preprocessor on a 4-qubit map (fast enough for many tests)."""
    from components.data.preprocessing import fit_preprocessor, stratified_split

    split = stratified_split(breast_cancer, "target", 0.25, 7)
    pre = fit_preprocessor(split, 4, (0.0, math.pi * 0.1), seed=7)
    return split, pre


@pytest.fixture(autouse=True)
def _no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their tracking store explicitly."""
    if "MLFLOW_TRACKING_URI" in os.environ:
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
