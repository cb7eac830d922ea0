"""The kernel fan-out steps: plan the row tiles from the data step's lineage, compute one
tile from the prepared data, assemble the tiles again (the tile maths is
:mod:`components.quantum.tiles`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from components.data.prepared import load_prepared
from components.feature_maps import FeatureMap
from components.quantum.backends import get_backend, is_exact_backend
from components.quantum.tiles import KernelTile, assemble, compute_tile, plan_tiles


def read_sizes(lineage_path: str) -> tuple[int, int]:
    lineage = json.loads(Path(lineage_path).read_text())
    return int(lineage["n_train"]), int(lineage["n_test"])


def plan(lineage_path: str, quantum_backend: str, *, min_rows: int,
         tile_rows: int) -> list[KernelTile]:
    """Row tiles for the prepared data on ``quantum_backend`` (one "none" tile: no fan-out)."""
    n_train, n_test = read_sizes(lineage_path)
    return plan_tiles(n_train, n_test, exact=is_exact_backend(quantum_backend),
                      min_rows=min_rows, tile_rows=tile_rows)


def compute(tile: KernelTile, *, train_path: str, test_path: str, preprocessor_path: str,
            lineage_path: str, feature_map: str, reps: int, entanglement: str,
            quantum_backend: str) -> np.ndarray | None:
    """One tile's kernel rows against every train row (None for the "none" tile)."""
    if tile.part == "none":
        return None
    split, pre, _ = load_prepared(train_path, test_path, preprocessor_path, lineage_path)
    x_train = pre.transform(split.xy("train")[0])
    x_test = pre.transform(split.xy("test")[0])
    fmap = FeatureMap(kind=feature_map, n_qubits=x_train.shape[1], reps=reps,
                      entanglement=entanglement)
    return compute_tile(tile, get_backend(quantum_backend), fmap, x_train, x_test)


def assemble_blocks(parts: list[Any], lineage_path: str) -> Any:
    """The train Gram and test kernel from every tile's block (None when not fanned out)."""
    n_train, n_test = read_sizes(lineage_path)
    return assemble(parts, n_train, n_test)
