"""The quantum step's guards: budget refusals before anything runs, retries of transient
errors only, and a classical fallback (or a failure, when asked) with the right reason for
every fault injected at the IBM service boundary. Secrets never reach the reason."""

from __future__ import annotations

import json

import pytest

from components.quantum.budget import QuantumBudget
from components.quantum.failures import QuantumStepFailure, classify, redact_secrets
from components.steps.train_quantum.step import run_quantum_step
from components.training.quantum_outcome import load_outcome
from tests.conftest import SECRET_TOKEN
from tests.step_options import quantum_options


def _run(prepared_tiny, tmp_path, backend, **kw):
    split, pre = prepared_tiny
    options = quantum_options(backend=backend, seed=3, **kw)
    return run_quantum_step(split, pre, tmp_path / "q", options)


@pytest.mark.parametrize("fault, reason, has_device", [
    ("invalid_token", "auth", False),
    ("unavailable", "unavailable", False),
    ("job_failure", "job_failed", True),
])
def test_faults_fall_back_with_the_reason(prepared_tiny, tmp_path, faulty_ibm, caplog,
                                          fault, reason, has_device):
    outcome = _run(prepared_tiny, tmp_path, f"ibm-faulty:{fault}")
    assert outcome.fallback and outcome.bundle is None
    assert outcome.reason.startswith(f"{reason}: ")
    assert SECRET_TOKEN not in outcome.reason and SECRET_TOKEN not in caplog.text
    assert "FALLING BACK" in caplog.text
    again = load_outcome(tmp_path / "q")  # what the registry step reads
    assert again.fallback and again.reason == outcome.reason
    if has_device:  # the device was reached: its calibration is recorded anyway
        assert again.calibration["backend"]["name"] == "fake_manila"
        assert again.calibration["calibration"]["timestamp"].startswith("2024-05-27")
    else:
        assert again.calibration["calibration"] is None
        assert again.calibration["backend"]["unreachable"] is True


def test_transient_errors_are_retried_with_backoff_then_give_up(prepared_tiny, tmp_path,
                                                                 faulty_ibm, caplog):
    from tests.fakes import faulty_ibm as fakes

    fakes.ATTEMPTS.clear()
    outcome = _run(prepared_tiny, tmp_path, "ibm-faulty:unavailable", max_retries=3)
    assert outcome.reason.startswith("unavailable: connect to ibm-faulty:unavailable")
    assert fakes.ATTEMPTS["unavailable"] == 4  # 1 try + 3 retries
    assert caplog.text.count("retrying in") == 3


def test_a_flaky_service_succeeds_after_retries(prepared_tiny, tmp_path, faulty_ibm):
    from tests.fakes import faulty_ibm as fakes

    fakes.ATTEMPTS.clear()
    outcome = _run(prepared_tiny, tmp_path, "ibm-faulty:flaky?shots=128", max_retries=2)
    assert outcome.status == "ok", outcome.reason
    assert fakes.ATTEMPTS["flaky"] == 2
    assert 0.0 <= outcome.bundle.info.evaluation.metrics["roc_auc"] <= 1.0  # 128 noisy shots
    assert outcome.bundle.info.params["serving_backend"] == "statevector"
    jobs = outcome.calibration["execution"]["jobs"]
    assert len(jobs) == 2 and outcome.calibration["execution"]["shots"] == 128


def test_non_transient_errors_are_not_retried(prepared_tiny, tmp_path, faulty_ibm, caplog):
    outcome = _run(prepared_tiny, tmp_path, "ibm-faulty:invalid_token", max_retries=5)
    assert outcome.reason.startswith("auth: ")
    assert "retrying" not in caplog.text


def test_wall_budget_cancels_a_job_that_never_finishes(prepared_tiny, tmp_path, faulty_ibm):
    from tests.fakes import faulty_ibm as fakes

    fakes.CANCELLED.clear()
    outcome = _run(prepared_tiny, tmp_path, "ibm-faulty:timeout",
                   budget=QuantumBudget(max_seconds=1.5))
    assert outcome.reason.startswith("timeout: ") and "quantum_max_seconds=1.5" in outcome.reason
    assert fakes.CANCELLED == ["faulty-job-1"]
    assert outcome.seconds < 10


def test_budget_refuses_work_before_any_job_runs(prepared_tiny, tmp_path):
    outcome = _run(prepared_tiny, tmp_path, "qiskit-aer?shots=1000", method="fidelity",
                   budget=QuantumBudget(max_circuits=1000))
    assert outcome.reason.startswith("budget: ") and "quantum_max_circuits=1,000" in outcome.reason
    assert f"{45 * 44 // 2 + 15 * 45:,} circuits" in outcome.reason
    assert outcome.calibration["execution"]["jobs"] == []  # nothing ran
    assert outcome.calibration["execution"]["circuit_depth"] > 0  # but it was compiled
    shots = _run(prepared_tiny, tmp_path, "qiskit-aer?shots=1000", method="fidelity",
                 budget=QuantumBudget(max_shots=10_000))
    assert "quantum_max_shots=10,000" in shots.reason
    nothing = _run(prepared_tiny, tmp_path, "qiskit-aer?shots=1000",
                   budget=QuantumBudget(max_circuits=10))
    assert nothing.reason.startswith("budget: no quantum method fits the budget")


def test_auto_on_a_shot_budget_picks_a_method_that_fits(prepared_tiny, tmp_path):
    outcome = _run(prepared_tiny, tmp_path, "qiskit-aer?shots=256",
                   budget=QuantumBudget(max_circuits=1000))
    assert outcome.status == "ok", outcome.reason
    assert outcome.method["method"] == "projected"  # 3 bases x 60 rows = 180 circuits
    assert outcome.estimate["circuits"] == 3 * 60 <= 1000
    assert "fidelity" in outcome.method["reason"] and "over budget" in outcome.method["reason"]


def test_a_circuit_that_cannot_run_is_reported_as_such_not_as_over_budget(tmp_path,
                                                                          breast_cancer):
    import math

    from components.data.preprocessing import fit_preprocessor, stratified_split

    split = stratified_split(breast_cancer.head(80), "target", 0.25, 0)
    pre = fit_preprocessor(split, 8, (0.0, math.pi * 0.1))  # 8 qubits on a 5-qubit device
    outcome = run_quantum_step(split, pre, tmp_path / "q", quantum_options(
        backend="qiskit-aer?noise=FakeManilaV2", budget=QuantumBudget(max_circuits=1)))
    assert outcome.reason.startswith("transpile: cannot transpile the 8-qubit zz feature map "
                                     "for fake_manila (5 qubits)")
    assert outcome.calibration["calibration"]["timestamp"].startswith("2024-05-27")


def test_fallback_fail_mode_fails_the_step_and_still_records_why(prepared_tiny, tmp_path,
                                                                  monkeypatch):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    with pytest.raises(QuantumStepFailure) as e:
        _run(prepared_tiny, tmp_path, "ibm:ibm_brisbane", fallback="fail")
    assert e.value.reason == "auth" and "QISKIT_IBM_TOKEN is not set" in e.value.message
    recorded = json.loads((tmp_path / "q" / "quantum_outcome.json").read_text())
    assert recorded["status"] == "fallback"


def test_shot_based_model_serves_with_the_exact_simulator(prepared_tiny, tmp_path):
    outcome = _run(prepared_tiny, tmp_path, "qiskit-aer?noise=FakeManilaV2&shots=256")
    assert outcome.status == "ok", outcome.reason
    model = outcome.bundle.load_model()
    assert model.named_steps["quantum_kernel"].backend == "statevector"
    split, _ = prepared_tiny
    assert model.predict(split.test.drop(columns=["target"]).head(3)).shape == (3,)
    cal = outcome.calibration
    assert cal["backend"]["kind"] == "noisy-simulator" and cal["execution"]["circuit_depth"] > 0


def test_invalid_options_are_config_errors():
    from components.errors import ConfigError

    with pytest.raises(ConfigError, match="quantum_fallback"):
        quantum_options(fallback="maybe")
    with pytest.raises(ConfigError, match="quantum_max_shots"):
        QuantumBudget(max_shots=-1)


@pytest.mark.parametrize("exc, reason, transient", [
    ("RequestsApiError('503', status_code=503)", "unavailable", True),
    ("RequestsApiError('401', status_code=401)", "auth", False),
    ("RequestsApiError('400 bad request', status_code=400)", "error", False),
    ("IBMNotAuthorizedError('no')", "auth", False),
    ("RuntimeJobFailureError('boom')", "job_failed", False),
    ("RuntimeJobMaxTimeoutError('slow')", "timeout", False),
    ("ConnectionError('reset')", "unavailable", True),
    ("ValueError('bug')", "error", False),
])
def test_classification_of_sdk_errors(exc, reason, transient):
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError  # noqa: F401
    from qiskit_ibm_runtime.exceptions import (  # noqa: F401
        IBMNotAuthorizedError,
        RuntimeJobFailureError,
        RuntimeJobMaxTimeoutError,
    )

    failure = classify(eval(exc))
    assert (failure.reason, failure.transient) == (reason, transient)


def test_secrets_are_redacted_from_messages(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    text = redact_secrets(f"token {SECRET_TOKEN} and aws-secret-value")
    assert text == "token *** and ***"
    failure = QuantumStepFailure("auth", f"bad token {SECRET_TOKEN}")
    assert SECRET_TOKEN not in str(failure) and SECRET_TOKEN not in failure.summary


def test_estimate_cli_prints_cost_and_exits_3_when_over_budget(capsys):
    from pipelines.cli import main

    code = main(["estimate", "--set", "quantum_backend=ibm-local:FakeManilaV2", "--set",
                 "n_qubits=4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and not out["within_budget"]  # 151,443 circuits > 100,000
    assert out["n_train"] == 426 and out["n_test"] == 143
    assert out["train_gram"]["circuits"] == 426 * 425 // 2  # symmetry + unit diagonal
    assert out["test_kernel"]["circuits"] == 143 * 426
    assert out["total"]["jobs"] == 17  # 10 M executions per job at 1024 shots
    assert 1e-4 < out["seconds_per_shot"] < 1e-3 and out["device_seconds"] > 3600
    assert main(["estimate", "--set", "quantum_max_circuits=0", "--set",
                 "quantum_max_shots=0", "--json", "--set",
                 "quantum_backend=qiskit-aer?noise=FakeManilaV2", "--set", "n_qubits=4"]) == 0
    capsys.readouterr()
    assert main(["estimate"]) == 0
    text = capsys.readouterr().out
    assert "exact backend" in text and "within budget" in text


def test_hardware_device_time_is_budgeted_before_anything_runs():
    from components.feature_maps import FeatureMap
    from components.quantum.backends.qiskit.ibm import IBMRuntimeBackend, LocalTestingService
    from components.quantum.execution import ExecutionContext

    fmap = FeatureMap("zz", 3)
    ctx = ExecutionContext(clock=QuantumBudget(max_seconds=60).start())
    # The ibm: backend class as on hardware, served by a fake device (no network).
    backend = IBMRuntimeBackend("ibm:fake_manila", "FakeManilaV2", ctx,
                                service_factory=LocalTestingService, local=False)
    backend.prepare(fmap)
    work = backend.estimate(fmap, 100)
    per_shot = backend.seconds_per_shot(fmap)
    assert work.device_seconds == pytest.approx(4950 * 1024 * per_shot)
    with pytest.raises(QuantumStepFailure) as e:
        ctx.clock.reserve(work, "the kernel")
    assert e.value.reason == "budget" and "device time" in e.value.message
