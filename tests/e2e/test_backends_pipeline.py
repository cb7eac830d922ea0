"""Each backend family through the real pipeline (kfp.local + a real mlflow server), the
classical fallback with its reason for every injected IBM service fault, and no secret in
logs or MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sklearn.model_selection import train_test_split

from components.registry import mlflow_names as names
from pipelines.config import PipelineConfig
from pipelines.local import PipelineRunError, run_locally
from tests.support import QUANTUM_CANDIDATE_POLICY as QUANTUM_CANDIDATE
from tests.support import SECRET_TOKEN


@pytest.fixture(scope="module")
def tiny_csv(breast_cancer, tmp_path_factory):
    """80 real rows: small enough for shot-based kernels (60*59/2 + 20*60 circuits)."""
    frame, _ = train_test_split(
        breast_cancer, train_size=80, random_state=5, stratify=breast_cancer["target"]
    )
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _run(server, tmp_path, name, csv, **changes):
    config = PipelineConfig(
        mlflow_tracking_uri=server.uri,
        registered_model_name=name,
        experiment_name=f"exp-{name}",
        dataset=csv,
        n_qubits=3,
        promotion_policy=QUANTUM_CANDIDATE,
        **changes,
    )
    return run_locally(config, state_dir=tmp_path)


def _calibration(client, run_id):
    path = client.download_artifacts(run_id, names.ARTIFACT_CALIBRATION)
    with open(path) as fh:
        return json.load(fh)


@pytest.mark.parametrize(
    "backend, kind",
    [
        ("pennylane:lightning.qubit", "exact-simulator"),
        ("qiskit-aer?noise=FakeManilaV2&shots=256", "noisy-simulator"),
        ("ibm-local:FakeManilaV2?shots=256", "hardware-emulation"),
    ],
)
def test_each_backend_family_trains_and_registers_with_calibration(
    mlflow_server, tmp_path, tiny_csv, backend, kind
):
    name = "e2e-" + backend.split("?")[0].replace(":", "-").replace(".", "-")
    s = _run(mlflow_server, tmp_path, name, tiny_csv, quantum_backend=backend).summary
    assert s["fallback"] is False, s["fallback_reason"]
    assert set(s["metrics"]) == {"quantum", "classical"}
    client = MlflowClient(mlflow_server.uri)
    mv = client.get_model_version(name, s["model_version"])
    version_tags = mv.tags  # the version carries the calibration's hash; its run the rest
    tags = {**client.get_run(mv.run_id).data.tags, **version_tags}
    assert version_tags[names.TAG_QUANTUM_BACKEND] == backend
    assert version_tags[names.TAG_MODEL_KIND] == "quantum"
    assert tags[names.TAG_QUANTUM_FALLBACK] == "false"
    assert names.TAG_QUANTUM_FALLBACK not in version_tags  # only a fallback is shown there
    assert tags[names.TAG_QUANTUM_BACKEND_KIND] == kind
    cal = _calibration(client, s["run_id"])
    assert version_tags[names.TAG_QUANTUM_CALIBRATION_HASH] == cal["calibration_hash"]
    assert tags[names.TAG_QUANTUM_SHOTS] == str(cal["execution"]["shots"])
    assert tags[names.TAG_QUANTUM_CIRCUIT_DEPTH] == str(cal["execution"]["circuit_depth"])
    if kind == "exact-simulator":
        assert cal["calibration"] is None and tags[names.TAG_QUANTUM_SHOTS] == "0"
        assert tags[names.TAG_QUANTUM_CALIBRATION_TIME] == "none (exact-simulator)"
        assert cal["simulator"]["device"] == "lightning.qubit"
    else:  # that device's calibration, as of its snapshot date
        assert cal["backend"]["name"] == "fake_manila" and cal["backend"]["num_qubits"] == 5
        assert tags[names.TAG_QUANTUM_CALIBRATION_TIME].startswith("2024-05-27")
        assert cal["calibration"]["qubits"]["0"]["t1_s"] > 0
        assert "cx" in cal["calibration"]["gates"]
        assert tags[names.TAG_QUANTUM_SHOTS] == "256"
        assert tags[names.TAG_QUANTUM_SERVING_BACKEND] == "statevector"
        jobs = cal["execution"]["jobs"]
        assert len(jobs) == 2 and sum(j["circuits"] for j in jobs) == 60 * 59 // 2 + 20 * 60
        # Served by the exact simulation: how far the measured kernel was from it, as run
        # tags (what the gate reads) and as run metrics.
        assert 0.5 < float(tags[names.TAG_QUANTUM_KERNEL_ALIGNMENT]) < 1.0
        assert float(tags[names.TAG_QUANTUM_KERNEL_MAE]) > 0
    run = client.get_run(s["run_id"])
    if kind != "exact-simulator":
        prefix = names.METRIC_KERNEL_AGREEMENT_PREFIX
        assert run.data.metrics[prefix + "rows"] == 60
        assert run.data.metrics[prefix + "alignment"] == pytest.approx(
            float(tags[names.TAG_QUANTUM_KERNEL_ALIGNMENT]), abs=1e-6
        )
    else:
        assert names.TAG_QUANTUM_KERNEL_ALIGNMENT not in tags
    assert run.data.tags[names.TAG_QUANTUM_CALIBRATION_HASH] == cal["calibration_hash"]


def test_unavailable_ibm_backend_falls_back_succeeds_and_says_why(
    mlflow_server, tmp_path, tiny_csv, monkeypatch
):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    name = "e2e-ibm-no-credentials"
    s = _run(mlflow_server, tmp_path, name, tiny_csv, quantum_backend="ibm:ibm_brisbane").summary
    assert s["fallback"] is True
    assert s["fallback_reason"].startswith("auth: no IBM Quantum credentials")
    assert set(s["metrics"]) == {"classical"} and s["decision"] == "reject"
    client = MlflowClient(mlflow_server.uri)
    tags = client.get_model_version(name, s["model_version"]).tags
    assert tags[names.TAG_QUANTUM_FALLBACK] == "true" and tags[names.TAG_MODEL_KIND] == "classical"
    run_tags = client.get_run(s["run_id"]).data.tags
    assert run_tags[names.TAG_QUANTUM_FALLBACK_REASON] == s["fallback_reason"]
    assert tags[names.TAG_QUANTUM_BACKEND] == "ibm:ibm_brisbane"
    assert "fell back" in tags[names.TAG_GATE_REASONS]


def test_fallback_fail_mode_fails_the_run_naming_the_cause_and_writes_nothing(
    mlflow_server, tmp_path, tiny_csv, monkeypatch
):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    name = "e2e-fallback-fail"
    with pytest.raises(PipelineRunError) as e:
        _run(
            mlflow_server,
            tmp_path,
            name,
            tiny_csv,
            quantum_backend="ibm:ibm_brisbane",
            quantum_fallback="fail",
        )
    assert e.value.task == "train-quantum-model" and e.value.field == "quantum_backend"
    assert "QISKIT_IBM_TOKEN is not set" in str(e.value)
    assert not MlflowClient(mlflow_server.uri).search_model_versions(f"name='{name}'")


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("invalid_token", "auth"),
        ("unavailable", "unavailable"),
        ("job_failure", "job_failed"),
        ("timeout", "timeout"),
    ],
)
def test_injected_service_faults_fall_back_in_a_real_run_without_leaking_the_token(
    mlflow_server, tmp_path, tiny_csv, faulty_ibm, fault, reason
):
    name = f"e2e-fault-{fault.replace('_', '-')}"
    # Only the hanging job needs a wall budget (3 s, then "timeout" whether or not the job was
    # submitted by then); the other faults keep the default, so a slow machine cannot turn
    # their reason into "timeout".
    budget = {"quantum_max_seconds": 3.0} if fault == "timeout" else {}
    result = _run(
        mlflow_server, tmp_path, name, tiny_csv, quantum_backend=f"ibm-faulty:{fault}", **budget
    )
    s = result.summary
    assert s["fallback"] is True and s["fallback_reason"].startswith(f"{reason}: ")
    client = MlflowClient(mlflow_server.uri)
    mv = client.get_model_version(name, s["model_version"])
    assert mv.tags[names.TAG_QUANTUM_FALLBACK] == "true"
    reason_tag = client.get_run(s["run_id"]).data.tags[names.TAG_QUANTUM_FALLBACK_REASON]
    assert reason_tag.startswith(f"{reason}: ")
    assert mv.tags[names.TAG_GATE_DECISION] == "reject"  # a fallback is never promoted
    # The token was in the environment of every step: it is nowhere in what they left.
    run = client.get_run(s["run_id"])
    written = json.dumps([run.data.params, run.data.tags, mv.tags])
    written += json.dumps(_calibration(client, s["run_id"]))
    log_text = Path(result.extra["log"]).read_text()
    assert "FALLING BACK" in log_text
    assert SECRET_TOKEN not in written + log_text
