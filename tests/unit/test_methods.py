"""The quantum methods: Nyström is exact at m = N, projected features match the statevector
engine, ``auto`` picks by size, backend and budget, memory is refused up front, and bad
method settings name their parameter."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import ConfigError
from components.feature_maps import FeatureMap
from components.quantum import nystroem
from components.quantum import statevector as sv
from components.quantum.backends import get_backend
from components.quantum.budget import QuantumBudget
from components.quantum.failures import QuantumStepFailure
from components.quantum.methods import DataShape, measure_rates, method_cost, plan_method
from components.quantum.transformers import NystroemQuantumFeatures, ProjectedQuantumFeatures

FMAP = FeatureMap("zz", 4)


def _rows(n, q=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 0.4 * np.pi, (n, q))


def test_nystroem_with_every_row_a_landmark_is_the_exact_kernel():
    x = _rows(40)
    exact = sv.fidelity_kernel(sv.statevectors(FMAP, x))
    phi = NystroemQuantumFeatures(feature_map="zz", n_landmarks=40).fit(x).transform(x)
    np.testing.assert_allclose(phi @ phi.T, exact, atol=1e-6)
    assert nystroem.approximation_error(exact, phi) < 1e-6


def test_nystroem_error_shrinks_with_more_landmarks():
    x, y = _rows(300, seed=1), np.repeat([0, 1], 150)
    exact = sv.fidelity_kernel(sv.statevectors(FMAP, x))
    errors = [
        nystroem.approximation_error(
            exact, NystroemQuantumFeatures(feature_map="zz", n_landmarks=m).fit(x, y).transform(x)
        )
        for m in (8, 32, 128)
    ]
    assert errors[0] > errors[1] > errors[2]


def test_landmarks_are_seeded_stratified_and_bounded():
    y = np.array([0] * 90 + [1] * 10)
    idx = nystroem.select_landmarks(100, 20, y=y, seed=3)
    assert len(idx) == 20 and len(set(idx)) == 20
    assert (y[idx] == 1).sum() == 2  # each class in proportion
    np.testing.assert_array_equal(idx, nystroem.select_landmarks(100, 20, y=y, seed=3))
    for bad in (0, -1, 101):
        with pytest.raises(ConfigError, match="nystroem_landmarks"):
            nystroem.select_landmarks(100, bad, y=y)


def test_projected_features_match_the_statevector_engine_and_qiskit():
    x = _rows(30, seed=2)
    ours = ProjectedQuantumFeatures(feature_map="zz").fit(x).transform(x)
    np.testing.assert_allclose(ours, sv.pauli_expectations(sv.statevectors(FMAP, x), 4), atol=1e-12)
    aer = ProjectedQuantumFeatures(feature_map="zz", backend="qiskit-aer").fit(x).transform(x)
    np.testing.assert_allclose(ours, aer, atol=1e-8)


def test_serving_a_nystroem_model_needs_only_its_landmarks():
    import pickle

    x, y = _rows(500, seed=4), np.repeat([0, 1], 250)
    features = NystroemQuantumFeatures(feature_map="zz", n_landmarks=16).fit(x, y)
    restored = pickle.loads(pickle.dumps(features))
    assert restored.landmarks_.shape == (16, 4)  # not the 500 training rows
    assert not hasattr(restored, "_reference_states")
    np.testing.assert_allclose(restored.transform(x[:3]), features.transform(x[:3]), atol=1e-6)


def _plan(method, backend="statevector", n_train=1000, q=4, **kw):
    b = get_backend(backend)
    fmap = FeatureMap("zz", q)
    options = {"landmarks": 64, "exact_max_rows": 5000, "budget": QuantumBudget(), **kw}
    return plan_method(
        method,
        b,
        fmap,
        DataShape(n_train, n_train // 3, 8),
        rates=measure_rates(b, fmap),
        **options,
    )


def test_auto_picks_exact_for_small_data_and_nystroem_above_the_threshold():
    small = _plan("auto", n_train=1000)
    assert small.method == "fidelity" and "exact_max_rows=5000" in small.reason
    large = _plan("auto", n_train=20_000)
    assert large.method == "nystroem" and large.landmarks == 64
    assert "20000 train rows > exact_max_rows=5000" in large.reason
    assert large.cost.seconds is not None and large.cost.memory_bytes < 2 * 2**30


def test_auto_on_a_shot_backend_fits_the_circuit_budget():
    plan = _plan(
        "auto",
        "qiskit-aer?shots=1024",
        n_train=426,
        budget=QuantumBudget(max_circuits=100_000, max_shots=100_000_000),
    )
    exact_gram = 426 * 425 // 2 + 142 * 426
    assert plan.method == "projected" and plan.cost.work.circuits * 10 <= exact_gram


def test_memory_is_refused_up_front_naming_the_budget():
    with pytest.raises(QuantumStepFailure, match="quantum_max_memory_mb=8192") as e:
        _plan("fidelity", n_train=20_000, q=8, budget=QuantumBudget(max_memory_mb=8192))
    assert e.value.reason == "budget"
    wide = method_cost(
        "fidelity", get_backend("statevector"), FeatureMap("zz", 22), DataShape(426, 143, 30)
    )
    assert wide.memory_bytes > 20 * 2**30  # 2^22 amplitudes per row: refused, not allocated
    # auto steps around it: the Nystroem landmark states fit where the Gram's states do not
    plan = _plan("auto", n_train=426, q=22, budget=QuantumBudget(max_memory_mb=8192))
    assert plan.method == "nystroem" and plan.cost.memory_bytes <= 8192 * 2**20
    with pytest.raises(QuantumStepFailure, match="no quantum method fits the budget"):
        _plan("auto", n_train=426, q=22, budget=QuantumBudget(max_memory_mb=256))


def test_bad_method_settings_name_their_parameter():
    with pytest.raises(ConfigError, match="quantum_method"):
        _plan("kernel-trick")
    with pytest.raises(ConfigError, match="nystroem_landmarks"):
        _plan("nystroem", landmarks=0)
    with pytest.raises(ConfigError, match="nystroem_landmarks"):
        _plan("nystroem", n_train=50, landmarks=64)


def test_exact_state_preparations_are_not_device_circuits():
    """A million rows on an exact simulator is a million state preparations, not a million
    device circuits: the circuit budget does not refuse it (memory and time still count)."""
    plan = _plan("auto", n_train=750_000, q=8, budget=QuantumBudget(max_circuits=100_000))
    assert plan.method == "nystroem" and plan.cost.work.circuits > 100_000
