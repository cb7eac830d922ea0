"""Serving the champion: ``models:/NAME@champion`` as a pyfunc in a fresh process, and
``mlflow models serve --env-manager local`` answering ``/invocations`` on loopback."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from components.registry.publish import publish
from pipelines.mlflow_server import _mlflow_executable, free_port
from tests.support import publish_request

# One worker builds the module-scoped fixtures (a champion per method, a server) once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]
NAME = "serving-model"


def _wide_bundles(root: Path, q: int = 64):
    """A 64-feature table trained with Nyström on the ``mps`` engine at 64 qubits (past the
    dense statevector limit): the bundles tuple the publish path takes."""
    from sklearn.datasets import make_classification

    from components.data.preprocessing import fit_preprocessor, stratified_split
    from components.data.sources import load_table
    from components.steps.train_classical.step import train_classical
    from components.steps.train_quantum.step import run_quantum_step
    from tests.step_options import baseline_options, quantum_options

    x, y = make_classification(
        n_samples=240, n_features=q, n_informative=8, class_sep=2.0, random_state=5
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(q)]).assign(target=y)
    csv = root / "wide.csv"
    frame.to_csv(csv, index=False)
    _, source = load_table(str(csv))
    split = stratified_split(frame, "target", 0.25, 7)
    # Angles in [0, 0.03π): at 64 qubits the full-range fidelity kernel concentrates (every
    # pair near 0, test AUC 0.41 here); a small bandwidth keeps it informative (0.99).
    pre = fit_preprocessor(split, q, (0.0, 0.03 * math.pi), seed=7)
    options = quantum_options(seed=7, backend="mps", method="nystroem", landmarks=24)
    outcome = run_quantum_step(split, pre, root / "q", options)
    assert outcome.status == "ok", outcome.reason
    classical = train_classical(split, pre, root / "c", seed=7, **baseline_options())
    return split, source, outcome.bundle, classical, outcome.calibration


@pytest.fixture(scope="module", params=["fidelity", "nystroem", "projected", "mps-q64"])
def champion(request, bundles, prepared_small, mlflow_server, tmp_path_factory):
    """The champion of each quantum method (and of a 64-qubit Nyström model on the ``mps``
    engine), registered through the real publish path: its name and the predictions the
    trained model gives for six raw test rows."""
    from components.steps.train_quantum.step import run_quantum_step
    from tests.step_options import quantum_options

    split, source, quantum, classical, calibration = bundles
    method, name = request.param, f"{NAME}-{request.param}"
    if method == "mps-q64":
        split, source, quantum, classical, calibration = _wide_bundles(
            tmp_path_factory.mktemp("wide")
        )
        assert quantum.info.params["method"] == "nystroem"
    elif method != "fidelity":
        split_, pre = prepared_small
        outcome = run_quantum_step(
            split_,
            pre,
            tmp_path_factory.mktemp(method),
            quantum_options(seed=7, method=method, landmarks=64),
        )
        assert outcome.status == "ok" and outcome.method["method"] == method
        quantum = outcome.bundle
    result = publish(
        publish_request((split, source, quantum, classical, calibration), name=name),
        mlflow_server.uri,
    )
    assert result.decision.applied == "true", result.decision.reasons
    assert result.candidate_kind == "quantum"
    raw = split.test.drop(columns=["target"]).head(6)
    return name, raw, [int(v) for v in quantum.load_model().predict(raw)]


def _in_fresh_process(code: str, uri: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=cwd
    )


def test_champion_loads_in_a_fresh_process_and_checks_the_signature(
    champion, mlflow_server, tmp_path
):
    name, raw, expected = champion
    rows = tmp_path / "rows.json"
    raw.to_json(rows, orient="split")
    load = (
        "import json, mlflow, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/{name}@champion'); "
        f"x = pd.read_json({str(rows)!r}, orient='split'); "
    )
    ok = _in_fresh_process(
        load + "print(json.dumps([int(v) for v in m.predict(x)]))", mlflow_server.uri, tmp_path
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout.strip().splitlines()[-1]) == expected

    first, second = raw.columns[:2]
    missing = _in_fresh_process(
        load + f"m.predict(x.drop(columns=[{first!r}]))", mlflow_server.uri, tmp_path
    )
    assert missing.returncode != 0 and first in missing.stderr
    assert "missing inputs" in missing.stderr.lower()
    wrong_type = _in_fresh_process(
        load + f"x[{second!r}] = 'high'; m.predict(x)", mlflow_server.uri, tmp_path
    )
    assert wrong_type.returncode != 0 and second in wrong_type.stderr


def test_the_model_ships_only_the_code_it_serves_with(champion, mlflow_server):
    """A model's ``code/`` is the serving module and the quantum transformers with what they
    import (``SERVED_CODE``): no pipeline step, gate or training code; the fresh-process
    load above imports from it."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    from components.registry.serving import SERVED_CODE

    client = MlflowClient(mlflow_server.uri)
    version = client.get_model_version_by_alias(champion[0], "champion")
    model_id = version.model_id or version.source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location

    def files(uri: str) -> list[str]:
        out: list[str] = []
        for entry in mlflow.artifacts.list_artifacts(uri, tracking_uri=mlflow_server.uri):
            name = entry.path.rsplit("/", 1)[-1]
            out += files(f"{uri}/{name}") if entry.is_dir else [f"{uri}/{name}"]
        return out

    root = f"{location}/code/components"
    shipped = {f.removeprefix(root + "/") for f in files(root)}
    assert {"registry/serving.py", "quantum/transformers.py", "errors.py"} <= shipped
    outside = [f for f in shipped if not any(f == r or f.startswith(r + "/") for r in SERVED_CODE)]
    assert outside == []


def test_mlflow_models_serve_answers_invocations(champion, mlflow_server, tmp_path):
    name, raw, expected = champion
    port = free_port()
    # the scoring server is started as `uvicorn`: the environment's bin/ must be on PATH
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.uri,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
    }
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            *_mlflow_executable(),
            "models",
            "serve",
            "-m",
            f"models:/{name}@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(
                "mlflow models serve did not come up: "
                + (tmp_path / "serve.log").read_text()[-3000:]
            )

        def invoke(frame):
            body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split"))})
            req = urllib.request.Request(
                base + "/invocations",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())

        assert [int(v) for v in invoke(raw)["predictions"]] == expected
        dropped = raw.columns[-2]
        with pytest.raises(urllib.error.HTTPError) as e:
            invoke(raw.drop(columns=[dropped]))
        assert e.value.code == 400 and dropped in e.value.read().decode()
    finally:
        import contextlib
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
