"""The base of exact backends: a subclass gives ``statevectors``; the kernel is one tiled
matrix product of them and the projected features come from the same states."""

from __future__ import annotations

from typing import Any

import numpy as np

from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.budget import WorkEstimate
from components.quantum.calibration import exact_simulator_snapshot
from components.quantum.execution import ExecutionContext


class ExactStatevectorBackend:
    """Base for exact backends: subclasses give ``statevectors``; the kernel is one tiled
    matrix product of them, the projected features come from the same states."""

    exact = True
    family = ""
    simulator = ""

    def __init__(
        self,
        name: str,
        ctx: ExecutionContext | None = None,
        tile_bytes: int = sv.DEFAULT_TILE_BYTES,
    ) -> None:
        self.name = name
        self.ctx = ctx or ExecutionContext()
        self.tile_bytes = tile_bytes

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state_bytes(self, fmap: FeatureMap) -> int:
        """Memory of one row's dense statevector."""
        return 16 * 2**fmap.n_qubits

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        fmap.check_dense_width(self.name)
        what = f"{self.name} {'train Gram' if y is None else 'kernel vs. reference'}"
        self.ctx.clock.check_time(what)
        sx = self.statevectors(fmap, x)
        sy = None if y is None else self.statevectors(fmap, y)
        return sv.fidelity_kernel(sx, sy, tile_bytes=self.tile_bytes, progress=self._progress(what))

    def _progress(self, what: str) -> sv.ProgressFn:
        logger = sv.ProgressLogger(what)

        def report(done: int, total: int) -> None:
            logger(done, total)
            self.ctx.clock.check_time(what)

        return report

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        fmap.check_dense_width(self.name)
        return sv.pauli_expectations(self.statevectors(fmap, x), fmap.n_qubits)

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """One state preparation per new row (the reference rows' states are cached)."""
        return WorkEstimate(circuits=n_x, shots_per_circuit=0, jobs=0)

    def estimate_features(self, fmap: FeatureMap, n_rows: int) -> WorkEstimate:
        """Projected features: one state preparation per row."""
        return WorkEstimate(circuits=n_rows, shots_per_circuit=0, jobs=0)

    def prepare(self, fmap: FeatureMap) -> None:
        """Nothing to connect or compile for an in-process simulator; a register too wide
        for dense statevectors is refused (suggesting ``mps``)."""
        fmap.check_dense_width(self.name)

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        return exact_simulator_snapshot(self.name, self.family, self.simulator, fmap)
