"""The kernel cut into tiles and assembled again equals the single-process kernel; plans,
bounded tiles and the precision option."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import ConfigError
from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends import get_backend, is_exact_backend
from components.quantum.tiles import (
    KernelTile,
    assemble,
    compute_tile,
    load_block,
    load_kernel,
    plan_tiles,
    save_block,
    save_kernel,
)


def test_plans_cover_both_matrices_or_do_not_fan_out():
    tiles = plan_tiles(250, 70, exact=True, min_rows=100, tile_rows=100)
    assert [(t.part, t.start, t.stop) for t in tiles] == [
        ("train", 0, 100), ("train", 100, 200), ("train", 200, 250), ("test", 0, 70)]
    assert {t.count for t in tiles} == {4} and [t.index for t in tiles] == [0, 1, 2, 3]
    assert plan_tiles(99, 30, exact=True, min_rows=100, tile_rows=10) == [KernelTile("none")]
    assert plan_tiles(500, 30, exact=False, min_rows=100, tile_rows=10) == [KernelTile("none")]
    assert plan_tiles(500, 30, exact=True, min_rows=0, tile_rows=10) == [KernelTile("none")]
    with pytest.raises(ConfigError, match="kernel_tile_rows"):
        plan_tiles(10, 10, exact=True, min_rows=1, tile_rows=0)
    # KFP hands ParallelFor items over as JSON: ints may arrive as floats.
    assert KernelTile.from_dict({"part": "test", "start": 5.0, "stop": 9.0}).rows == 4


def test_fanned_out_kernel_equals_the_single_process_one(tmp_path):
    fmap = FeatureMap("zz", 5)
    rng = np.random.default_rng(3)
    x_train, x_test = rng.uniform(0, 0.3, (57, 5)), rng.uniform(0, 0.3, (19, 5))
    backend = get_backend("statevector")
    tiles = plan_tiles(57, 19, exact=True, min_rows=10, tile_rows=16)
    for i, tile in enumerate(tiles):  # as the ParallelFor tasks do, through artifacts
        save_block(tmp_path / f"b{i}", tile, compute_tile(tile, backend, fmap, x_train, x_test))
    gram, test = assemble([load_block(tmp_path / f"b{i}") for i in range(len(tiles))], 57, 19)
    states = sv.statevectors(fmap, x_train)
    np.testing.assert_allclose(gram, sv.fidelity_kernel(states), atol=1e-12)
    np.testing.assert_allclose(test, sv.fidelity_kernel(sv.statevectors(fmap, x_test), states),
                               atol=1e-12)
    np.testing.assert_array_equal(gram, gram.T)
    save_kernel(tmp_path / "k", (gram, test), len(tiles))
    loaded = load_kernel(tmp_path / "k")
    np.testing.assert_array_equal(loaded[0], gram)
    save_kernel(tmp_path / "none", None, 1)
    assert load_kernel(tmp_path / "none") is None and load_kernel(None) is None


def test_missing_tiles_are_an_error_not_a_silent_hole(tmp_path):
    fmap, backend = FeatureMap("zz", 3), get_backend("statevector")
    x = np.random.default_rng(0).uniform(0, 0.3, (20, 3))
    tiles = plan_tiles(20, 5, exact=True, min_rows=1, tile_rows=8)
    blocks = [(t, compute_tile(t, backend, fmap, x, x[:5])) for t in tiles[1:]]
    with pytest.raises(ValueError, match="do not cover"):
        assemble(blocks, 20, 5)


def test_exactness_is_known_from_the_name():
    assert is_exact_backend("statevector") and is_exact_backend("pennylane:lightning.qubit")
    assert is_exact_backend("qiskit-aer")
    assert not is_exact_backend("qiskit-aer?shots=100")
    assert not is_exact_backend("ibm:ibm_brisbane")


def test_gram_tiles_bound_working_memory_and_match_one_product():
    fmap = FeatureMap("zz", 6)
    states = sv.statevectors(fmap, np.random.default_rng(1).uniform(0, 1, (300, 6)))
    full = np.abs(states @ states.conj().T) ** 2
    np.fill_diagonal(full, 1.0)
    seen = []
    tiny = sv.fidelity_kernel(states, tile_bytes=16 * 300 * 7,
                              progress=lambda done, total: seen.append(done))
    np.testing.assert_allclose(tiny, full, atol=1e-12)
    assert len(seen) == 43 and seen[-1] == 300  # 7-row tiles: bounded by tile_bytes


def test_complex64_option_halves_memory_within_its_stated_accuracy():
    fmap = FeatureMap("zz", 8)
    x = np.random.default_rng(2).uniform(0, 0.3, (200, 8))
    s64, s32 = sv.statevectors(fmap, x), sv.statevectors(fmap, x, precision="complex64")
    assert s32.dtype == np.complex64 and s32.nbytes * 2 == s64.nbytes
    err = np.abs(sv.fidelity_kernel(s32) - sv.fidelity_kernel(s64)).max()
    assert err < 1e-5  # the README states ~1e-6
    with pytest.raises(ValueError, match="precision"):
        sv.statevectors(fmap, x, precision="complex32")


def test_statevector_backend_options():
    fmap = FeatureMap("zz", 4)
    x = np.random.default_rng(5).uniform(0, 0.3, (30, 4))
    exact = get_backend("statevector").kernel(fmap, x)
    fast = get_backend("statevector?precision=complex64&tile_mb=1")
    assert fast.name == "statevector?precision=complex64"
    assert np.abs(fast.kernel(fmap, x) - exact).max() < 1e-5
    assert fast.snapshot(fmap)["simulator"]["name"].endswith("complex64)")
    from components.errors import BackendError

    with pytest.raises(BackendError, match="precision='complex32'"):
        get_backend("statevector?precision=complex32")
    with pytest.raises(BackendError, match="tile_mb='0'"):
        get_backend("statevector?tile_mb=0")
