"""``qubeflow submit`` up to the network edge: a loopback server speaking the KFP REST
endpoints receives the pipeline spec and parameters, and never a secret value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.errors import ConfigError
from pipelines.config import PipelineConfig
from pipelines.submit import normalise_cron, prepare, submit
from tests.fakes.kfp_api import FakeKfpApi

SECRETS = {
    "QISKIT_IBM_TOKEN": "tok-ibm-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-0123456789",
    "KFP_TOKEN": "kfp-bearer-token-0123456789",
}
TRACKING = "http://qubeflow-mlflow:5000"  # the in-cluster MLflow service of the manifests
CLUSTER = PipelineConfig(mlflow_tracking_uri=TRACKING)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "submit", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def test_submit_sends_the_compiled_spec_and_parameters_and_no_secret(tmp_path):
    with FakeKfpApi() as api:
        proc = _cli(
            "--host",
            api.url,
            "--experiment",
            "nightly",
            "--run-name",
            "r1",
            "--set",
            "quantum_backend=qiskit-aer",
            "--set",
            "n_qubits=4",
            "--set",
            "quantum_image=registry.example/q:1",
            "--set",
            'quantum_node_selector={"pool": "quantum"}',
            "--set",
            f"mlflow_tracking_uri={TRACKING}",
            env={**SECRETS, "QUBEFLOW_GIT_COMMIT": "c0ffee"},
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1])["run_id"] == "run-1"
        [run] = api.bodies("POST", "/runs")
        [exp] = api.bodies("POST", "/experiments")
        auth = [r.headers.get("authorization") for r in api.requests]
    assert exp["display_name"] == "nightly" and run["experiment_id"] == "exp-1"
    assert run["display_name"] == "r1"
    spec = run["pipeline_spec"]["pipeline_spec"]  # with the kfp-kubernetes platform spec
    assert spec["pipelineInfo"]["name"] == "qubeflow-retraining"
    platform = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    assert "exec-train-quantum-model" in platform["deploymentSpec"]["executors"]
    assert "train-quantum-model" in json.dumps(spec["components"])
    params = run["runtime_config"]["parameters"]
    assert params["quantum_backend"] == "qiskit-aer" and params["n_qubits"] == 4
    assert params["quantum_image"] == "registry.example/q:1"
    assert params["quantum_node_selector"] == {"pool": "quantum"}
    assert params["git_commit"] == "c0ffee"
    assert set(params) == set(PipelineConfig.names())
    assert all(a == "Bearer " + SECRETS["KFP_TOKEN"] for a in auth)  # the token is auth only
    body = json.dumps(run)
    for value in SECRETS.values():
        assert value not in body


def test_recurring_submission_creates_a_recurring_run(tmp_path, monkeypatch):
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    with FakeKfpApi() as api:
        sub = prepare(
            CLUSTER.replace(quantum_enabled=False),
            host=api.url,
            recurring="0 3 * * *",
            run_name="nightly-retrain",
            out_dir=tmp_path,
        )
        assert submit(sub) == {"experiment_id": "exp-1", "recurring_run_id": "rr-1"}
        [job] = api.bodies("POST", "/recurringruns")
    assert job["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert job["display_name"] == "nightly-retrain" and job["experiment_id"] == "exp-1"
    assert job["runtime_config"]["parameters"]["quantum_enabled"] is False


def test_dry_run_prints_the_exact_run_request_and_sends_nothing(tmp_path):
    args = ("--run-name", "r1", "--experiment", "nightly", "--set", "quantum_enabled=false")
    args += ("--set", f"mlflow_tracking_uri={TRACKING}")
    env = {**SECRETS, "QUBEFLOW_GIT_COMMIT": "c0ffee"}
    with FakeKfpApi() as api:
        dry = _cli("--host", api.url, "--dry-run", *args, env=env)
        assert api.requests == []  # nothing sent
        assert dry.returncode == 0, dry.stderr
        real = _cli("--host", api.url, *args, env=env)
        assert real.returncode == 0, real.stderr
        [sent] = api.bodies("POST", "/runs")
        [run_request] = [r for r in api.requests if r.path.endswith("/runs")]
    shown = json.loads(dry.stdout)
    request = shown["request"]
    assert request["method"] == "POST" and request["url"] == api.url + run_request.path
    # the body kfp.Client sent, byte for byte, but for the id the API gave the experiment
    assert request["body"].pop("experiment_id") == "<id of experiment 'nightly'>"
    assert sent.pop("experiment_id") == "exp-1"
    assert request["body"] == sent
    assert request["body"]["runtime_config"]["parameters"]["quantum_enabled"] is False
    assert shown["experiment"]["display_name"] == "nightly" and shown["auth"] == ["KFP_TOKEN"]
    assert shown["images"]["base"].endswith(
        "/qubeflow-base:" + shown["images"]["base"].rsplit(":", 1)[1]
    )
    for value in SECRETS.values():
        assert value not in dry.stdout


def test_dry_run_of_a_recurring_run_shows_the_recurring_run_request(tmp_path, monkeypatch):
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    with FakeKfpApi() as api:
        options = dict(host=api.url, recurring="0 3 * * *", run_name="nightly-retrain")
        with prepare(CLUSTER, out_dir=tmp_path, **options) as sub:
            shown = sub.run_request()
            submit(sub)
        [sent] = api.bodies("POST", "/recurringruns")
    assert shown["url"] == api.url + "/apis/v2beta1/recurringruns"
    shown["body"].pop("experiment_id"), sent.pop("experiment_id")
    assert shown["body"] == sent and sent["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"


LOCAL_URIS = [
    "",
    "http://localhost:5000",
    "http://127.0.0.1:5000",
    "http://127.0.1.1:5000",
    "http://[::1]:5000",
    "http://0.0.0.0:5000",
    "http://mlflow.localhost:5000",
    "sqlite:///mlflow.db",
    "file:///tmp/mlruns",
    "./mlruns",
]


@pytest.mark.parametrize("uri", LOCAL_URIS)
def test_a_tracking_uri_the_pods_cannot_reach_is_refused_unless_allowed(uri, tmp_path):
    config = PipelineConfig(mlflow_tracking_uri=uri)
    with pytest.raises(ConfigError, match="--allow-local-tracking") as e:
        prepare(config, host="http://kfp", out_dir=tmp_path)
    assert e.value.field == "mlflow_tracking_uri"
    with prepare(config, host="http://kfp", out_dir=tmp_path, allow_local_tracking=True) as sub:
        assert sub.arguments["mlflow_tracking_uri"] == uri


@pytest.mark.parametrize(
    "uri", [TRACKING, "https://mlflow.example.com", "http://10.0.0.5:5000", "databricks"]
)
def test_remote_tracking_uris_are_accepted(uri):
    from pipelines.submit import local_tracking_reason

    assert local_tracking_reason(uri) is None


def test_cli_refuses_local_tracking_and_names_the_flag(tmp_path):
    with FakeKfpApi() as api:
        refused = _cli("--host", api.url, "--dry-run")
        allowed = _cli("--host", api.url, "--dry-run", "--allow-local-tracking")
        assert api.requests == []
    assert refused.returncode == 2
    assert "mlflow_tracking_uri: is empty" in refused.stderr
    assert "--allow-local-tracking" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_submit_leaves_no_temporary_files(tmp_path):
    """The compiled package lives in a temporary directory that is removed after a dry run,
    a submitted run and a failed submission alike."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    args = ("--set", f"mlflow_tracking_uri={TRACKING}")
    with FakeKfpApi() as api:
        assert _cli("--host", api.url, "--dry-run", *args, env=env).returncode == 0
        assert list(scratch.iterdir()) == []
        assert _cli("--host", api.url, *args, env=env).returncode == 0
        assert list(scratch.iterdir()) == []
        dead = api.url  # the same port, once the server is gone: the submission fails
    failed = _cli("--host", dead, *args, env=env)
    assert failed.returncode == 2 and "--host: cannot reach the KFP API at" in failed.stderr
    assert list(scratch.iterdir()) == []


def test_a_submission_without_out_dir_removes_its_package_when_closed():
    with prepare(CLUSTER, host="http://kfp") as sub:
        package = Path(sub.package_path)
        assert package.is_file()
    assert not package.exists() and not package.parent.exists()


def test_parameters_come_from_a_mounted_configmap_directory(tmp_path):
    (tmp_path / "quantum_enabled").write_text("false\n")
    (tmp_path / "quantum_backend").write_text("pennylane:default.qubit")
    (tmp_path / "quantum_tolerations").write_text('[{"key": "quantum", "operator": "Exists"}]')
    (tmp_path / "..data").mkdir()  # what a ConfigMap volume also holds
    cfg = PipelineConfig.load(tmp_path)
    assert cfg.quantum_enabled is False and cfg.quantum_backend == "pennylane:default.qubit"
    assert cfg.quantum_tolerations == [{"key": "quantum", "operator": "Exists"}]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"host": ""}, "--host"),
        ({"host": "http://x", "recurring": "daily"}, "--recurring"),
        ({"host": "http://x", "package": "nope.yaml"}, "--package"),
    ],
)
def test_bad_submissions_name_the_option(kwargs, field, tmp_path):
    with pytest.raises(ConfigError) as e:
        prepare(CLUSTER, out_dir=tmp_path, **kwargs)
    assert e.value.field == field


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"mlflow_tracking_uri": "http://user:pw@mlflow:5000"}, "mlflow_tracking_uri"),
        ({"quantum_secret_name": "Bad_Name"}, "quantum_secret_name"),
        ({"quantum_node_selector": {"pool": 3}}, "quantum_node_selector"),
        ({"quantum_tolerations": [{"keyy": "x"}]}, "quantum_tolerations"),
        ({"quantum_cpu_request": "two"}, "quantum_cpu_request"),
        ({"step_memory_limit": "6 GB"}, "step_memory_limit"),
        ({"step_cpu_request": "3", "step_cpu_limit": "2"}, "step_cpu_request"),
        ({"quantum_memory_request": "12Gi"}, "quantum_memory_request"),  # above its limit
        # below the quantum step's own memory budget: the pod would die before it refuses
        ({"quantum_memory_limit": "4Gi"}, "quantum_memory_limit"),
        ({"quantum_max_memory_mb": 16384.0}, "quantum_memory_limit"),
    ],
)
def test_cluster_parameters_are_validated(changes, field):
    with pytest.raises(ConfigError) as e:
        PipelineConfig().replace(**changes).validate()
    assert e.value.field == field


def test_pod_resources_accept_kubernetes_quantities():
    cfg = PipelineConfig(
        quantum_cpu_request="250m",
        quantum_cpu_limit="1.5",
        quantum_memory_request="1G",
        quantum_memory_limit="9000Mi",
        quantum_max_memory_mb=9000.0,
        step_memory_limit="0.5Ti",
    )
    assert cfg.validate() is cfg
    # no budget (0): no lower bound on the pod's memory
    PipelineConfig(quantum_max_memory_mb=0.0, quantum_memory_limit="2Gi").validate()


def test_cron_normalisation():
    assert normalise_cron("0 3 * * *") == "0 0 3 * * *"
    assert normalise_cron("30 0 3 * * *") == "30 0 3 * * *"


def test_in_cluster_the_projected_service_account_token_authenticates(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("projected-sa-token-0123")
    for name in ("KFP_TOKEN", "KFP_COOKIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    with FakeKfpApi() as api:
        submit(prepare(CLUSTER, host=api.url, out_dir=tmp_path))
        headers = [r.headers.get("authorization") for r in api.requests]
        [run] = api.bodies("POST", "/runs")
    assert headers and all(h == "Bearer projected-sa-token-0123" for h in headers)
    assert "projected-sa-token" not in json.dumps(run)
