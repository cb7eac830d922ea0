"""The quantum step's guards: budget refusals before anything runs, retries of transient
errors only, and a classical fallback (or a failure, when asked) with the right reason for
every fault injected at the IBM service boundary. Secrets never reach the reason."""

from __future__ import annotations

import json

import pytest

from components.quantum.budget import QuantumBudget
from components.quantum.failures import QuantumStepFailure, classify, redact_secrets
from components.steps.train_quantum.step import run_quantum_step
from tests.step_options import quantum_options
from tests.support import SECRET_TOKEN, run_quantum

_run = run_quantum


def test_budget_refuses_work_before_any_job_runs(prepared_tiny, tmp_path):
    outcome = _run(
        prepared_tiny,
        tmp_path,
        "qiskit-aer?shots=1000",
        method="fidelity",
        budget=QuantumBudget(max_circuits=1000),
    )
    assert outcome.reason.startswith("budget: ") and "quantum_max_circuits=1,000" in outcome.reason
    assert f"{45 * 44 // 2 + 15 * 45:,} circuits" in outcome.reason
    assert outcome.calibration["execution"]["jobs"] == []  # nothing ran
    assert outcome.calibration["execution"]["circuit_depth"] > 0  # but it was compiled
    shots = _run(
        prepared_tiny,
        tmp_path,
        "qiskit-aer?shots=1000",
        method="fidelity",
        budget=QuantumBudget(max_shots=10_000),
    )
    assert "quantum_max_shots=10,000" in shots.reason
    nothing = _run(
        prepared_tiny, tmp_path, "qiskit-aer?shots=1000", budget=QuantumBudget(max_circuits=10)
    )
    assert nothing.reason.startswith("budget: no quantum method fits the budget")


def test_a_circuit_that_cannot_run_is_reported_as_such_not_as_over_budget(tmp_path, breast_cancer):
    import math

    from components.data.preprocessing import fit_preprocessor, stratified_split

    split = stratified_split(breast_cancer.head(80), "target", 0.25, 0)
    pre = fit_preprocessor(split, 8, (0.0, math.pi * 0.1))  # 8 qubits on a 5-qubit device
    outcome = run_quantum_step(
        split,
        pre,
        tmp_path / "q",
        quantum_options(
            backend="qiskit-aer?noise=FakeManilaV2", budget=QuantumBudget(max_circuits=1)
        ),
    )
    assert outcome.reason.startswith(
        "transpile: cannot transpile the 8-qubit zz feature map for fake_manila (5 qubits)"
    )
    assert outcome.calibration["calibration"]["timestamp"].startswith("2024-05-27")


def test_fallback_fail_mode_fails_the_step_and_still_records_why(
    prepared_tiny, tmp_path, monkeypatch
):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    with pytest.raises(QuantumStepFailure) as e:
        _run(prepared_tiny, tmp_path, "ibm:ibm_brisbane", fallback="fail")
    assert e.value.reason == "auth" and "QISKIT_IBM_TOKEN is not set" in e.value.message
    recorded = json.loads((tmp_path / "q" / "quantum_outcome.json").read_text())
    assert recorded["status"] == "fallback"


def test_invalid_options_are_config_errors():
    from components.errors import ConfigError

    with pytest.raises(ConfigError, match="quantum_fallback"):
        quantum_options(fallback="maybe")
    with pytest.raises(ConfigError, match="quantum_max_shots"):
        QuantumBudget(max_shots=-1)


@pytest.mark.parametrize(
    "cls, args, kwargs, reason, transient",
    [
        (
            "qiskit_ibm_runtime.api.exceptions.RequestsApiError",
            ("503",),
            {"status_code": 503},
            "unavailable",
            True,
        ),
        (
            "qiskit_ibm_runtime.api.exceptions.RequestsApiError",
            ("401",),
            {"status_code": 401},
            "auth",
            False,
        ),
        (
            "qiskit_ibm_runtime.api.exceptions.RequestsApiError",
            ("400 bad request",),
            {"status_code": 400},
            "error",
            False,
        ),
        ("qiskit_ibm_runtime.exceptions.IBMNotAuthorizedError", ("no",), {}, "auth", False),
        (
            "qiskit_ibm_runtime.exceptions.RuntimeJobFailureError",
            ("boom",),
            {},
            "job_failed",
            False,
        ),
        (
            "qiskit_ibm_runtime.exceptions.RuntimeJobMaxTimeoutError",
            ("slow",),
            {},
            "timeout",
            False,
        ),
        ("builtins.ConnectionError", ("reset",), {}, "unavailable", True),
        ("builtins.ValueError", ("bug",), {}, "error", False),
    ],
)
def test_classification_of_sdk_errors(cls, args, kwargs, reason, transient):
    import importlib

    module, _, name = cls.rpartition(".")
    failure = classify(getattr(importlib.import_module(module), name)(*args, **kwargs))
    assert (failure.reason, failure.transient) == (reason, transient)


def test_secrets_are_redacted_from_messages(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    text = redact_secrets(f"token {SECRET_TOKEN} and aws-secret-value")
    assert text == "token *** and ***"
    failure = QuantumStepFailure("auth", f"bad token {SECRET_TOKEN}")
    assert SECRET_TOKEN not in str(failure) and SECRET_TOKEN not in failure.summary


def test_hardware_device_time_is_budgeted_before_anything_runs():
    from components.feature_maps import FeatureMap
    from components.quantum.backends.qiskit.ibm import IBMRuntimeBackend, LocalTestingService
    from components.quantum.execution import ExecutionContext

    fmap = FeatureMap("zz", 3)
    ctx = ExecutionContext(clock=QuantumBudget(max_seconds=60).start())
    # The ibm: backend class as on hardware, served by a fake device (no network).
    backend = IBMRuntimeBackend(
        "ibm:fake_manila", "FakeManilaV2", ctx, service_factory=LocalTestingService, local=False
    )
    backend.prepare(fmap)
    work = backend.estimate(fmap, 100)
    per_shot = backend.seconds_per_shot(fmap)
    assert work.device_seconds == pytest.approx(4950 * 1024 * per_shot)
    with pytest.raises(QuantumStepFailure) as e:
        ctx.clock.reserve(work, "the kernel")
    assert e.value.reason == "budget" and "device time" in e.value.message
