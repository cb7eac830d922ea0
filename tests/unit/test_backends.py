"""Every backend family, for real on small data: exact ones agree with the default engine to
1e-8, shot-based ones within a tolerance derived from the shot count; jobs are grouped;
calibration snapshots carry the device's data."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import BackendError
from components.quantum import statevector as sv
from components.quantum.backends import get_backend, list_backends
from components.quantum.backends.qiskit.circuits import feature_map_circuit
from components.quantum.budget import QuantumBudget
from components.quantum.execution import ExecutionContext
from components.quantum.failures import QuantumStepFailure
from tests.support import FEATURE_MAPS, random_angles

EXACT = ["statevector", "pennylane:default.qubit", "pennylane:lightning.qubit", "qiskit-aer"]
MAPS = FEATURE_MAPS
_data = random_angles


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("fmap", MAPS, ids=lambda f: f"{f.kind}-{f.n_qubits}-{f.entanglement}")
def test_exact_backends_agree_with_the_default_engine(name, fmap):
    x, y = _data(9, fmap.n_qubits, 1), _data(4, fmap.n_qubits, 2)
    backend = get_backend(name)
    assert backend.exact
    states = sv.statevectors(fmap, x)
    np.testing.assert_allclose(backend.statevectors(fmap, x), states, atol=1e-8)
    np.testing.assert_allclose(backend.kernel(fmap, x), sv.fidelity_kernel(states), atol=1e-8)
    np.testing.assert_allclose(
        backend.kernel(fmap, x, y), sv.fidelity_kernel(states, sv.statevectors(fmap, y)), atol=1e-8
    )
    np.testing.assert_allclose(
        backend.expectations(fmap, y),
        sv.pauli_expectations(sv.statevectors(fmap, y), fmap.n_qubits),
        atol=1e-8,
    )
    snap = backend.snapshot(fmap)
    assert snap["backend"]["kind"] == "exact-simulator" and snap["calibration"] is None
    assert snap["execution"]["shots"] == 0 and len(snap["calibration_hash"]) == 64


def test_wall_budget_stops_exact_backends_between_tiles():
    ctx = ExecutionContext(clock=QuantumBudget(max_seconds=1e-9).start())
    with pytest.raises(QuantumStepFailure) as e:
        get_backend("statevector", ctx).kernel(MAPS[0], _data(5, 3))
    assert e.value.reason == "timeout" and e.value.field == "quantum_max_seconds"


@pytest.mark.parametrize(
    "name, match",
    [
        ("qiskit-aer?noise=FakeNowhereV2", "unknown fake backend 'FakeNowhereV2'"),
        ("qiskit-aer?shots=0", "shots='0'.*from 1 to"),
        ("qiskit-aer?shots=many", "shots='many'"),
        ("qiskit-aer?warp=9", r"unknown option\(s\) \['warp'\]"),
        ("qiskit-aer?optimization_level=2", "need shots"),
        ("qiskit-aer:FakeManilaV2", "qiskit-aer\\?noise=FakeManilaV2"),
        ("ibm", "needs a backend name"),
        ("ibm-local:FakeNowhereV2", "unknown fake backend"),
        ("ibm:ibm_brisbane?mode=dedicated", "mode='dedicated'"),
        ("pennylane:warp.qubit", "'warp.qubit' is not installed.*default.qubit"),
        ("pennylane:default.qubit?shots=5", "takes no options"),
    ],
)
def test_bad_backend_names_are_clear_errors(name, match):
    with pytest.raises(BackendError, match=match) as e:
        get_backend(name)
    assert e.value.field == "quantum_backend"


def test_pennylane_device_without_statevectors_is_rejected_with_the_reason():
    with pytest.raises(BackendError, match="does not return statevectors"):
        get_backend("pennylane:default.mixed").statevectors(MAPS[0], _data(2, 3))


def test_backends_are_listed_with_usability_and_details(monkeypatch):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    rows = {r.family: r for r in list_backends()}
    assert {"statevector", "pennylane", "qiskit-aer", "ibm", "ibm-local"} <= set(rows)
    assert all(rows[f].usable for f in ("statevector", "pennylane", "qiskit-aer", "ibm"))
    assert "lightning.qubit" in rows["pennylane"].details
    assert "QISKIT_IBM_TOKEN NOT set" in rows["ibm"].details
    assert (
        "FakeManilaV2" in rows["ibm-local"].details or "fake devices" in rows["ibm-local"].details
    )


@pytest.mark.parametrize("fmap", MAPS, ids=lambda f: f"{f.kind}-{f.n_qubits}-{f.entanglement}")
def test_feature_map_depth_without_qiskit_matches_qiskit(fmap):
    qc = feature_map_circuit(fmap).decompose()
    assert fmap.depth() == qc.depth()
    assert fmap.two_qubit_gates() == sum(1 for i in qc.data if i.operation.num_qubits == 2)


class _ScriptedJob:
    """A job whose status moves one state along the script at every ``done()`` poll."""

    def __init__(self, states):
        self.states = list(states)

    def job_id(self):
        return "job-7"

    def status(self):
        return self.states[0]

    def done(self):
        if len(self.states) > 1:
            self.states.pop(0)
            return False
        return True

    def result(self):
        return "result"


def test_job_waits_log_queue_then_running_time_on_a_steady_interval(monkeypatch, caplog):
    from components.quantum import execution

    now = [1000.0]

    def advance(_s):  # the poll's sleep moves a fake clock 12 s: no real waiting
        now[0] += 12.0

    monkeypatch.setattr(execution.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(execution.time, "sleep", advance)
    job = _ScriptedJob(["QUEUED", "QUEUED", "QUEUED", "RUNNING", "RUNNING", "DONE"])
    with caplog.at_level("INFO", logger=execution.log.name):
        assert execution.wait_for_job(job, execution.ExecutionContext(), "train Gram") == "result"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "train Gram: job job-7 QUEUED, queued 12 s",
        "train Gram: job job-7 RUNNING, queued 24 s, running 0 s",
        "train Gram: job job-7 RUNNING, queued 24 s, running 12 s",
        "train Gram: job job-7 DONE, queued 24 s, running 24 s",
    ]


def test_the_quantum_image_allow_list_takes_references_and_prefixes():
    from components.errors import ConfigError
    from components.quantum.image_policy import allowed_images, check_quantum_image

    listed = allowed_images(" ghcr.io/qubeflow/qubeflow-quantum@, registry.local/q:1.2 ,")
    assert listed == ["ghcr.io/qubeflow/qubeflow-quantum@", "registry.local/q:1.2"]
    assert "allowed by" in check_quantum_image(
        "ghcr.io/qubeflow/qubeflow-quantum@sha256:ab", listed
    )
    assert "allowed by" in check_quantum_image("registry.local/q:1.2", listed)
    for image in (
        "ghcr.io/qubeflow/qubeflow-quantum-evil@sha256:ab",  # a prefix needs its separator
        "registry.local/q:1.2-patched",
        "docker.io/someone/q:1",
    ):
        with pytest.raises(ConfigError, match="not on this cluster's quantum image") as e:
            check_quantum_image(image, listed)
        assert e.value.field == "quantum_image"
    assert "no allow-list" in check_quantum_image("anything:1", [])
