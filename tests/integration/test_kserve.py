"""Serving the champion the way KServe does: the registered champion's artifacts, copied from
its storage URI (what KServe's storage initializer does), served by MLServer's MLflow runtime
(mlserver 1.7.1 + mlserver-mlflow 1.7.1, in their own venv, ``make serving-venv``) with the
environment of the manifests' ServingRuntime, and called over the V2 protocol on loopback.
Also: the pyfunc's ``output`` param in process, and ``champion.env`` following the alias into
the rendered InferenceService."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from components.errors import RegistryError
from components.registry import kserve, serving
from components.registry.publish import publish
from pipelines.mlflow_server import free_port
from tests.support import publish_request

# One worker builds the module-scoped fixtures (a champion per method, a server) once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kserve")]
ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
NAME = "kserve-model"
ISVC = "qubeflow-champion"
#: ``make test`` sets this to the venv ``make serving-venv`` built (default ``.venv/serving``).
SERVING_VENV_ENV = "QUBEFLOW_SERVING_VENV"


def _serving_venv() -> Path:
    return Path(os.environ.get(SERVING_VENV_ENV) or ROOT / ".venv" / "serving")


def _clean_env(venv: Path) -> dict[str, str]:
    """The server's environment: nothing of this project on the path (the model must bring its
    own code), no tracking server, the serving venv's bin/ first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV")
    }
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def serving_venv() -> Path:
    venv = _serving_venv()
    python = venv / "bin" / "python"
    ok = python.is_file() and (
        subprocess.run(
            [str(python), "-c", "import mlserver, mlserver_mlflow"],
            capture_output=True,
            env=_clean_env(venv),
            timeout=120,
        ).returncode
        == 0
    )
    if not ok:
        reason = (
            f"no MLServer venv at {venv} (mlserver + mlserver-mlflow): `make serving-venv` "
            f"builds it (`make test` does first), or set ${SERVING_VENV_ENV}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI builds it through `make test`: never skip there
        pytest.skip(reason)
    return venv


def _nystroem_bundle(prepared_small, root: Path):
    from components.steps.train_quantum.step import run_quantum_step
    from tests.step_options import quantum_options

    split, pre = prepared_small
    outcome = run_quantum_step(split, pre, root, quantum_options(seed=7, method="nystroem"))
    assert outcome.status == "ok", outcome.reason
    return outcome.bundle


@pytest.fixture(scope="module", params=["fidelity", "nystroem"])
def champion(request, bundles, prepared_small, mlflow_server, tmp_path_factory):
    """A champion registered through the real publish path (fidelity: an SVC, probabilities by
    Platt scaling; nystroem: a logistic head's own ``predict_proba``), its artifacts copied
    from the champion's storage URI into a fresh "/mnt/models", and what the trained model
    itself predicts for six raw test rows."""
    from mlflow import MlflowClient

    split, source, quantum, classical, calibration = bundles
    if request.param == "nystroem":
        quantum = _nystroem_bundle(prepared_small, tmp_path_factory.mktemp("nystroem"))
    name = f"{NAME}-{request.param}"
    result = publish(
        publish_request((split, source, quantum, classical, calibration), name=name),
        mlflow_server.uri,
    )
    assert result.decision.applied == "true" and result.candidate_kind == "quantum"
    client = MlflowClient(mlflow_server.uri, registry_uri=mlflow_server.uri)
    served = kserve.served_champion(
        client, name, artifacts_destination=str(mlflow_server.state_dir / "mlartifacts")
    )
    assert served.version == result.version
    mnt = tmp_path_factory.mktemp("mnt") / "models"
    shutil.copytree(served.storage_uri, mnt)  # KServe's storage initializer, for a local store
    raw = split.test.drop(columns=["target"]).head(6)
    model = quantum.load_model()
    return {
        "name": name,
        "method": request.param,
        "raw": raw,
        "labels": [int(v) for v in model.predict(raw)],
        "model": model,
        "model_dir": mnt,
        "served": served,
    }


# -- the pyfunc's output param, in process ---------------------------------------------------


def test_pyfunc_answers_labels_by_default_and_probabilities_when_asked(champion):
    import mlflow

    m = mlflow.pyfunc.load_model(str(champion["model_dir"]))
    raw, labels = champion["raw"], champion["labels"]
    assert [int(v) for v in m.predict(raw)] == labels  # unchanged default
    assert m.metadata.get_params_schema().to_dict() == [
        {"name": "output", "type": "string", "default": "label", "shape": None}
    ]
    meta = m.metadata.metadata[serving.METADATA_KEY]
    assert meta["classes"] == [0, 1]
    method = meta["probabilities"]["method"]
    assert method == ("platt" if champion["method"] == "fidelity" else "predict_proba")

    proba = m.predict(raw, params={"output": "proba"})
    assert list(proba.columns) == ["proba_0", "proba_1"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    everything = m.predict(raw, params={"output": "all"})
    assert list(everything.columns) == ["label", "proba_0", "proba_1"]
    assert everything["label"].tolist() == labels
    np.testing.assert_allclose(everything[["proba_0", "proba_1"]], proba)
    model = champion["model"]
    if method == "predict_proba":
        np.testing.assert_allclose(proba, model.predict_proba(raw))
    else:  # Platt's sigmoid is increasing in the decision value: the ranking is the model's
        order = np.argsort(model.decision_function(raw))
        assert np.all(np.diff(proba["proba_1"].to_numpy()[order]) >= 0)

    with pytest.raises(mlflow.exceptions.MlflowException, match="not one of label, proba, all"):
        m.predict(raw, params={"output": "scores"})
    with pytest.raises(mlflow.exceptions.MlflowException, match="mean radius"):
        m.predict(raw.drop(columns=["mean radius"]), params={"output": "all"})


def test_loader_refuses_anything_but_skops(champion, tmp_path):
    import mlflow

    copy = tmp_path / "model"
    shutil.copytree(champion["model_dir"], copy)
    mlmodel = copy / "MLmodel"
    conf = yaml.safe_load(mlmodel.read_text())
    assert conf["flavors"]["python_function"]["loader_module"] == serving.__name__
    conf["flavors"]["sklearn"]["serialization_format"] = "cloudpickle"
    mlmodel.write_text(yaml.safe_dump(conf))
    with pytest.raises(mlflow.exceptions.MlflowException, match="only skops is loaded"):
        mlflow.pyfunc.load_model(str(copy))


# -- MLServer (KServe's runtime for MLflow models) --------------------------------------------


def _serving_runtime() -> dict:
    docs = yaml.safe_load_all((MANIFESTS / "base" / "serving.yaml").read_text())
    [runtime] = [d for d in docs if d and d["kind"] == "ServingRuntime"]
    return runtime


def _v2_request(frame: pd.DataFrame, parameters: dict | None = None) -> dict:
    """A V2 (Open Inference Protocol) request built from raw rows: one input per column."""
    datatypes = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32"}
    body: dict = {
        "inputs": [
            {
                "name": column,
                "datatype": datatypes[str(frame[column].dtype)],
                "shape": [len(frame), 1],
                "data": frame[column].tolist(),
            }
            for column in frame.columns
        ]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def _outputs(response: dict) -> dict[str, list]:
    return {o["name"]: o["data"] for o in response["outputs"]}


@contextlib.contextmanager
def _mlserver(venv: Path, model_dir: Path, log_path: Path):
    """``mlserver start`` as KServe's predictor container runs it (the ServingRuntime's command
    and environment), on free loopback ports, in its own process group; stopped whole."""
    [container] = _serving_runtime()["spec"]["containers"]
    ports = {"MLSERVER_HTTP_PORT": free_port(), "MLSERVER_GRPC_PORT": free_port()}
    ports["MLSERVER_METRICS_PORT"] = free_port()
    env = _clean_env(venv)
    for item in container["env"]:
        value = item["value"].replace("{{.Name}}", ISVC).replace("/mnt/models", str(model_dir))
        env[item["name"]] = str(ports.get(item["name"], value))
    env["MLSERVER_HOST"] = "127.0.0.1"
    command = [c.replace("/mnt/models", str(model_dir)) for c in container["command"]]
    assert command[0] == "mlserver"
    command[0] = str(venv / "bin" / "mlserver")
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=log_path.parent,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{ports['MLSERVER_HTTP_PORT']}"
    try:
        deadline = time.monotonic() + 240  # a ceiling for a loaded machine, not a wait
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"{base}/v2/models/{ISVC}/ready", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("MLServer did not get the model ready: " + log_path.read_text()[-4000:])
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
        with contextlib.suppress(ProcessLookupError):  # workers left in the group
            os.killpg(proc.pid, signal.SIGKILL)


def _post(url: str, body: dict) -> tuple[int, dict | str]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_serving_venv_is_the_models_environment_without_the_project(champion, serving_venv):
    """Every requirement the model declares is installed in the MLServer venv at that version,
    and the project is not importable there: what the server runs comes from the model."""
    wanted = dict(
        line.split("==", 1)
        for line in (champion["model_dir"] / "requirements.txt").read_text().split()
    )
    assert {"mlflow", "scikit-learn", "skops", "tenacity"} <= set(wanted)
    probe = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    found = subprocess.run(
        [str(serving_venv / "bin" / "python"), "-c", probe, *wanted],
        capture_output=True,
        text=True,
        env=_clean_env(serving_venv),
        cwd=champion["model_dir"].parent,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert json.loads(found.stdout) == wanted
    alone = subprocess.run(
        [str(serving_venv / "bin" / "python"), "-c", "import components"],
        capture_output=True,
        text=True,
        env=_clean_env(serving_venv),
        cwd=champion["model_dir"],
        timeout=120,
    )
    assert alone.returncode != 0 and "No module named 'components'" in alone.stderr


def test_mlserver_serves_the_champion_over_the_v2_protocol(champion, serving_venv, tmp_path):
    import mlflow

    raw, labels = champion["raw"], champion["labels"]
    expected_proba = mlflow.pyfunc.load_model(str(champion["model_dir"])).predict(
        raw, params={"output": "proba"}
    )
    with _mlserver(serving_venv, champion["model_dir"], tmp_path / "mlserver.log") as base:
        with urllib.request.urlopen(f"{base}/v2/models/{ISVC}", timeout=30) as resp:
            metadata = json.loads(resp.read())
        assert [i["name"] for i in metadata["inputs"]] == list(raw.columns)  # the signature

        status, answer = _post(f"{base}/v2/models/{ISVC}/infer", _v2_request(raw))
        assert status == 200, answer
        [labels_out] = _outputs(answer).values()
        assert labels_out == labels

        status, answer = _post(
            f"{base}/v2/models/{ISVC}/infer", _v2_request(raw, {"output": "all"})
        )
        assert status == 200, answer
        out = _outputs(answer)
        assert list(out) == ["label", "proba_0", "proba_1"]  # class names in the output names
        assert out["label"] == labels
        got = np.column_stack([out["proba_0"], out["proba_1"]])
        np.testing.assert_allclose(got, expected_proba.to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(got.sum(axis=1), 1.0)

        status, answer = _post(
            f"{base}/v2/models/{ISVC}/infer", _v2_request(raw, {"output": "proba"})
        )
        assert status == 200 and list(_outputs(answer)) == ["proba_0", "proba_1"]

        dropped = raw.columns[3]
        status, answer = _post(
            f"{base}/v2/models/{ISVC}/infer", _v2_request(raw.drop(columns=[dropped]))
        )
        assert status >= 400 and dropped in str(answer)
        status, answer = _post(
            f"{base}/v2/models/{ISVC}/infer", _v2_request(raw, {"output": "scores"})
        )
        assert status >= 400 and "not one of label, proba, all" in str(answer)


# -- champion.env: the InferenceService follows the alias through Git -------------------------


def test_storage_uri_maps_proxied_artifacts_onto_the_store():
    dest = "s3://mlflow-artifacts"
    assert (
        kserve.storage_uri("mlflow-artifacts:/3/models/m-1/artifacts", dest)
        == "s3://mlflow-artifacts/3/models/m-1/artifacts"
    )
    assert kserve.storage_uri("s3://b/p/artifacts") == "s3://b/p/artifacts"
    with pytest.raises(RegistryError, match="artifacts-destination"):
        kserve.storage_uri("mlflow-artifacts:/3/models/m-1/artifacts")
    with pytest.raises(RegistryError, match="cannot download"):
        kserve.storage_uri("dbfs:/models/m-1")


def _render(root: Path, overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(root / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("champion", ["fidelity"], indirect=True)  # one is enough here
def test_champion_env_follows_the_alias_into_the_inferenceservice(
    champion, mlflow_server, tmp_path
):
    """The gate moved @champion: write_champion_env rewrites the overlay's champion.env (and
    leaves it alone when it already names the champion); the rendered InferenceService serves
    exactly that version's artifacts."""
    from mlflow import MlflowClient

    name, served = champion["name"], champion["served"]
    client = MlflowClient(mlflow_server.uri, registry_uri=mlflow_server.uri)
    dest = str(mlflow_server.state_dir / "mlartifacts")
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    env_file = copy / "overlays" / "prod" / "champion.env"

    written = kserve.write_champion_env(env_file, client, name, artifacts_destination=dest)
    assert written == served
    assert kserve.write_champion_env(env_file, client, name, artifacts_destination=dest) is None
    [isvc] = [o for o in _render(copy, "prod") if o["kind"] == "InferenceService"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == served.storage_uri
    assert isvc["metadata"]["annotations"]["qubeflow.io/model-version"] == served.version

    # a second version takes the alias (as the gate does): the file and the service follow
    mv = client.get_model_version(name, served.version)
    second = client.create_model_version(
        name, source=mv.source, run_id=mv.run_id, model_id=served.model_id
    )
    client.set_registered_model_alias(name, "champion", second.version)
    moved = kserve.write_champion_env(env_file, client, name, artifacts_destination=dest)
    assert moved is not None and moved.version == str(second.version)
    assert kserve.read_champion_env(env_file)["model_version"] == str(second.version)
    [isvc] = [o for o in _render(copy, "prod") if o["kind"] == "InferenceService"]
    assert isvc["metadata"]["annotations"]["qubeflow.io/model-version"] == str(second.version)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == moved.storage_uri
    client.set_registered_model_alias(name, "champion", served.version)  # leave it as found
