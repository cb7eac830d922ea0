"""``statevector``: the exact default, batched NumPy statevectors (no SDK).

Options: ``?precision=complex128|complex64`` (kernel within ~1e-6, half the memory) and
``?tile_mb=N`` (the kernel's working memory, default 256 MiB).
"""

from __future__ import annotations

import numpy as np

from components.errors import BackendError
from components.feature_maps import MAX_QUBITS, FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends.exact import ExactStatevectorBackend
from components.quantum.backends.registry import (
    BackendFamily,
    BackendName,
    QuantumBackend,
    always_exact,
    register_backend,
)
from components.quantum.execution import ExecutionContext


class StatevectorBackend(ExactStatevectorBackend):
    """The exact default: batched NumPy statevectors, kernel by one tiled matrix product."""

    family = "statevector"
    simulator = "qubeflow.statevector (NumPy, complex128)"

    def __init__(
        self,
        ctx: ExecutionContext | None = None,
        tile_bytes: int = sv.DEFAULT_TILE_BYTES,
        precision: str = "complex128",
    ) -> None:
        super().__init__(
            "statevector" if precision == "complex128" else f"statevector?precision={precision}",
            ctx,
            tile_bytes,
        )
        self.precision = precision
        self.simulator = f"qubeflow.statevector (NumPy, {precision})"

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        return sv.statevectors(fmap, x, self.precision)


def create(parsed: BackendName, ctx: ExecutionContext) -> QuantumBackend:
    extra = set(parsed.options) - {"precision", "tile_mb"}
    if parsed.target or extra:
        raise BackendError(
            f"'statevector' takes only ?precision=complex128|complex64 and "
            f"?tile_mb=N, got {str(parsed)!r}",
            field="quantum_backend",
        )
    precision = parsed.options.get("precision", "complex128")
    if precision not in sv.PRECISIONS:
        raise BackendError(
            f"precision={precision!r} must be one of {list(sv.PRECISIONS)}", field="quantum_backend"
        )
    tile_mb = parsed.options.get("tile_mb", str(sv.DEFAULT_TILE_BYTES // 2**20))
    if not tile_mb.isdigit() or int(tile_mb) < 1:
        raise BackendError(
            f"tile_mb={tile_mb!r} must be a positive integer (MiB)", field="quantum_backend"
        )
    return StatevectorBackend(ctx, tile_bytes=int(tile_mb) * 2**20, precision=precision)


register_backend(
    BackendFamily(
        "statevector",
        create,
        "statevector",
        "exact batched NumPy statevector simulator (default); ?precision=complex64 (kernel "
        "within ~1e-6, half the memory), ?tile_mb=N (kernel working memory, default 256)",
        is_exact=always_exact,
        sdk_packages=("numpy",),
        max_qubits=MAX_QUBITS,
    )
)
