"""``qubeflow submit`` up to the network edge: a loopback server speaking the KFP REST
endpoints receives the pipeline spec and parameters, and never a secret value."""

from __future__ import annotations

import json
import subprocess
import sys

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
            PipelineConfig(quantum_enabled=False),
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


def test_dry_run_prints_and_sends_nothing(tmp_path):
    with FakeKfpApi() as api:
        proc = _cli("--host", api.url, "--dry-run", "--set", "quantum_enabled=false", env=SECRETS)
        assert api.requests == []
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["arguments"]["quantum_enabled"] is False and shown["auth"] == ["KFP_TOKEN"]
    assert shown["images"]["base"].endswith(
        "/qubeflow-base:" + shown["images"]["base"].rsplit(":", 1)[1]
    )
    for value in SECRETS.values():
        assert value not in proc.stdout


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
        prepare(PipelineConfig(), out_dir=tmp_path, **kwargs)
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
        submit(prepare(PipelineConfig(), host=api.url, out_dir=tmp_path))
        headers = [r.headers.get("authorization") for r in api.requests]
        [run] = api.bodies("POST", "/runs")
    assert headers and all(h == "Bearer projected-sa-token-0123" for h in headers)
    assert "projected-sa-token" not in json.dumps(run)
