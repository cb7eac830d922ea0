"""Exact, batched statevector evaluation of feature maps, and kernels from statevectors.

One statevector per sample; the fidelity kernel is ``|S_x S_y^H|^2`` by one complex matrix
product (computed in row tiles so working memory beyond the output stays bounded); never one
circuit execution per pair.

The ZZ map is exploited structurally: each repetition is a Hadamard layer followed by a
*diagonal* phase layer. The phases for all basis states of all samples come from one real
matrix product (features x bit-parities), and the Hadamard layer is a Walsh-Hadamard
transform done as two small real matrix products over a split of the qubits.

Qubit 0 is the least significant bit of the basis index (Qiskit's convention).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from components.quantum.feature_maps import FeatureMap

log = logging.getLogger(__name__)

#: Default working-memory bound for one kernel tile (bytes of complex intermediate).
DEFAULT_TILE_BYTES = 256 * 1024 * 1024

ProgressFn = Callable[[int, int], None]


@lru_cache(maxsize=32)
def _bits(n: int) -> np.ndarray:
    """(2**n, n) table of basis-state bits, qubit 0 least significant."""
    idx = np.arange(2**n, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n)) & 1).astype(np.float64)


@lru_cache(maxsize=32)
def _zz_phase_table(n: int, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(n + len(pairs), 2**n): which single-qubit bits and pair parities each basis state has."""
    bits = _bits(n)
    cols = [bits[:, i] for i in range(n)]
    cols += [np.logical_xor(bits[:, i], bits[:, j]).astype(np.float64) for i, j in pairs]
    return np.ascontiguousarray(np.stack(cols, axis=0))


@lru_cache(maxsize=16)
def _hadamard(n: int) -> np.ndarray:
    """Normalised real Hadamard matrix H^{(x)n} of size 2**n."""
    h = np.array([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2.0)
    out = np.ones((1, 1))
    for _ in range(n):
        out = np.kron(out, h)
    return out


def _walsh_hadamard(states: np.ndarray, n: int) -> np.ndarray:
    """Apply H on every qubit to a batch of statevectors (N, 2**n)."""
    lo = n // 2
    hi = n - lo
    t = states.reshape(states.shape[0], 2**hi, 2**lo)
    if lo:
        t = t @ _hadamard(lo)
    if hi:
        t = _hadamard(hi) @ t
    return t.reshape(states.shape[0], 2**n)


def _check_inputs(fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != fmap.n_qubits:
        raise ValueError(f"expected an array of shape (n_samples, {fmap.n_qubits}), "
                         f"got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("feature-map inputs contain NaN or infinite values")
    return x


def zz_statevectors(fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
    n = fmap.n_qubits
    pairs = tuple(fmap.pairs)
    feats = [x]
    if pairs:
        i, j = np.array(pairs).T
        feats.append((np.pi - x[:, i]) * (np.pi - x[:, j]))
    angles = 2.0 * (np.concatenate(feats, axis=1) @ _zz_phase_table(n, pairs))
    phases = np.exp(1j * angles)
    states = phases * (1.0 / math.sqrt(2**n))
    for _ in range(fmap.reps - 1):
        states = _walsh_hadamard(states, n)
        states *= phases
    return states


def angle_statevectors(fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
    c, s = np.cos(x / 2.0), np.sin(x / 2.0)
    one = -1j * s if fmap.rotation == "x" else s.astype(np.complex128)
    states = np.ones((x.shape[0], 1), dtype=np.complex128)
    for q in range(fmap.n_qubits):
        qubit = np.stack([c[:, q].astype(np.complex128), one[:, q]], axis=1)  # (N, 2)
        states = (qubit[:, :, None] * states[:, None, :]).reshape(x.shape[0], -1)
    return states


def statevectors(fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
    """Statevectors (N, 2**n_qubits) of the feature map applied to each row of ``x``."""
    x = _check_inputs(fmap, x)
    if fmap.kind == "zz":
        return zz_statevectors(fmap, x)
    return angle_statevectors(fmap, x)


def fidelity_kernel(states_x: np.ndarray, states_y: np.ndarray | None = None, *,
                    tile_bytes: int = DEFAULT_TILE_BYTES,
                    progress: ProgressFn | None = None) -> np.ndarray:
    """Fidelity kernel ``K[i, j] = |<x_i|y_j>|^2`` from statevectors, computed in row tiles.

    With ``states_y=None`` the Gram matrix of ``states_x`` (exactly symmetric, unit diagonal).
    """
    symmetric = states_y is None
    ys = states_x if symmetric else states_y
    n_x, n_y = states_x.shape[0], ys.shape[0]
    out = np.empty((n_x, n_y), dtype=np.float64)
    if n_x == 0 or n_y == 0:
        return out
    ys_h = np.ascontiguousarray(ys.conj().T)
    rows = max(1, min(n_x, tile_bytes // (16 * n_y)))
    for start in range(0, n_x, rows):
        stop = min(n_x, start + rows)
        block = states_x[start:stop] @ ys_h
        np.square(block.real, out=out[start:stop])
        out[start:stop] += np.square(block.imag)
        if progress is not None:
            progress(stop, n_x)
    if symmetric:
        out = 0.5 * (out + out.T)
        np.fill_diagonal(out, 1.0)
    return out


def pauli_expectations(states: np.ndarray, n_qubits: int) -> np.ndarray:
    """Projected quantum features: per qubit (<X>, <Y>, <Z>), shape (N, 3 * n_qubits)."""
    n = states.shape[0]
    out = np.empty((n, 3 * n_qubits), dtype=np.float64)
    for q in range(n_qubits):
        t = states.reshape(n, 2 ** (n_qubits - q - 1), 2, 2**q)
        a, b = t[:, :, 0, :], t[:, :, 1, :]
        cross = np.einsum("nij,nij->n", a.conj(), b)
        out[:, 3 * q] = 2.0 * cross.real
        out[:, 3 * q + 1] = 2.0 * cross.imag
        out[:, 3 * q + 2] = (np.einsum("nij,nij->n", a.conj(), a).real
                             - np.einsum("nij,nij->n", b.conj(), b).real)
    return out


class ProgressLogger:
    """Logs ``done/total`` at most every ``every_s`` seconds (and at the end)."""

    def __init__(self, what: str, every_s: float = 5.0) -> None:
        self.what, self.every_s = what, every_s
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= self.every_s:
            self.last = now
            log.info("%s: %d/%d rows (%.0f%%), %.1f s", self.what, done, total,
                     100.0 * done / max(total, 1), now - self.start)
