"""The exact statevector engine, the backend seam and the scikit-learn transformers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from components.errors import BackendError, ConfigError
from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends import (
    StatevectorBackend,
    get_backend,
    list_backends,
    parse_backend_name,
)
from components.quantum.backends.qiskit.circuits import feature_map_circuit
from components.quantum.transformers import (
    FidelityKernel,
    ProjectedQuantumFeatures,
    QuantumKernelTransformer,
)

RNG = np.random.default_rng(1234)


def _x(n: int, q: int, hi: float = np.pi) -> np.ndarray:
    return RNG.uniform(0.0, hi, size=(n, q))


@pytest.mark.parametrize("entanglement", ["linear", "full"])
@pytest.mark.parametrize("reps", [1, 2, 3])
@pytest.mark.parametrize("q", [2, 5])
def test_zz_kernel_matches_qiskit_machine_learning(entanglement, reps, q):
    from qiskit_machine_learning.kernels import FidelityStatevectorKernel

    fmap = FeatureMap("zz", q, reps, entanglement)
    reference = FidelityStatevectorKernel(feature_map=feature_map_circuit(fmap))
    x, y = _x(9, q), _x(6, q)
    ours = sv.fidelity_kernel(sv.statevectors(fmap, x), sv.statevectors(fmap, y))
    np.testing.assert_allclose(ours, reference.evaluate(x, y), atol=1e-8, rtol=0)
    np.testing.assert_allclose(
        sv.fidelity_kernel(sv.statevectors(fmap, x)), reference.evaluate(x), atol=1e-8, rtol=0
    )


@pytest.mark.parametrize("rotation", ["x", "y"])
def test_angle_embedding_matches_qiskit(rotation):
    from qiskit_machine_learning.kernels import FidelityStatevectorKernel

    fmap = FeatureMap("angle", 3, rotation=rotation)
    x = _x(7, 3)
    ref = FidelityStatevectorKernel(feature_map=feature_map_circuit(fmap)).evaluate(x)
    np.testing.assert_allclose(sv.fidelity_kernel(sv.statevectors(fmap, x)), ref, atol=1e-8)


def test_statevectors_equal_qiskit_statevector_up_to_global_phase():
    from qiskit.quantum_info import Statevector

    fmap = FeatureMap("zz", 4, 2, "full")
    x = _x(3, 4)
    ours = sv.statevectors(fmap, x)
    circuit = feature_map_circuit(fmap)
    for row, state in zip(x, ours, strict=True):
        theirs = Statevector(circuit.assign_parameters(row)).data
        overlap = np.vdot(theirs, state)
        assert abs(abs(overlap) - 1.0) < 1e-10
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-12)


def test_tiled_kernel_equals_untiled_and_reports_progress():
    fmap = FeatureMap("zz", 6, 2)
    states_x, states_y = sv.statevectors(fmap, _x(37, 6)), sv.statevectors(fmap, _x(23, 6))
    seen: list[tuple[int, int]] = []
    tiled = sv.fidelity_kernel(
        states_x, states_y, tile_bytes=16 * 23 * 5, progress=lambda d, t: seen.append((d, t))
    )
    np.testing.assert_allclose(tiled, sv.fidelity_kernel(states_x, states_y), atol=1e-14)
    assert len(seen) == 8 and seen[-1] == (37, 37)
    gram = sv.fidelity_kernel(states_x, tile_bytes=16 * 37 * 4)
    np.testing.assert_array_equal(gram, gram.T)
    np.testing.assert_array_equal(np.diag(gram), 1.0)


def test_projected_features_match_qiskit_expectation_values():
    from qiskit.quantum_info import SparsePauliOp, Statevector

    fmap = FeatureMap("zz", 3, 2, "linear")
    x = _x(4, 3)
    ours = sv.pauli_expectations(sv.statevectors(fmap, x), 3)
    for i, row in enumerate(x):
        state = Statevector(feature_map_circuit(fmap).assign_parameters(row))
        for q in range(3):
            for k, p in enumerate("XYZ"):
                label = ["I"] * 3
                label[2 - q] = p  # Qiskit labels are big-endian
                expected = state.expectation_value(SparsePauliOp("".join(label))).real
                assert abs(ours[i, 3 * q + k] - expected) < 1e-10


def test_inputs_are_checked():
    fmap = FeatureMap("zz", 3)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        sv.statevectors(fmap, _x(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        sv.statevectors(fmap, np.full((1, 3), np.nan))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"kind": "iqp"}, "feature_map"),
        ({"n_qubits": 0}, "n_qubits"),
        ({"reps": 0}, "reps"),
        ({"entanglement": "ring"}, "entanglement"),
        ({"rotation": "z"}, "rotation"),
    ],
)
def test_feature_map_validation_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        FeatureMap(**kwargs)
    assert e.value.field == field


# ---- backend seam -----------------------------------------------------------------


def test_backend_names_parse():
    b = parse_backend_name("qiskit-aer?noise=FakeManilaV2")
    assert (b.family, b.target, b.options) == ("qiskit-aer", "", {"noise": "FakeManilaV2"})
    b = parse_backend_name("pennylane:lightning.qubit")
    assert (b.family, b.target) == ("pennylane", "lightning.qubit")
    assert str(parse_backend_name("ibm:ibm_brisbane")) == "ibm:ibm_brisbane"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendError, match=r"unknown backend 'warp-drive'.*statevector") as e:
        get_backend("warp-drive")
    assert e.value.field == "quantum_backend"
    with pytest.raises(BackendError, match="takes only"):
        get_backend("statevector:gpu")


def test_statevector_backend_is_listed_usable_and_describes_itself():
    rows = {r.family: r for r in list_backends()}
    assert rows["statevector"].usable
    snap = StatevectorBackend().snapshot(FeatureMap(n_qubits=3))
    assert snap["backend"]["name"] == "statevector"
    assert snap["backend"]["kind"] == "exact-simulator"
    assert snap["calibration"] is None and snap["execution"]["shots"] == 0
    assert snap["sdk_versions"]["numpy"] == np.__version__
    # Same simulator and versions -> same hash (it identifies the "device", not the run).
    assert (
        StatevectorBackend().snapshot(FeatureMap(n_qubits=3))["calibration_hash"]
        == snap["calibration_hash"]
    )


# ---- scikit-learn integration -----------------------------------------------------


def test_kernel_transformer_drops_into_a_pipeline_with_precomputed_svc():
    x, y = _x(40, 3, 1.0), (RNG.uniform(size=40) > 0.5).astype(int)
    pipe = Pipeline(
        [("kernel", QuantumKernelTransformer(reps=1)), ("svc", SVC(kernel="precomputed"))]
    ).fit(x, y)
    expected = FidelityKernel(reps=1).evaluate(x[:5], x)
    np.testing.assert_allclose(pipe.named_steps["kernel"].transform(x[:5]), expected, atol=1e-12)
    assert pipe.predict(x[:5]).shape == (5,)
    cloned = clone(pipe)
    assert cloned.get_params()["kernel__reps"] == 1


def test_fidelity_kernel_with_svc_precomputed():
    x, y = _x(30, 2, 1.0), np.r_[np.zeros(15), np.ones(15)]
    k = FidelityKernel(feature_map="angle")
    svc = SVC(kernel="precomputed").fit(k(x), y)
    assert svc.predict(k(x[:4], x)).shape == (4,)


def test_pickling_drops_the_reference_state_cache():
    x = _x(10, 3)
    t = QuantumKernelTransformer().fit(x)
    t.transform(x[:2])
    assert hasattr(t, "_reference_states")
    restored = pickle.loads(pickle.dumps(t))
    assert not hasattr(restored, "_reference_states")
    np.testing.assert_allclose(restored.transform(x[:2]), t.transform(x[:2]))


def test_projected_features_feed_a_linear_model():
    x, y = _x(30, 3, 1.0), np.r_[np.zeros(15), np.ones(15)]
    pipe = Pipeline([("pqf", ProjectedQuantumFeatures()), ("lr", LogisticRegression())]).fit(x, y)
    assert pipe.named_steps["pqf"].transform(x).shape == (30, 9)
    assert list(pipe.named_steps["pqf"].get_feature_names_out()[:3]) == ["q0_X", "q0_Y", "q0_Z"]


def test_kernel_agreement_measures_error_and_alignment_off_the_diagonal():
    from components.quantum.agreement import agreement, gram_agreement, sample_rows

    k = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.4], [0.2, 0.4, 1.0]])
    same = agreement(k, k, symmetric=True)
    assert same["mean_abs_error"] == 0 and same["alignment"] == pytest.approx(1.0)
    noisy = k.copy()
    noisy[0, 1] = noisy[1, 0] = 0.6  # one pair off by 0.1; the unit diagonal is not compared
    got = agreement(noisy, k, symmetric=True)
    assert got["mean_abs_error"] == pytest.approx(0.2 / 6) and got[
        "max_abs_error"
    ] == pytest.approx(0.1)
    assert 0.9 < got["alignment"] < 1.0 and got["rows"] == 3
    # Scale does not change alignment; a rectangular block compares every entry.
    assert agreement(2 * k[:, :2], k[:, :2], symmetric=False)["alignment"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        agreement(k, k[:2], symmetric=True)
    # Large sets are compared on a seeded sample of rows, the same block on both sides.
    idx = sample_rows(1000, seed=3, limit=10)
    assert len(idx) == 10 and list(idx) == sorted(idx) and list(sample_rows(5, 3)) == list(range(5))
    rows = np.arange(1000.0)[:, None]
    big = np.abs(rows - rows.T)
    out = gram_agreement(big, rows, lambda r: np.abs(r - r.T), seed=3)
    assert out["mean_abs_error"] == 0 and out["rows"] == 256
