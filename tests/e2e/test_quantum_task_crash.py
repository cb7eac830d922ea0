"""The quantum *task* dies (its process is SIGKILLed, as the out-of-memory killer does), not
just its backend: the run still ends with the classical baseline registered, tagged with the
reason, and nothing else written. Real pipeline through kfp.local, real mlflow server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from components.quantum.backends import PLUGINS_ENV
from components.registry import mlflow_names as names
from pipelines.config import PipelineConfig
from pipelines.local import PipelineRunError, run_locally

CRASH_PLUGIN = "tests.fakes.crashing_backend"


@pytest.fixture
def crashing_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Register ``crash:<signal>`` here and in every kfp.local task's process."""
    monkeypatch.setenv(PLUGINS_ENV, CRASH_PLUGIN)
    monkeypatch.setenv("QUBEFLOW_CRASH_MARKER", str(tmp_path / "crashed.pid"))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    return "crash:oom"


def _config(server, name: str, **changes) -> PipelineConfig:
    return PipelineConfig(
        mlflow_tracking_uri=server.uri,
        registered_model_name=name,
        experiment_name=f"exp-{name}",
        n_qubits=4,
        **changes,
    )


def test_a_killed_quantum_task_still_registers_the_classical_baseline(
    mlflow_server, tmp_path, crashing_backend
):
    name = "e2e-quantum-task-killed"
    result = run_locally(
        _config(mlflow_server, name, quantum_backend=crashing_backend), state_dir=tmp_path
    )
    s = result.summary
    assert s["fallback"] is True and s["candidate_kind"] == "classical"
    assert s["fallback_reason"].startswith("task_crashed: quantum task train-quantum-model ended")
    assert set(s["metrics"]) == {"classical"}  # no quantum model exists
    assert "pipeline_failure" in result.extra  # KFP saw the task fail

    # It really died: killed by the signal, before writing any output.
    log = Path(result.extra["log"]).read_text()
    assert "Task 'train-quantum-model' finished with status FAILURE" in log
    [pid] = (tmp_path / "crashed.pid").read_text().split()  # the step's process, killed
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    quantum_out = next(Path(result.pipeline_root).glob("*/train-quantum-model"), None)
    assert quantum_out is None or not list(quantum_out.rglob("quantum_outcome.json"))
    assert "register-after-quantum-crash" in log

    # Nothing half-written: one run, one version, the classical baseline, tagged why.
    client = MlflowClient(mlflow_server.uri)
    [version] = client.search_model_versions(f"name='{name}'")
    assert version.version == s["model_version"] == "1" and version.run_id == s["run_id"]
    tags = version.tags
    assert tags[names.TAG_MODEL_KIND] == "classical"
    assert tags[names.TAG_QUANTUM_FALLBACK] == "true"
    assert tags[names.TAG_QUANTUM_BACKEND] == crashing_backend
    assert not [t for t in tags if t.startswith(names.TAG_QUANTUM_LIFT_PREFIX)]  # no quantum model
    experiment = client.get_experiment_by_name(f"exp-{name}")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags[names.TAG_QUANTUM_ENABLED] == "true"
    assert not [m for m in run.data.metrics if m.startswith("quantum.roc")]
    assert run.info.run_id == s["run_id"] and run.info.status == "FINISHED"
    assert run.data.tags[names.TAG_QUANTUM_FALLBACK_REASON] == s["fallback_reason"]
    assert run.data.tags[names.TAG_KFP_TASK] == "register-after-quantum-crash"
    # the default policy does not promote fallback runs
    assert s["decision"] == "reject"
    assert any("fell back" in reason for reason in s["reasons"])


def test_with_quantum_fallback_fail_a_killed_quantum_task_fails_the_run(
    mlflow_server, tmp_path, crashing_backend
):
    name = "e2e-quantum-task-killed-fail"
    config = _config(mlflow_server, name, quantum_backend=crashing_backend, quantum_fallback="fail")
    with pytest.raises(PipelineRunError, match="train-quantum-model"):
        run_locally(config, state_dir=tmp_path)
    assert MlflowClient(mlflow_server.uri).search_registered_models(f"name='{name}'") == []
