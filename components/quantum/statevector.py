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

from components.feature_maps import FeatureMap

log = logging.getLogger(__name__)

#: Default working-memory bound for one kernel tile (bytes of complex intermediate).
DEFAULT_TILE_BYTES = 256 * 1024 * 1024

ProgressFn = Callable[[int, int], None]
#: Row-tile height for the Gram matrix (upper block triangle by GEMM, then mirrored).
SYMMETRIC_TILE_ROWS = 256


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
def _hadamard(n: int, dtype: str = "float64") -> np.ndarray:
    """Normalised real Hadamard matrix H^{(x)n} of size 2**n."""
    h = np.array([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2.0)
    out = np.ones((1, 1))
    for _ in range(n):
        out = np.kron(out, h)
    return out.astype(dtype)


def check_inputs(fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
    """``x`` as float64 (N, n_qubits), finite; ValueError naming the problem otherwise."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != fmap.n_qubits:
        raise ValueError(f"expected an array of shape (n_samples, {fmap.n_qubits}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("feature-map inputs contain NaN or infinite values")
    return x


#: Supported precisions: amplitudes and kernel products in complex128 (exact to ~1e-15) or
#: complex64 (kernel entries within ~1e-6, half the memory, about twice the speed).
PRECISIONS = {"complex128": np.float64, "complex64": np.float32}


def _real_dtype(precision: str) -> type:
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise ValueError(
            f"precision must be one of {list(PRECISIONS)}, got {precision!r}"
        ) from None


def _phase_angles(x: np.ndarray, pairs: tuple[tuple[int, int], ...], qubits: range) -> np.ndarray:
    """Phase angles over the basis states of ``qubits`` (a contiguous block) from the
    single-qubit terms of those qubits and the pairs inside the block: (N, 2**len(qubits))."""
    first = qubits.start
    inside = tuple((i - first, j - first) for i, j in pairs if i in qubits and j in qubits)
    feats = [x[:, first : qubits.stop]]
    if inside:
        i, j = (np.array(inside) + first).T
        feats.append((np.pi - x[:, i]) * (np.pi - x[:, j]))
    return (2.0 * np.concatenate(feats, axis=1)) @ _zz_phase_table(len(qubits), inside)


def _expi(angles: np.ndarray, dtype: type) -> np.ndarray:
    out = np.empty(angles.shape, dtype=dtype)
    np.cos(angles, out=out.real, casting="same_kind")
    np.sin(angles, out=out.imag, casting="same_kind")
    return out


def _zz_phase_factors(
    x: np.ndarray, n: int, pairs: tuple[tuple[int, int], ...], dtype: type
) -> tuple[np.ndarray, np.ndarray] | None:
    """The phase layer as a sum of S <= 2 outer products, when it is one.

    Split the qubits into a low block (qubits < m) and a high block. The phase of basis
    state (h, l) is ``high(h) * low(l)`` times the terms of pairs crossing the split; with at
    most one crossing pair (i, j) (linear entanglement), ``phase = sum_s high_s (x) low_s``
    where ``high_s`` is ``high`` where qubit j is s (else 0) and ``low_s`` carries the
    crossing term for b_j = s. Returns ``(high_s (N, S, 2**(n-m)), low_s (N, S, 2**m))``, or
    None when more pairs cross (then the layer is computed entry by entry).
    """
    m = n // 2
    pairs = tuple((min(i, j), max(i, j)) for i, j in pairs)  # circular: (n - 1, 0)
    crossing = [(i, j) for i, j in pairs if i < m <= j]
    if m == 0 or len(crossing) > 1:
        return None
    low = _expi(_phase_angles(x, pairs, range(m)), dtype)  # (N, 2**m)
    high = _expi(_phase_angles(x, pairs, range(m, n)), dtype)  # (N, 2**(n-m))
    if not crossing:
        return high[:, None, :], low[:, None, :]
    i, j = crossing[0]
    cross = _expi(2.0 * (np.pi - x[:, i]) * (np.pi - x[:, j]), dtype)[:, None]
    bit_i = ((np.arange(2**m) >> i) & 1).astype(bool)
    bit_j = ((np.arange(2 ** (n - m)) >> (j - m)) & 1).astype(bool)
    highs = np.stack([np.where(bit_j == bool(s), high, 0) for s in (0, 1)], axis=1)
    lows = np.stack([np.where(bit_i != bool(s), low * cross, low) for s in (0, 1)], axis=1)
    return highs.astype(dtype, copy=False), lows.astype(dtype, copy=False)


def _outer_sum(high: np.ndarray, low: np.ndarray, out: np.ndarray) -> None:
    """``out[n] = sum_s high[n, s] (x) low[n, s]`` as one batched matmul (K = S)."""
    np.matmul(high.transpose(0, 2, 1), low, out=out.reshape(len(out), high.shape[2], -1))


#: Working memory per buffer when building statevectors (rows are processed in chunks).
STATE_CHUNK_BYTES = 16 * 1024 * 1024  # small enough to be reused from the heap, not re-mapped


def zz_statevectors(fmap: FeatureMap, x: np.ndarray, precision: str = "complex128") -> np.ndarray:
    """ZZ feature map: each repetition is H on every qubit, then a *diagonal* phase layer P,
    so ``|phi(x)> = P H ... P H |0>``.

    Structure exploited (see :func:`_zz_phase_factors`): with linear entanglement P is a sum
    of two outer products of half-size vectors, so the first two repetitions,
    ``P H P H |0> = P (H P |+>)`` with ``H (a (x) b) = (H a) (x) (H b)``, cost two half-size
    transforms and three passes over the state: no full-size trig and no full-size transform.
    Further repetitions apply a full Walsh-Hadamard transform as two real GEMMs on the
    complex data viewed as floats (``H_lo (x) I_2`` from the right, batched ``H_hi`` from the
    left). Rows go in chunks with reused buffers: working memory beyond the output is two
    chunk-sized buffers.
    """
    real = _real_dtype(precision)
    cplx = np.complex64 if real is np.float32 else np.complex128
    n_rows, n = x.shape[0], fmap.n_qubits
    dim = 2**n
    m = n // 2
    lo, hi = 2**m, 2 ** (n - m)
    pairs = tuple(fmap.pairs)
    scale = 1.0 / math.sqrt(dim)
    h_lo2 = np.kron(_hadamard(m), np.eye(2)).astype(real)  # acts on (re, im) pairs
    h_hi = _hadamard(n - m, real.__name__)
    out = np.empty((n_rows, dim), dtype=cplx)
    chunk = max(1, min(n_rows, STATE_CHUNK_BYTES // (dim * np.dtype(cplx).itemsize)))
    phases = np.empty((chunk, dim), dtype=cplx)
    spare = np.empty((chunk, dim), dtype=cplx)
    for start in range(0, n_rows, chunk):
        rows = min(chunk, n_rows - start)
        xs = x[start : start + rows]
        ph, sp, state = phases[:rows], spare[:rows], out[start : start + rows]
        factors = _zz_phase_factors(xs, n, pairs, cplx)
        if factors is None:
            ph[...] = _expi(_phase_angles(xs, pairs, range(n)), cplx)
        else:
            _outer_sum(*factors, ph)
        layers = fmap.reps - 1  # full transforms still to apply after the first repetition
        if factors is not None and fmap.reps >= 2:
            high, low = factors  # H P |+>: transform the half-size factors, then expand
            _outer_sum(
                (high @ h_hi.astype(cplx)) * scale,
                low @ _hadamard(m, real.__name__).astype(cplx),
                state,
            )
            state *= ph
            layers -= 1
        else:
            np.multiply(ph, scale, out=state)
        for _ in range(layers):
            fs, fsp = state.view(real), sp.view(real)  # (rows, 2 * dim) floats
            np.matmul(fs.reshape(rows * hi, 2 * lo), h_lo2, out=fsp.reshape(rows * hi, 2 * lo))
            np.matmul(h_hi, fsp.reshape(rows, hi, 2 * lo), out=fs.reshape(rows, hi, 2 * lo))
            state *= ph
    return out


def angle_statevectors(
    fmap: FeatureMap, x: np.ndarray, precision: str = "complex128"
) -> np.ndarray:
    c, s = np.cos(x / 2.0), np.sin(x / 2.0)
    one = -1j * s if fmap.rotation == "x" else s.astype(np.complex128)
    states = np.ones((x.shape[0], 1), dtype=np.complex128)
    for q in range(fmap.n_qubits):
        qubit = np.stack([c[:, q].astype(np.complex128), one[:, q]], axis=1)  # (N, 2)
        states = (qubit[:, :, None] * states[:, None, :]).reshape(x.shape[0], -1)
    return states.astype(np.complex64) if _real_dtype(precision) is np.float32 else states


def statevectors(fmap: FeatureMap, x: np.ndarray, precision: str = "complex128") -> np.ndarray:
    """Statevectors (N, 2**n_qubits) of the feature map applied to each row of ``x``."""
    fmap.check_dense_width("statevector")
    x = check_inputs(fmap, x)
    if fmap.kind == "zz":
        return zz_statevectors(fmap, x, precision)
    return angle_statevectors(fmap, x, precision)


def _abs2_into(block: np.ndarray, out: np.ndarray) -> None:
    """``out = |block|**2`` without complex temporaries."""
    np.multiply(block.real, block.real, out=out)
    out += np.square(block.imag)


def tile_rows(n_rows: int, n_cols: int, itemsize: int, tile_bytes: int) -> int:
    """Rows per tile so one tile's complex product stays within ``tile_bytes``."""
    return max(1, min(n_rows, tile_bytes // max(1, itemsize * n_cols)))


def fidelity_kernel(
    states_x: np.ndarray,
    states_y: np.ndarray | None = None,
    *,
    tile_bytes: int = DEFAULT_TILE_BYTES,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Fidelity kernel ``K[i, j] = |<x_i|y_j>|^2`` from statevectors, computed in row tiles.

    With ``states_y=None`` the Gram matrix of ``states_x``: each row tile is multiplied only
    with the rows from its own start on, so only the upper block triangle is computed (about
    half the flops), then mirrored: exactly symmetric with a unit diagonal. Working memory beyond the
    output and the inputs is one tile's complex product (``tile_bytes``).
    """
    symmetric = states_y is None
    ys = states_x if symmetric else states_y
    n_x, n_y = states_x.shape[0], ys.shape[0]
    out = np.empty((n_x, n_y), dtype=np.float64)
    if n_x == 0 or n_y == 0:
        return out
    rows = tile_rows(n_x, n_y, states_x.itemsize, tile_bytes)
    if symmetric:  # several row tiles, so skipping the lower block triangle saves real work
        rows = min(rows, SYMMETRIC_TILE_ROWS)
    tile = np.empty((rows, n_y), dtype=np.result_type(states_x, ys))  # reused by every tile
    for start in range(0, n_x, rows):
        stop = min(n_x, start + rows)
        first = start if symmetric else 0  # Gram: this tile's rows right of the diagonal
        block = tile[: stop - start, : n_y - first]
        # conj(x_tile) y^T: conjugating the small row tile, not a full copy of y.
        np.matmul(states_x[start:stop].conj(), ys[first:].T, out=block)
        _abs2_into(block, out[start:stop, first:])
        if symmetric:  # mirror into the lower triangle
            out[stop:, start:stop] = out[start:stop, stop:].T
            diag = out[start:stop, start:stop]
            diag[...] = np.triu(diag) + np.triu(diag, 1).T
        if progress is not None:
            progress(stop, n_x)
    if symmetric:
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
        out[:, 3 * q + 2] = (
            np.einsum("nij,nij->n", a.conj(), a).real - np.einsum("nij,nij->n", b.conj(), b).real
        )
    return out


class ProgressLogger:
    """Logs ``done/total`` with the rate and an ETA at most every ``every_s`` seconds (and at
    the end): ``train kernel: 40960/200000 rows (20%), 8123 rows/s, 4.9 s, ETA 19.6 s``."""

    def __init__(self, what: str, every_s: float = 5.0, unit: str = "rows") -> None:
        self.what, self.every_s, self.unit = what, every_s, unit
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= self.every_s:
            self.last = now
            elapsed = now - self.start
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (total - done) / rate if rate > 0 else float("nan")
            log.info(
                "%s: %d/%d %s (%.0f%%), %.0f %s/s, %.1f s, ETA %.1f s",
                self.what,
                done,
                total,
                self.unit,
                100.0 * done / max(total, 1),
                rate,
                self.unit,
                elapsed,
                eta,
            )
