"""The kernel fan-out steps: plan the row tiles (the same method plan the quantum step makes,
priced on this data), compute one tile from the prepared data, assemble the tiles again (the
tile maths is :mod:`components.quantum.tiles`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from components.feature_maps import FeatureMap
from components.quantum.backends import get_backend, is_exact_backend
from components.quantum.failures import QuantumStepFailure
from components.quantum.methods import DataShape
from components.quantum.tiles import KernelTile, assemble, compute_tile, plan_tiles
from components.steps.train_quantum.step import plan_for

log = logging.getLogger(__name__)


def read_lineage(lineage_path: str) -> dict[str, Any]:
    return json.loads(Path(lineage_path).read_text())


def plan(
    lineage_path: str, options: Any, *, min_seconds: float, tile_rows: int
) -> list[KernelTile]:
    """Row tiles for the prepared data (``options``: the quantum step's ``QuantumOptions``);
    one "none" tile when the plan does not fan out (or the step will refuse anyway)."""
    lineage = read_lineage(lineage_path)
    n_train, n_test = int(lineage["n_train"]), int(lineage["n_test"])
    prep = lineage["options"]
    fmap = FeatureMap(
        kind=options.feature_map,
        n_qubits=int(prep["n_qubits"]),
        reps=options.reps,
        entanglement=options.entanglement,
    )
    no_fanout = [KernelTile("none")]
    if not is_exact_backend(options.backend):
        return no_fanout  # a shot-based step groups its circuits into jobs itself
    backend = get_backend(options.backend)
    shape = DataShape(n_train, n_test, int(lineage["profile"]["n_features"]))
    try:
        method = plan_for(options, backend, fmap, shape)
    except QuantumStepFailure as failure:  # the quantum step refuses and says why
        log.info("no fan-out: %s", failure.summary)
        return no_fanout
    log.info(
        "method %s (%s), estimated kernel time %s s",
        method.method,
        method.reason,
        method.cost.seconds and round(method.cost.seconds, 1),
    )
    return plan_tiles(
        n_train,
        n_test,
        method=method.method,
        landmarks=method.landmarks,
        estimated_seconds=method.cost.seconds,
        min_seconds=min_seconds,
        tile_rows=tile_rows,
    )


def route(quantum_enabled: bool, tiles: list[KernelTile]) -> str:
    """ "classical" (quantum step off), "fanout" (real tiles) or "single" (no fan-out)."""
    if not quantum_enabled:
        return "classical"
    return "fanout" if tiles and tiles[0].part != "none" else "single"


def compute(
    tile: KernelTile,
    *,
    train_path: str,
    test_path: str,
    preprocessor_path: str,
    lineage_path: str,
    feature_map: str,
    reps: int,
    entanglement: str,
    quantum_backend: str,
    seed: int,
) -> np.ndarray | None:
    """One tile's feature rows (None for the "none" tile)."""
    if tile.part == "none":
        return None
    from components.data.prepared import load_prepared  # not needed to plan

    split, pre, _ = load_prepared(train_path, test_path, preprocessor_path, lineage_path)
    x_train, y_train = split.xy("train")
    angles_train = pre.transform(x_train)
    angles_test = pre.transform(split.xy("test")[0]) if tile.part == "test" else angles_train[:0]
    fmap = FeatureMap(
        kind=feature_map, n_qubits=angles_train.shape[1], reps=reps, entanglement=entanglement
    )
    return compute_tile(
        tile,
        get_backend(quantum_backend),
        fmap,
        angles_train,
        np.asarray(y_train),
        angles_test,
        seed=seed,
    )


def assemble_blocks(parts: list[Any], lineage_path: str) -> Any:
    """The train and test feature blocks from every tile (None when not fanned out)."""
    lineage = read_lineage(lineage_path)
    return assemble(parts, int(lineage["n_train"]), int(lineage["n_test"]))
