"""Fan-out over row tiles: plans only when it pays, tiles ship rows x m (or rows x 3q)
features and never N x N blocks, and the assembled features equal the single-process ones."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import ConfigError
from components.feature_maps import FeatureMap
from components.quantum.backends import get_backend
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
from components.quantum.transformers import NystroemQuantumFeatures, ProjectedQuantumFeatures


def test_plans_fan_out_only_linear_methods_when_worth_it():
    tiles = plan_tiles(
        250,
        70,
        method="nystroem",
        landmarks=32,
        estimated_seconds=500,
        min_seconds=100,
        tile_rows=100,
    )
    assert [(t.part, t.start, t.stop) for t in tiles] == [
        ("train", 0, 100),
        ("train", 100, 200),
        ("train", 200, 250),
        ("test", 0, 70),
    ]
    assert {t.count for t in tiles} == {4} and {t.landmarks for t in tiles} == {32}
    none = [KernelTile("none")]
    assert (
        plan_tiles(
            250,
            70,
            method="nystroem",
            landmarks=32,
            estimated_seconds=50,
            min_seconds=100,
            tile_rows=100,
        )
        == none
    )  # not worth a task each
    assert (
        plan_tiles(
            250,
            70,
            method="fidelity",
            landmarks=0,
            estimated_seconds=500,
            min_seconds=0,
            tile_rows=100,
        )
        == none
    )  # never N x N blocks
    assert (
        plan_tiles(
            250,
            70,
            method="projected",
            landmarks=0,
            estimated_seconds=None,
            min_seconds=0,
            tile_rows=100,
        )
        == none
    )  # shot-based: time unknown
    with pytest.raises(ConfigError, match="kernel_tile_rows"):
        plan_tiles(
            10, 10, method="nystroem", landmarks=2, estimated_seconds=1, min_seconds=0, tile_rows=0
        )
    with pytest.raises(ConfigError, match="kernel_fanout_min_seconds"):
        plan_tiles(
            10, 10, method="nystroem", landmarks=2, estimated_seconds=1, min_seconds=-1, tile_rows=5
        )
    # KFP hands ParallelFor items over as JSON: ints may arrive as floats.
    assert KernelTile.from_dict({"part": "test", "start": 5.0, "stop": 9.0}).rows == 4


@pytest.mark.parametrize("method", ["nystroem", "projected"])
def test_fanned_out_features_equal_the_single_process_ones(tmp_path, method):
    fmap = FeatureMap("zz", 5)
    rng = np.random.default_rng(3)
    x_train, x_test = rng.uniform(0, 0.3, (57, 5)), rng.uniform(0, 0.3, (19, 5))
    y_train = rng.integers(0, 2, 57)
    backend = get_backend("statevector")
    tiles = plan_tiles(
        57, 19, method=method, landmarks=12, estimated_seconds=1.0, min_seconds=0.0, tile_rows=16
    )
    for i, tile in enumerate(tiles):  # as the ParallelFor tasks do, through artifacts
        save_block(
            tmp_path / f"b{i}",
            tile,
            compute_tile(tile, backend, fmap, x_train, y_train, x_test, seed=5),
        )
    train, test = assemble([load_block(tmp_path / f"b{i}") for i in range(len(tiles))], 57, 19)
    if method == "nystroem":
        single = NystroemQuantumFeatures(feature_map="zz", n_landmarks=12, random_state=5)
        single.fit(x_train, y_train)
        assert train.shape == (57, 12) and train.dtype == np.float32
        np.testing.assert_allclose(
            single.features_from_kernel(train), single.transform(x_train), atol=1e-5
        )
        np.testing.assert_allclose(test, single.landmark_kernel(x_test), atol=1e-6)
    else:
        single = ProjectedQuantumFeatures(feature_map="zz").fit(x_train)
        np.testing.assert_allclose(train, single.transform(x_train), atol=1e-12)
        np.testing.assert_allclose(test, single.transform(x_test), atol=1e-12)
    save_kernel(tmp_path / "k", (train, test), len(tiles))
    np.testing.assert_array_equal(load_kernel(tmp_path / "k")[0], train)
    save_kernel(tmp_path / "none", None, 1)
    assert load_kernel(tmp_path / "none") is None and load_kernel(None) is None


def test_missing_tiles_are_an_error_not_a_silent_hole(tmp_path):
    fmap = FeatureMap("zz", 3)
    rng = np.random.default_rng(0)
    x_train, x_test = rng.uniform(0, 0.3, (30, 3)), rng.uniform(0, 0.3, (10, 3))
    backend = get_backend("statevector")
    tiles = plan_tiles(
        30,
        10,
        method="projected",
        landmarks=0,
        estimated_seconds=1.0,
        min_seconds=0.0,
        tile_rows=10,
    )
    parts = [
        (t, compute_tile(t, backend, fmap, x_train, np.zeros(30), x_test, seed=0)) for t in tiles
    ]
    with pytest.raises(ValueError, match="do not cover the train rows"):
        assemble(parts[1:], 30, 10)
    assert assemble([(KernelTile("none"), None)], 30, 10) is None


def test_a_plan_over_the_quantum_budget_runs_no_tile(tmp_path):
    """The plan prices the method first: a kernel estimated above ``quantum_max_seconds`` gets
    no tile task (the quantum step then refuses at once and falls back), where within budget
    the same data fans out."""
    import dataclasses
    import json

    from components.steps.kernel_tiles.step import plan
    from tests.step_options import quantum_options

    lineage = tmp_path / "lineage.json"
    lineage.write_text(
        json.dumps(
            {
                "n_train": 60_000,
                "n_test": 20_000,
                "options": {"n_qubits": 8},
                "profile": {"n_features": 30},
            }
        )
    )
    within = quantum_options(method="nystroem", landmarks=256)
    tiles = plan(str(lineage), within, min_seconds=0, tile_rows=10_000)
    assert len(tiles) == 8 and {t.part for t in tiles} == {"train", "test"}
    over = dataclasses.replace(within, budget=dataclasses.replace(within.budget, max_seconds=1e-6))
    assert plan(str(lineage), over, min_seconds=0, tile_rows=10_000) == [KernelTile("none")]
