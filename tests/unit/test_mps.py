"""The ``mps`` backend: exact agreement with the statevector engine, bond-dimension refusal,
truncation with its error, registration, and a q = 64 model that trains, pickles, predicts."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest

from components.errors import BackendError, ConfigError
from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends import check_width, get_backend, is_exact_backend, list_backends
from components.quantum.backends.mps import MPSBackend, engine
from components.quantum.methods import DataShape, measure_rates, method_cost
from components.quantum.transformers import NystroemQuantumFeatures, QuantumKernelTransformer

MAPS = [
    *[("zz", q, reps, "linear", "y") for q in (2, 5, 12) for reps in (1, 2, 3)],
    *[("zz", q, reps, "circular", "y") for q in (3, 6, 12) for reps in (1, 2, 3)],
    ("zz", 8, 2, "full", "y"),
    ("zz", 1, 2, "linear", "y"),
    ("angle", 12, 1, "linear", "x"),
    ("angle", 12, 1, "linear", "y"),
]


def _rows(n: int, q: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, np.pi, size=(n, q))


@pytest.mark.parametrize("spec", MAPS, ids=lambda s: "-".join(map(str, s)))
def test_states_kernels_and_features_agree_with_the_statevector_engine(spec):
    fmap = FeatureMap(*spec)
    x, y = _rows(9, fmap.n_qubits, 1), _rows(6, fmap.n_qubits, 2)
    mx, my = engine.build(fmap, x), engine.build(fmap, y)
    sx, sy = sv.statevectors(fmap, x), sv.statevectors(fmap, y)
    assert np.abs(engine.to_dense(mx) - sx).max() <= 1e-10
    assert np.abs(engine.kernel(mx) - sv.fidelity_kernel(sx)).max() <= 1e-10  # Gram
    assert np.abs(engine.kernel(mx, my) - sv.fidelity_kernel(sx, sy)).max() <= 1e-10
    assert (
        np.abs(engine.pauli_expectations(mx) - sv.pauli_expectations(sx, fmap.n_qubits)).max()
        <= 1e-10
    )
    bound = engine.bond_dimensions(fmap)
    if fmap.entanglement != "linear" or fmap.kind == "angle":  # generic storage: the bound
        assert all(b <= c for b, c in zip(mx.bonds, bound, strict=True))


def test_gram_tiles_and_n_by_m_agree_across_tile_boundaries():
    fmap = FeatureMap("zz", 10, 2, "linear")
    x, lm = _rows(70, 10, 3), _rows(13, 10, 4)
    sx = sv.statevectors(fmap, x)
    tiny = 16 * 4 * 16 * 16 * 8  # forces 8-row tiles
    gram = engine.kernel(engine.build(fmap, x), tile_bytes=tiny)
    assert np.abs(gram - sv.fidelity_kernel(sx)).max() <= 1e-10
    assert np.array_equal(gram, gram.T) and np.all(np.diag(gram) == 1.0)
    backend = MPSBackend(tile_bytes=tiny)
    k_nm = backend.kernel(fmap, x, lm)
    assert np.abs(k_nm - sv.fidelity_kernel(sx, sv.statevectors(fmap, lm))).max() <= 1e-10


@pytest.mark.parametrize("q, reps", [(2, 2), (3, 1), (7, 3), (12, 2)])
@pytest.mark.parametrize("parallel", ["processes", "threads"])
def test_compact_contraction_equals_the_generic_one_for_any_tiling_and_workers(
    q, reps, parallel, monkeypatch
):
    """The compact path (y row the contiguous axis, tiles, forked workers or threads)
    against the generic batched contraction of the same states with every bond stored."""
    monkeypatch.setattr(engine, "COLUMN_BLOCK", 8)  # 17 y rows: blocks of 8, 8 and 1
    forks = []
    if parallel == "processes":  # (other tests may leave threads behind: fork anyway)
        monkeypatch.setattr(engine, "FORK_MIN_WORK", 0)
        monkeypatch.setattr(engine.threading, "active_count", lambda: 1)
        real_fork = os.fork
        monkeypatch.setattr(engine.os, "fork", lambda: forks.append(1) or real_fork())
    else:
        monkeypatch.setattr(engine, "_may_fork", lambda enough_work: False)
    fmap = FeatureMap("zz", q, reps, "linear")
    mx, my = engine.build(fmap, _rows(23, q, 7)), engine.build(fmap, _rows(17, q, 8))
    assert mx.compact and not mx.generic().compact
    ref_ov = engine.overlaps(mx.generic(), my.generic())
    assert np.abs(engine.overlaps(mx, my) - ref_ov).max() <= 1e-12
    ref, ref_gram = engine.kernel(mx.generic(), my.generic()), engine.kernel(mx.generic())
    tiny = 16 * 12 * 4 * 8 * 5  # 5 x rows by 8 y rows at h = 2
    for tile_bytes, workers in [(engine.TILE_BYTES, 1), (tiny, 1), (tiny, 3), (1, 2)]:
        k = engine.kernel(mx, my, tile_bytes=tile_bytes, workers=workers)
        assert np.abs(k - ref).max() <= 1e-12
        gram = engine.kernel(mx, tile_bytes=tile_bytes, workers=workers)
        assert np.abs(gram - ref_gram).max() <= 1e-12
        assert np.array_equal(gram, gram.T) and np.all(np.diag(gram) == 1.0)
    assert bool(forks) == (parallel == "processes")


def test_an_error_in_progress_stops_the_forked_workers(monkeypatch):
    monkeypatch.setattr(engine, "FORK_MIN_WORK", 0)
    monkeypatch.setattr(engine.threading, "active_count", lambda: 1)
    children = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(engine.os, "fork", fork)
    fmap = FeatureMap("zz", 12, 2, "linear")
    mx, my = engine.build(fmap, _rows(40, 12, 9)), engine.build(fmap, _rows(30, 12, 10))

    def progress(done, total):
        raise TimeoutError("time limit")

    with pytest.raises(TimeoutError):
        engine.kernel(mx, my, tile_bytes=16 * 12 * 4 * 30, workers=2, progress=progress)
    assert children
    for pid in children:  # every child was killed and reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_workers_option():
    assert get_backend("mps?workers=2").workers == 2 and get_backend("mps").workers is None
    with pytest.raises(BackendError, match="workers"):
        get_backend("mps?workers=0")


def test_transformers_use_the_backends_own_kernel_hook():
    fmap_kw = dict(feature_map="zz", reps=2, entanglement="circular")
    x = _rows(40, 6, 5)
    ref = QuantumKernelTransformer(backend="statevector", **fmap_kw).fit(x[:20])
    mps = QuantumKernelTransformer(backend="mps", **fmap_kw).fit(x[:20])
    assert np.abs(mps.transform(x[20:]) - ref.transform(x[20:])).max() <= 1e-10
    y = np.array([0, 1] * 20)
    a = NystroemQuantumFeatures(backend="statevector", n_landmarks=8, **fmap_kw).fit(x, y)
    b = NystroemQuantumFeatures(backend="mps", n_landmarks=8, **fmap_kw).fit(x, y)
    assert np.abs(a.landmark_kernel(x) - b.landmark_kernel(x)).max() <= 1e-6  # float32


def test_bond_dimension_explosion_is_refused_naming_pattern_width_and_bond():
    fmap = FeatureMap("zz", 40, 2, "full")
    with pytest.raises(BackendError) as e:
        get_backend("mps").prepare(fmap)
    text = str(e.value)
    assert "full entanglement" in text and "40 qubits" in text and "2^20 = 1,048,576" in text
    with pytest.raises(BackendError, match="circular entanglement at 100 qubits"):
        engine.build(FeatureMap("zz", 100, 5, "circular"), _rows(1, 100, 0))
    engine.check_bond(FeatureMap("zz", 1000, 3, "linear"))  # bond 8: fine at any width


def test_truncation_reports_its_error_and_stays_close():
    fmap = FeatureMap("zz", 12, 3, "linear")
    x = _rows(10, 12, 6)
    exact = sv.statevectors(fmap, x)
    backend = get_backend("mps?max_bond=4")
    states = backend.states(fmap, x)
    assert max(states.bonds) <= 4
    err = backend.truncation_error
    assert 0.0 < err < 1.0 and backend.snapshot(fmap)["simulator"]["truncation_error"] == err
    fidelity = np.abs(np.sum(exact.conj() * engine.to_dense(states), axis=1)) ** 2
    # 1 - F <= (sum of discarded weights) to first order; allow a factor for the bound
    assert np.all(1.0 - fidelity <= 2.0 * states.discarded + 1e-12)
    loose = get_backend("mps?cutoff=1e-12").states(fmap, x)
    assert np.abs(engine.to_dense(loose) - exact).max() <= 1e-5
    with pytest.raises(BackendError, match="max_bond"):
        get_backend("mps?max_bond=zero")


def test_the_family_is_registered_exact_and_discovered():
    assert is_exact_backend("mps") and get_backend("mps").exact
    status = {s.family: s for s in list_backends()}["mps"]
    assert status.usable and "matrix-product-state" in status.description
    wide = FeatureMap("zz", 100, 2, "linear")
    check_width("mps", wide)
    with pytest.raises(ConfigError, match="quantum_backend=mps") as e:
        check_width("statevector", wide)
    assert e.value.field == "n_qubits"
    with pytest.raises(ConfigError, match="use quantum_backend=mps"):
        get_backend("statevector").prepare(FeatureMap("zz", 30))


def test_cost_model_prices_mps_from_bond_dimension_and_measured_rates():
    backend = get_backend("mps")
    fmap = FeatureMap("zz", 100, 2, "linear")
    rates = measure_rates(backend, fmap)
    assert rates.states_per_second > 0 and rates.macs_per_second > 0
    shape = DataShape(1000, 200, 100)
    cost = method_cost("fidelity", backend, fmap, shape, rates=rates)
    assert cost.seconds is not None and 0 < cost.seconds < 600
    assert cost.memory_bytes < 4 * 2**30  # states are q·χ²·2 numbers, not 2^q
    assert engine.state_bytes(fmap) == 16 * 100 * 16


def test_a_q64_nystroem_model_trains_pickles_and_predicts():
    from components.data.preprocessing import fit_preprocessor, stratified_split
    from components.training.models import fit_quantum_model

    rng = np.random.default_rng(0)
    n, q = 160, 64
    x = rng.normal(size=(n, q))
    y = (x[:, :4].sum(axis=1) > 0).astype(int)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(q)]).assign(target=y)
    split = stratified_split(frame, "target", 0.25, 0)
    pre = fit_preprocessor(split, q, FeatureMap("zz", q).angle_range)
    trained = fit_quantum_model(
        split,
        pre,
        method="nystroem",
        landmarks=12,
        exact_max_rows=5000,
        feature_map="zz",
        reps=2,
        entanglement="linear",
        backend="mps",
        seed=0,
    )
    assert trained.params["serving_backend"] == "mps"
    model = pickle.loads(pickle.dumps(trained.model))
    rows = split.test.drop(columns=["target"]).head(5)
    assert list(model.predict(rows)) == list(trained.model.predict(rows))


def test_shot_based_models_serve_wide_registers_with_mps():
    from components.training.models import serving_backend

    assert serving_backend(24) == "statevector" and serving_backend(25) == "mps"
