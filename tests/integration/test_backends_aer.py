"""Shot-based backends for real: Aer's ideal and noisy samplers, qiskit-ibm-runtime's local
testing mode (Batch and Session), job grouping, device calibration in the snapshot, and the
``qubeflow backends`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends import get_backend
from components.quantum.backends.qiskit.devices import fake_backend
from components.quantum.budget import WorkEstimate
from components.quantum.failures import QuantumStepFailure
from tests.support import FEATURE_MAPS as MAPS
from tests.support import random_angles as _data


def _shot_tolerance(exact: np.ndarray, shots: int, sigmas: float = 5.0) -> np.ndarray:
    """Binomial standard error of an all-zeros frequency, with a floor of one count."""
    return sigmas * np.sqrt(np.maximum(exact * (1 - exact), 1.0 / shots) / shots)


def test_ideal_shot_simulator_estimates_the_same_kernel_within_shot_noise():
    fmap, shots = MAPS[0], 2000
    x, y = _data(10, 3, 3), _data(5, 3, 4)
    backend = get_backend(f"qiskit-aer?shots={shots}&seed=11")
    assert not backend.exact
    exact_gram = sv.fidelity_kernel(sv.statevectors(fmap, x))
    gram = backend.kernel(fmap, x)
    assert np.all(np.abs(gram - exact_gram) <= _shot_tolerance(exact_gram, shots))
    np.testing.assert_array_equal(gram, gram.T)
    np.testing.assert_array_equal(np.diag(gram), 1.0)  # never spent shots on the diagonal
    exact_cross = sv.fidelity_kernel(sv.statevectors(fmap, x), sv.statevectors(fmap, y))
    cross = backend.kernel(fmap, x, y)
    assert np.all(np.abs(cross - exact_cross) <= _shot_tolerance(exact_cross, shots))
    # Projected features from the Estimator, precision 1/sqrt(shots).
    ev = backend.expectations(fmap, y)
    np.testing.assert_allclose(
        ev, sv.pauli_expectations(sv.statevectors(fmap, y), 3), atol=6.0 / np.sqrt(shots)
    )
    # Every Gram pair went in one job (10*9/2 = 45 circuits), the cross kernel in another.
    circuits = [j["circuits"] for j in backend.jobs[:2]]
    assert circuits == [45, 50]
    assert backend.estimate(fmap, 10) == WorkEstimate(45, shots, 1)
    # The projected features measure one basis (X, Y or Z on every qubit) per circuit:
    # 3 circuits per row, as the estimate says, not one per observable.
    assert backend.jobs[2]["circuits"] == 3 * len(y)
    assert backend.estimate_features(fmap, len(y)).circuits == 3 * len(y)


def test_shot_jobs_log_progress_and_a_probe_measures_the_simulator_rate(caplog):
    from components.quantum.methods import measure_rates

    fmap = MAPS[0]
    backend = get_backend("qiskit-aer?shots=64&seed=3")
    backend.max_executions_per_job = lambda: 1280  # 20 circuits of 64 shots per job
    with caplog.at_level("INFO"):
        backend.kernel(fmap, _data(12, 3))  # 66 circuits in 4 jobs
    progress = [r.getMessage() for r in caplog.records if "circuits (" in r.getMessage()]
    assert len(progress) == 4 and progress[-1].startswith("qiskit-aer")
    assert "20/66 circuits (30%)" in progress[0] and "66/66 circuits (100%)" in progress[-1]
    assert all("circuits/s" in p and "ETA" in p for p in progress)
    jobs = len(backend.jobs)
    rates = measure_rates(backend, fmap, probe_circuits=True)
    assert rates.circuit_seconds > 0 and rates.job_seconds >= 0
    assert len(backend.jobs) == jobs  # probes are not the run's jobs
    assert measure_rates(backend, fmap).circuit_seconds == 0  # only when asked


def test_circuits_are_grouped_into_as_few_jobs_as_the_per_job_limit_allows():
    fmap = MAPS[0]
    backend = get_backend("qiskit-aer?shots=100&seed=1")
    backend.max_executions_per_job = lambda: 2000  # 20 circuits of 100 shots per job
    x = _data(12, 3)  # 66 pairs -> 4 jobs, not 66
    assert backend.estimate(fmap, 12).jobs == 4
    backend.kernel(fmap, x)
    assert [j["circuits"] for j in backend.jobs] == [20, 20, 20, 6]
    assert len({j["job_id"] for j in backend.jobs}) == 4


def test_noisy_simulator_snapshot_carries_the_device_calibration():
    fmap = FeatureMap("zz", 3, reps=1)
    backend = get_backend("qiskit-aer?noise=FakeManilaV2&shots=512&seed=5")
    x = np.pi - 0.05 * _data(6, 3)  # close points (the ZZ phases are small near pi)
    gram = backend.kernel(fmap, x)
    exact = sv.fidelity_kernel(sv.statevectors(fmap, x))
    off = ~np.eye(6, dtype=bool)
    assert np.all((gram >= 0) & (gram <= 1))
    assert exact[off].min() > 0.9
    # Device noise (gate, readout, relaxation) loses fidelity well beyond shot noise.
    assert gram[off].mean() < exact[off].mean() - 3 * np.sqrt(0.25 / 512 / off.sum())

    snap = backend.snapshot(fmap)
    device = fake_backend("FakeManilaV2")
    assert snap["backend"] == {
        **snap["backend"],
        "name": "fake_manila",
        "num_qubits": 5,
        "kind": "noisy-simulator",
        "family": "qiskit-aer",
    }
    assert [0, 1] in snap["backend"]["coupling_map"]
    cal = snap["calibration"]
    assert cal["timestamp"] == device.properties().last_update_date.isoformat()
    q0 = device.target.qubit_properties[0]
    assert cal["qubits"]["0"]["t1_s"] == pytest.approx(q0.t1)
    assert cal["qubits"]["0"]["t2_s"] == pytest.approx(q0.t2)
    assert cal["qubits"]["0"]["frequency_hz"] == pytest.approx(q0.frequency)
    assert cal["qubits"]["0"]["readout_error"] == pytest.approx(
        device.target["measure"][(0,)].error
    )
    assert "cx" in cal["gates"] and set(cal["gates"]) <= {"cx", "rz", "sx", "x"}
    assert cal["gates"]["cx"]["0_1"]["error"] == pytest.approx(device.target["cx"][(0, 1)].error)
    ex = snap["execution"]
    assert ex["shots"] == 512 and ex["optimization_level"] == 1 and ex["seed"] == 5
    assert ex["circuit_depth"] > 0 and ex["two_qubit_gates"] > 0
    assert len(ex["jobs"]) == 1 and ex["jobs"][0]["circuits"] == 15
    assert "FakeManilaV2" in snap["simulator"]["noise_model"]
    assert {"qiskit", "qiskit-aer", "qiskit-ibm-runtime", "pennylane"} <= set(snap["sdk_versions"])
    # The hash identifies the calibration, not the run.
    again = get_backend("qiskit-aer?noise=FakeManilaV2&shots=512&seed=5").snapshot(fmap)
    assert again["calibration_hash"] == snap["calibration_hash"]


def test_ibm_local_runs_the_ibm_code_path_in_batch_mode_with_job_records():
    fmap = FeatureMap("zz", 2, reps=1)
    backend = get_backend("ibm-local:FakeManilaV2?shots=256&seed=3")
    x = _data(5, 2)
    gram = backend.kernel(fmap, x)
    assert gram.shape == (5, 5) and np.all((gram >= 0) & (gram <= 1))
    ev = backend.expectations(fmap, x[:3])
    assert ev.shape == (3, 6) and np.all(np.abs(ev) <= 1.0 + 1e-9)
    snap = backend.snapshot(fmap)
    assert snap["backend"]["kind"] == "hardware-emulation"
    assert snap["backend"]["family"] == "ibm-local"
    assert snap["calibration"]["timestamp"].startswith("2024-05-27")
    jobs = snap["execution"]["jobs"]
    assert len(jobs) == 2 and all(j["job_id"] for j in jobs)
    assert jobs[0]["status"] == "DONE" and jobs[0]["execution_seconds"] is not None
    assert jobs[0]["queue_seconds"] is not None
    # Seeded local testing mode is reproducible.
    again = get_backend("ibm-local:FakeManilaV2?shots=256&seed=3").kernel(fmap, x)
    np.testing.assert_array_equal(again, gram)


def test_ibm_session_mode_and_transpile_failure():
    backend = get_backend("ibm-local:FakeManilaV2?mode=session&shots=64")
    assert backend.mode == "session"
    with pytest.raises(QuantumStepFailure) as e:
        backend.kernel(FeatureMap("zz", 7), _data(3, 7))  # 7 qubits on a 5-qubit device
    assert e.value.reason == "transpile" and "5 qubits" in e.value.message


def test_cli_lists_backends_as_json(capsys, monkeypatch):
    from pipelines.cli import main

    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    assert main(["backends", "--json"]) == 0
    rows = {r["family"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["qiskit-aer"]["usable"] and "fake devices" in rows["qiskit-aer"]["details"]
    assert main(["backends"]) == 0
    assert "NOT set (runs fall back to classical)" in capsys.readouterr().out
