"""The quantum step's guards on real Qiskit Aer and qiskit-ibm-runtime code paths: every
fault injected at the IBM service boundary falls back with its reason, transient errors are
retried with backoff, a hanging job is cancelled by the wall budget, a shot-trained model
serves with the exact simulator, and ``qubeflow estimate`` prices the run."""

from __future__ import annotations

import json

import pytest

from components.quantum.budget import QuantumBudget
from components.training.quantum_outcome import load_outcome
from tests.support import SECRET_TOKEN, run_quantum

_run = run_quantum


@pytest.mark.parametrize(
    "fault, reason, has_device",
    [
        ("invalid_token", "auth", False),
        ("unavailable", "unavailable", False),
        ("job_failure", "job_failed", True),
    ],
)
def test_faults_fall_back_with_the_reason(
    prepared_tiny, tmp_path, faulty_ibm, caplog, fault, reason, has_device
):
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


def test_transient_errors_are_retried_with_backoff_then_give_up(
    prepared_tiny, tmp_path, faulty_ibm, caplog
):
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


def test_wall_budget_cancels_a_job_that_never_finishes(
    prepared_tiny, tmp_path, faulty_ibm, monkeypatch
):
    from tests.fakes import faulty_ibm as fakes

    fakes.CANCELLED.clear()
    now = [0.0]  # the budget's clock moves only while the job is polled: load cannot matter
    status = fakes.HangingJob.status

    def polled(job):
        now[0] += 1.0
        return status(job)

    monkeypatch.setattr(fakes.HangingJob, "status", polled)
    outcome = _run(
        prepared_tiny,
        tmp_path,
        "ibm-faulty:timeout",
        budget=QuantumBudget(max_seconds=1.5, clock=lambda: now[0]),
    )
    assert outcome.reason.startswith("timeout: ") and "quantum_max_seconds=1.5" in outcome.reason
    assert fakes.CANCELLED == ["faulty-job-1"]
    assert 1.5 <= outcome.seconds <= 3.0  # on the budget's clock: cancelled at the limit


def test_shot_based_model_serves_with_the_exact_simulator(prepared_tiny, tmp_path):
    outcome = _run(prepared_tiny, tmp_path, "qiskit-aer?noise=FakeManilaV2&shots=256")
    assert outcome.status == "ok", outcome.reason
    model = outcome.bundle.load_model()
    assert model.named_steps["quantum_kernel"].backend == "statevector"
    split, _ = prepared_tiny
    assert model.predict(split.test.drop(columns=["target"]).head(3)).shape == (3,)
    cal = outcome.calibration
    assert cal["backend"]["kind"] == "noisy-simulator" and cal["execution"]["circuit_depth"] > 0
    # The noisy Gram against the exact one it now serves with: recorded, close but not equal.
    agreement = outcome.bundle.info.agreement
    assert agreement["rows"] == len(split.train)
    assert 0.9 < agreement["alignment"] < 1.0 and 0.0 < agreement["mean_abs_error"] < 0.2
    assert agreement["max_abs_error"] >= agreement["mean_abs_error"]


@pytest.mark.parametrize("method", ["nystroem", "projected"])
def test_shot_based_feature_methods_record_their_agreement_with_the_exact_engine(
    prepared_tiny, tmp_path, method
):
    outcome = _run(
        prepared_tiny, tmp_path, "qiskit-aer?shots=512&seed=5", method=method, landmarks=12
    )
    assert outcome.status == "ok", outcome.reason
    agreement = outcome.bundle.info.agreement
    # Nyström: the measured 12x12 landmark kernel; projected: every train row's features.
    split, _ = prepared_tiny
    assert agreement["rows"] == (12 if method == "nystroem" else len(split.train))
    assert agreement["alignment"] > 0.95 and 0 < agreement["mean_abs_error"] < 0.1


def test_estimate_cli_prints_cost_and_exits_3_when_over_budget(capsys):
    from pipelines.cli import main

    device = ["--set", "quantum_backend=ibm-local:FakeManilaV2", "--set", "n_qubits=4"]
    code = main(["estimate", *device, "--set", "quantum_method=fidelity", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and not out["within_budget"]  # 151,443 circuits > 100,000
    assert out["n_train"] == 426 and out["n_test"] == 143
    fidelity = out["methods"]["fidelity"]
    assert fidelity["circuits"] == 426 * 425 // 2 + 143 * 426  # symmetry + unit diagonal
    assert fidelity["jobs"] == 17  # 10 M executions per job at 1024 shots
    assert 1e-4 < out["seconds_per_shot"] < 1e-3
    # auto: the default budget runs the built-in data on the device, >= 10x fewer circuits
    assert main(["estimate", *device, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["within_budget"] and out["chosen"] == "projected"
    assert out["methods"]["projected"]["circuits"] * 10 <= fidelity["circuits"]
    assert (
        main(
            [
                "estimate",
                "--set",
                "quantum_max_circuits=0",
                "--set",
                "quantum_max_shots=0",
                "--json",
                "--set",
                "quantum_backend=qiskit-aer?noise=FakeManilaV2",
                "--set",
                "n_qubits=4",
            ]
        )
        == 0
    )
    noisy = json.loads(capsys.readouterr().out)
    # A local simulator's wall time comes from two probe jobs run by the estimate itself.
    assert all(c["seconds"] > 0 for c in noisy["methods"].values())
    assert any("probe jobs" in n for n in noisy["notes"])
    assert main(["estimate"]) == 0
    text = capsys.readouterr().out
    assert "exact backend" in text and "within budget" in text and "peak MiB" in text
    assert main(["estimate", "--set", "n_qubits=22", "--set", "quantum_method=fidelity"]) == 3
    assert "quantum_max_memory_mb=8192" in capsys.readouterr().out  # refused, not allocated


def test_auto_on_a_shot_budget_picks_a_method_that_fits(prepared_tiny, tmp_path):
    outcome = _run(
        prepared_tiny, tmp_path, "qiskit-aer?shots=256", budget=QuantumBudget(max_circuits=1000)
    )
    assert outcome.status == "ok", outcome.reason
    assert outcome.method["method"] == "projected"  # 3 bases x 60 rows = 180 circuits
    assert outcome.estimate["circuits"] == 3 * 60 <= 1000
    assert "fidelity" in outcome.method["reason"] and "over budget" in outcome.method["reason"]
