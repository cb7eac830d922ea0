"""Shared fixtures: real servers on loopback (MLflow, S3 via moto's server mode), a SQLite
registry for fast registry tests, and the built-in dataset split once; and the markers, set
from each test's directory (see ``DIRECTORY_MARKERS``)."""

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
from tests.support import FAKE_S3_ENV, FAULTY_PLUGIN, SECRET_TOKEN

#: What a test needs decides its directory, and its directory decides its markers:
#: ``unit``: functions called directly (no server, no KFP run, no Aer training);
#: ``components``: KFP components' ``.python_func`` with real artifacts, and the compile test;
#: ``integration``: real servers on loopback, CLI subprocesses, Qiskit Aer training;
#: ``deploy``: the deployment surface (Kustomize, Dockerfiles, images, ``qubeflow submit``),
#: marked ``integration`` (kubectl, hadolint, make, buildah, a loopback KFP API);
#: ``e2e``: whole pipeline runs through kfp.local.
DIRECTORY_MARKERS = {
    "unit": ("unit",),
    "components": ("component",),
    "integration": ("integration",),
    "deploy": ("integration",),
    "e2e": ("e2e", "slow"),
}
TESTS_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by its directory; a test outside those directories is an error, so
    each new test is sorted by what it needs."""
    misplaced = []
    for item in items:
        try:
            directory = Path(item.path).resolve().relative_to(TESTS_ROOT).parts[0]
        except ValueError:  # collected from outside tests/ (e.g. a doctest elsewhere)
            continue
        names = DIRECTORY_MARKERS.get(directory)
        if names is None:
            misplaced.append(item.nodeid)
            continue
        for name in names:
            item.add_marker(name)
    if misplaced:
        raise pytest.UsageError(
            f"tests outside {', '.join(f'tests/{d}/' for d in DIRECTORY_MARKERS)}: "
            + ", ".join(misplaced[:5])
            + ("..." if len(misplaced) > 5 else "")
        )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflowServer]:
    """A real ``mlflow server`` process (SQLite store, proxied artifacts) for the session."""
    with LocalMlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture
def sqlite_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A throw-away SQLite tracking + registry store (no server; fast). Its artifacts go to
    ``./mlruns``, so the test runs in ``tmp_path`` rather than littering the checkout."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's server mode) for boto3 code paths."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [shutil.which("moto_server") or "moto_server"]
    port = free_port()
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a ceiling for a loaded machine, not a wait
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


@pytest.fixture(scope="session")
def prepared_tiny(breast_cancer):
    """60 rows, 3 qubits: small enough for shot-based backends (45*44/2 + 15*45 circuits)."""
    from sklearn.model_selection import train_test_split

    from components.data.preprocessing import fit_preprocessor, stratified_split

    frame, _ = train_test_split(
        breast_cancer, train_size=60, random_state=3, stratify=breast_cancer["target"]
    )
    split = stratified_split(frame.reset_index(drop=True), "target", 0.25, 3)
    pre = fit_preprocessor(split, 3, (0.0, math.pi * 0.1), seed=3)
    return split, pre


@pytest.fixture
def faulty_ibm(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register ``ibm-faulty:<fault>`` (the ibm: path with faults injected at the service
    boundary) here and in any subprocess (kfp.local tasks), and give the run a token that
    must never leak."""
    from components.quantum.backends import PLUGINS_ENV

    monkeypatch.setenv(PLUGINS_ENV, FAULTY_PLUGIN)
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET_TOKEN)
    return FAULTY_PLUGIN


@pytest.fixture(autouse=True)
def _no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their tracking store explicitly."""
    if "MLFLOW_TRACKING_URI" in os.environ:
        monkeypatch.delenv("MLFLOW_TRACKING_URI")


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, prepared_small):
    """(split, dataset source, quantum bundle, classical bundle, calibration snapshot) trained
    once on 4 qubits."""
    from components.data.sources import load_table
    from components.steps.train_classical.step import train_classical
    from components.steps.train_quantum.step import run_quantum_step
    from tests.step_options import baseline_options, quantum_options

    split, pre = prepared_small
    root = tmp_path_factory.mktemp("bundles")
    _, source = load_table("sklearn:breast_cancer")
    outcome = run_quantum_step(split, pre, root / "q", quantum_options(seed=7))
    return (
        split,
        source,
        outcome.bundle,
        train_classical(split, pre, root / "c", seed=7, **baseline_options()),
        outcome.calibration,
    )
