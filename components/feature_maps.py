"""Parameterised feature-map circuits, described once and realised by every backend.

``FeatureMap`` is a small value object (kind, qubits, reps, entanglement). The exact engine
(:mod:`components.quantum.statevector`) evaluates it with NumPy; ``components.quantum.backends.qiskit.circuits.feature_map_circuit`` builds the same
circuit for Qiskit-based backends and for cross-checks against qiskit-machine-learning.

Kinds
- ``zz``: Qiskit's ``ZZFeatureMap``: per repetition, H on every qubit, P(2 x_i) on each qubit,
  then CX-P(2 (pi - x_i)(pi - x_j))-CX on each entangled pair. Inputs in [0, pi].
- ``angle``: angle embedding, one R_Y(x_i) (or R_X) per qubit on |0>. Inputs in [0, pi].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from components.errors import ConfigError

FEATURE_MAP_KINDS = ("zz", "angle")
ENTANGLEMENTS = ("linear", "circular", "full")
ROTATIONS = ("x", "y")
#: Largest register a *dense* exact engine accepts (2**24 amplitudes per sample is 256 MiB);
#: the dense backends check it (:func:`check_dense_width`). Wider registers run on the
#: ``mps`` backend (exact for bounded-bond maps) or on devices.
MAX_QUBITS = 24
#: Largest register any feature map describes (devices and the MPS engine).
MAX_REGISTER_QUBITS = 1024


@dataclass(frozen=True)
class FeatureMap:
    kind: str = "zz"
    n_qubits: int = 4
    reps: int = 2
    entanglement: str = "linear"
    rotation: str = "y"

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_MAP_KINDS:
            raise ConfigError(
                f"unknown feature map {self.kind!r}; use one of {list(FEATURE_MAP_KINDS)}",
                field="feature_map",
            )
        if not isinstance(self.n_qubits, int) or not 1 <= self.n_qubits <= MAX_REGISTER_QUBITS:
            raise ConfigError(
                f"must be an integer from 1 to {MAX_REGISTER_QUBITS} (dense statevector "
                f"backends: up to {MAX_QUBITS}), got {self.n_qubits!r}",
                field="n_qubits",
            )
        if not isinstance(self.reps, int) or self.reps < 1:
            raise ConfigError(f"must be a positive integer, got {self.reps!r}", field="reps")
        if self.entanglement not in ENTANGLEMENTS:
            raise ConfigError(
                f"unknown entanglement {self.entanglement!r}; use one of {list(ENTANGLEMENTS)}",
                field="entanglement",
            )
        if self.rotation not in ROTATIONS:
            raise ConfigError(
                f"unknown rotation {self.rotation!r}; use one of {list(ROTATIONS)}",
                field="rotation",
            )

    @property
    def angle_range(self) -> tuple[float, float]:
        """The input range the preprocessing rescales features into."""
        return (0.0, math.pi)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Entangled qubit pairs, in Qiskit's order."""
        if self.kind != "zz" or self.n_qubits < 2:
            return []
        linear = [(i, i + 1) for i in range(self.n_qubits - 1)]
        if self.entanglement == "linear":
            return linear
        if self.entanglement == "circular":  # Qiskit: the wrap-around pair first, if q > 2
            return ([(self.n_qubits - 1, 0)] if self.n_qubits > 2 else []) + linear
        return list(combinations(range(self.n_qubits), 2))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def gates(self) -> list[tuple[str, tuple[int, ...]]]:
        """The circuit as (gate, qubits), in order: the same gates ``feature_map_circuit(fmap).decompose()``
        has, without needing qiskit (used for the circuit depth in lineage)."""
        if self.kind == "angle":
            return [(f"r{self.rotation}", (q,)) for q in range(self.n_qubits)]
        out: list[tuple[str, tuple[int, ...]]] = []
        for _ in range(self.reps):
            out += [g for q in range(self.n_qubits) for g in (("h", (q,)), ("p", (q,)))]
            for i, j in self.pairs:
                out += [("cx", (i, j)), ("p", (j,)), ("cx", (i, j))]
        return out

    def depth(self) -> int:
        """Circuit depth (as-soon-as-possible layering of :meth:`gates`)."""
        level = [0] * self.n_qubits
        for _, qubits in self.gates():
            top = max(level[q] for q in qubits) + 1
            for q in qubits:
                level[q] = top
        return max(level, default=0)

    def check_dense_width(self, backend: str) -> None:
        """ConfigError when the register is too wide for a dense statevector backend."""
        if self.n_qubits > MAX_QUBITS:
            gib = 16 * 2**self.n_qubits / 2**30
            raise ConfigError(
                f"{self.n_qubits} qubits is above {MAX_QUBITS}, the widest register the dense "
                f"backend {backend!r} holds ({gib:,.0f} GiB of amplitudes per row); use "
                "quantum_backend=mps, the exact matrix-product-state engine for wide registers "
                "(zz with linear/circular entanglement, angle maps)",
                field="n_qubits",
            )

    def two_qubit_gates(self) -> int:
        return sum(1 for _, qubits in self.gates() if len(qubits) == 2)
