"""Exact matrix-product-state (MPS) evaluation of the feature maps, batched over rows.

A state of ``q`` qubits is a chain of site tensors, site ``k`` = qubit ``k`` (Qiskit's qubit
order; :func:`to_dense` gives the little-endian statevector). Every array holds all rows of
a batch: site ``k`` is ``(rows, χl, 2, χr)``. Python loops run over sites and repetitions,
never over rows or pairs of rows.

Maps and their bond dimensions (``χ`` at the cut after ``k`` of ``q`` qubits):

- ``angle``: a product state, ``χ = 1``.
- ``zz``, ``linear``: each repetition is H on every qubit, then a *diagonal* layer of
  single-qubit phases and nearest-neighbour pair phases ``exp(i φ (b_i ⊕ b_{i+1}))``. A
  diagonal nearest-neighbour layer is applied exactly by carrying each qubit's bit into the
  bond to its right, which doubles the bond: ``χ_k = min(2^reps, 2^min(k, q-k))``. The engine
  stores these states in a *compact* form: the bond to the right of a site carries a copy of
  that site's bit, so the copy is not stored (the site tensor is ``(rows, χl, 2, χr/2)``),
  and overlaps skip the structurally zero blocks (4× fewer operations than a dense chain).
- ``zz``, ``circular``: the same, plus the wrap-around pair ``(q-1, 0)``: qubit 0's bit is
  carried through the whole chain to qubit ``q-1`` (one more bond bit per repetition), so
  ``χ_k = min(4^reps, 2^min(k, q-k))``.
- ``zz``, ``full``: every pair: ``χ_k = 2^min(k, q-k)``; built exactly (from the dense state)
  while that stays within :data:`EXACT_MAX_BOND`, refused above.

Nothing is truncated unless asked (``max_bond`` / ``cutoff``); then an SVD sweep keeps the
largest singular values, the discarded weight (sum of discarded squared singular values, an
upper bound on ``1 - |<exact|truncated>|^2`` to first order) is reported per row, and the
states are renormalised.

Kernels: ``K[i, j] = |<x_i|y_j>|^2`` by contracting the chain for a tile of (x rows) × (y rows)
at once, one site at a time; the Gram matrix computes only its upper block triangle. Compact
states (:func:`_overlap_compact`) keep the tile's environment with the y row as its last,
contiguous axis: the y side of each site is elementwise products along it, the x side one
matrix product per x row, no transposes; tiles are sized to stay in cache and are shared by
one forked process per usable core. Other states use batched matrix products
whose large dimension is the tile's rows (:func:`_overlap_generic`).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from components.errors import BackendError
from components.feature_maps import FeatureMap

#: Largest bond dimension the exact engine builds (a state is q·χ²·2 complex numbers and
#: an overlap costs ~q·χ³ per pair); above it the map is refused, naming what it would need.
EXACT_MAX_BOND = 256
#: Working memory of one kernel tile's intermediates (bytes): about half a core's L2 here
#: (2 MiB); a compact tile is then 5 x rows by 256 y rows at bond 4 (:func:`compact_tile`).
TILE_BYTES = 2**20
#: Widest block of y rows in a compact-overlap tile (the contiguous axis of its products).
COLUMN_BLOCK = 256
#: NumPy ufunc buffer size (elements) inside the compact overlap.
UFUNC_BUFSIZE = 256
#: Pair-sites (x rows · y rows · qubits) below which the compact kernel does not fork.
FORK_MIN_WORK = 10_000_000
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2.0)

ProgressFn = Callable[[int, int], None]


def bond_dimensions(fmap: FeatureMap) -> list[int]:
    """The exact bond dimension at each of the ``q - 1`` cuts the circuit implies."""
    q = fmap.n_qubits
    dims = []
    for k in range(1, q):
        edge = min(k, q - k)
        if fmap.kind == "angle":
            dims.append(1)
        elif fmap.entanglement == "linear" or q <= 2:
            dims.append(2 ** min(fmap.reps, edge))
        elif fmap.entanglement == "circular":
            dims.append(2 ** min(2 * fmap.reps, edge))
        else:
            dims.append(2**edge)
    return dims


def max_bond(fmap: FeatureMap) -> int:
    return max(bond_dimensions(fmap), default=1)


def _bond_text(fmap: FeatureMap) -> str:
    q = fmap.n_qubits
    if fmap.entanglement == "full":
        exp = q // 2
    elif fmap.entanglement == "circular":
        exp = min(2 * fmap.reps, q // 2)
    else:
        exp = min(fmap.reps, q // 2)
    return f"2^{exp} = {2**exp:,}"


def check_bond(fmap: FeatureMap, limit: int = EXACT_MAX_BOND) -> None:
    """BackendError naming the map, its entanglement pattern, width and the bond dimension
    the exact state needs, when that is above ``limit``."""
    if fmap.kind == "zz" and max_bond(fmap) > limit:
        hint = (
            "use entanglement=linear or circular (bond 2^reps or 4^reps)"
            if fmap.entanglement == "full"
            else "use fewer reps"
        )
        raise BackendError(
            f"the zz map with {fmap.entanglement} entanglement at {fmap.n_qubits} qubits "
            f"(reps={fmap.reps}) needs bond dimension {_bond_text(fmap)} at the middle cut "
            f"to be exact, above the MPS engine's limit of {limit}; {hint}, or a dense "
            "backend ('statevector') up to 24 qubits",
            field="quantum_backend",
        )


def state_bytes(fmap: FeatureMap) -> int:
    """Memory of one row's exact state as the engine stores it."""
    dims = [1, *bond_dimensions(fmap), 1]
    if fmap.kind == "zz" and fmap.entanglement == "linear" and fmap.n_qubits > 1:
        chi = 2**fmap.reps  # compact storage: 2^reps in the bulk, right copy bit not stored
        return 16 * fmap.n_qubits * chi * chi
    return 16 * sum(2 * dims[k] * dims[k + 1] for k in range(fmap.n_qubits))


def overlap_macs(fmap: FeatureMap) -> int:
    """Complex multiply-adds per pair of rows for one overlap."""
    dims = [1, *bond_dimensions(fmap), 1]
    if fmap.kind == "angle":
        return 2 * fmap.n_qubits
    if fmap.entanglement == "linear":
        return fmap.n_qubits * (2**fmap.reps) ** 3
    return sum(4 * dims[k] * dims[k + 1] * max(dims[k], dims[k + 1]) for k in range(fmap.n_qubits))


@dataclass
class MPS:
    """Rows' states as a chain of site tensors.

    ``compact``: the bond to the right of every site but the last carries a copy of that
    site's bit, not stored: site ``k`` is ``(rows, χl, 2, χr/2)`` and the full tensor is
    ``A[l, s, (m, u)] = C[l, s, m] δ(u, s)`` (bond index ``2 m + u``); the last site is plain.
    """

    tensors: list[np.ndarray]
    compact: bool = False
    #: Per row: discarded weight of the truncation (zeros when exact).
    discarded: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def rows(self) -> int:
        return self.tensors[0].shape[0]

    @property
    def n_qubits(self) -> int:
        return len(self.tensors)

    @property
    def bonds(self) -> list[int]:
        """Stored bond dimensions at each cut."""
        return [t.shape[1] for t in self.tensors[1:]]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def take(self, start: int, stop: int) -> MPS:
        return MPS([t[start:stop] for t in self.tensors], self.compact, self.discarded[start:stop])

    def generic(self) -> MPS:
        """The same states with every bond stored explicitly."""
        if not self.compact:
            return self
        out = []
        for k, c in enumerate(self.tensors):
            if k == len(self.tensors) - 1:
                out.append(c)
                continue
            n, chl, _, h = c.shape
            full = np.zeros((n, chl, 2, h, 2), dtype=c.dtype)
            full[:, :, 0, :, 0] = c[:, :, 0, :]
            full[:, :, 1, :, 1] = c[:, :, 1, :]
            out.append(full.reshape(n, chl, 2, 2 * h))
        return MPS(out, False, self.discarded)


# ---- building states ---------------------------------------------------------------------


def _phases(theta: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
    """``(rows, [2 (t),] 2 (s))``: exp(i θ s) [· exp(i φ (t ⊕ s))]."""
    s = np.array([0.0, 1.0])
    single = np.exp(1j * theta[:, None] * s)  # (rows, 2)
    if phi is None:
        return single
    parity = np.array([[0.0, 1.0], [1.0, 0.0]])  # t ⊕ s
    return single[:, None, :] * np.exp(1j * phi[:, None, None] * parity)


def _with_left_bit(g: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``out[(l, t), s, r] = g[l, s, r] · phase[t, s]``: the left bond gains the neighbour's bit."""
    n, chl, _, chr_ = g.shape
    out = g[:, :, None, :, :] * phase[:, None, :, :, None]  # (n, l, t, s, r)
    return out.reshape(n, 2 * chl, 2, chr_)


def _zz_linear(fmap: FeatureMap, x: np.ndarray) -> MPS:
    """Compact exact MPS of the linear ZZ map (q >= 2)."""
    n, q = x.shape
    theta = 2.0 * x
    phi = 2.0 * (np.pi - x[:, :-1]) * (np.pi - x[:, 1:])  # pair (k, k+1) -> phi[:, k]
    plus = np.full((n, 1, 2, 1), 1.0 / math.sqrt(2.0), dtype=np.complex128)
    sites: list[np.ndarray] = [plus] * q  # generic tensors before the rep's phase layer
    compact: list[np.ndarray] = []
    for rep in range(fmap.reps):
        if rep:  # H on every qubit; a compact site's copy bit becomes a plain bond index
            sites = []
            for k, c in enumerate(compact):
                if k == q - 1:
                    sites.append(np.einsum("su,nlur->nlsr", _H, c))
                else:  # G[l, s', (m, u)] = H[s', u] C[l, u, m]
                    g = np.einsum("su,nlum->nlsmu", _H, c)
                    sites.append(g.reshape(c.shape[0], c.shape[1], 2, 2 * c.shape[3]))
        compact = []
        for k, g in enumerate(sites):
            if k == 0:
                compact.append(g * _phases(theta[:, 0], None)[:, None, :, None])
            else:
                compact.append(_with_left_bit(g, _phases(theta[:, k], phi[:, k - 1])))
    return MPS(compact, compact=True, discarded=np.zeros(n))


def _zz_circular(fmap: FeatureMap, x: np.ndarray) -> MPS:
    """Exact MPS of the circular ZZ map (q >= 3): each pair (k, k+1) by carrying qubit k's
    bit to its right neighbour, and the pair (q-1, 0) by carrying qubit 0's bit through the
    whole chain; the bonds grow by 4 per repetition, then are reduced losslessly (QR) to
    what each cut allows."""
    n, q = x.shape
    theta = 2.0 * x
    phi = 2.0 * (np.pi - x[:, :-1]) * (np.pi - x[:, 1:])
    flip = np.array([[0.0, 1.0], [1.0, 0.0]])
    wrap = np.exp(1j * (2.0 * (np.pi - x[:, q - 1]) * (np.pi - x[:, 0]))[:, None, None] * flip)
    sites = [np.full((n, 1, 2, 1), 1.0 / math.sqrt(2.0), dtype=np.complex128) for _ in range(q)]
    for rep in range(fmap.reps):
        if rep:
            sites = [np.einsum("su,nlur->nlsr", _H, a) for a in sites]
        out = []
        for k, a in enumerate(sites):
            chl, chr_ = a.shape[1], a.shape[3]
            if k == 0:  # right bond (r, u, w): u = s for qubit 1, w = s for qubit q-1
                b = a * _phases(theta[:, 0], None)[:, None, :, None]
                t = np.zeros((n, 1, 2, chr_, 2, 2), dtype=a.dtype)
                for s in (0, 1):
                    t[:, :, s, :, s, s] = b[:, :, s, :]
                out.append(t.reshape(n, 1, 2, 4 * chr_))
                continue
            ph = _phases(theta[:, k], phi[:, k - 1])  # (n, t, s)
            body = a[:, :, None, :, :] * ph[:, None, :, :, None]  # (n, l, t, s, r)
            if k == q - 1:  # left bond (l, t, w): the wrap pair's phase on (w, s)
                t = body[:, :, :, None, :, :] * wrap[:, None, None, :, :, None]
                out.append(t.reshape(n, 4 * chl, 2, chr_))
                continue
            t = np.zeros((n, chl, 2, 2, 2, chr_, 2, 2), dtype=a.dtype)  # l, t, w, s, r, u, w'
            for s in (0, 1):
                for w in (0, 1):
                    t[:, :, :, w, s, :, s, w] = body[:, :, :, s, :]
            out.append(t.reshape(n, 4 * chl, 2, 4 * chr_))
        sites = _compress_exact(MPS(out, discarded=np.zeros(n))).tensors
    return MPS(sites, compact=False, discarded=np.zeros(n))


def from_dense(states: np.ndarray) -> MPS:
    """Exact MPS of little-endian statevectors (rows, 2**q) by a QR sweep (no truncation)."""
    n = states.shape[0]
    q = round(math.log2(states.shape[1]))
    psi = states.reshape(n, *([2] * q)).transpose(0, *range(q, 0, -1))  # axes: qubit 0..q-1
    rest = np.ascontiguousarray(psi).reshape(n, 1, -1)
    out = []
    for _ in range(q - 1):
        chl = rest.shape[1]
        m = rest.reshape(n, chl * 2, -1)
        qm, r = np.linalg.qr(m)
        out.append(qm.reshape(n, chl, 2, qm.shape[2]))
        rest = r
    out.append(rest.reshape(n, rest.shape[1], 2, 1))
    return MPS(out, compact=False, discarded=np.zeros(n))


def _compress_exact(mps: MPS) -> MPS:
    """Reduce every bond to at most what the cut allows (2^min(k, q-k)) by QR, losslessly."""
    t = [a.copy() for a in mps.tensors]
    q = len(t)
    for k in range(q - 1):  # left to right: χr <= 2 χl
        n, chl, _, chr_ = t[k].shape
        if chr_ > 2 * chl:
            qm, r = np.linalg.qr(t[k].reshape(n, 2 * chl, chr_))
            t[k] = qm.reshape(n, chl, 2, qm.shape[2])
            t[k + 1] = np.einsum("nab,nbsr->nasr", r, t[k + 1])
    for k in range(q - 1, 0, -1):  # right to left: χl <= 2 χr
        n, chl, _, chr_ = t[k].shape
        if chl > 2 * chr_:
            m = t[k].reshape(n, chl, 2 * chr_).transpose(0, 2, 1)
            qm, r = np.linalg.qr(m)  # A^T = Q R  ->  A = R^T Q^T
            t[k] = qm.transpose(0, 2, 1).reshape(n, qm.shape[2], 2, chr_)
            t[k - 1] = np.einsum("nlsa,nba->nlsb", t[k - 1], r)
    return MPS(t, compact=False, discarded=mps.discarded)


def _angle(fmap: FeatureMap, x: np.ndarray) -> MPS:
    c, s = np.cos(x / 2.0), np.sin(x / 2.0)
    one = -1j * s if fmap.rotation == "x" else s.astype(np.complex128)
    tensors = [
        np.stack([c[:, k].astype(np.complex128), one[:, k]], axis=1)[:, None, :, None]
        for k in range(fmap.n_qubits)
    ]
    return MPS(tensors, compact=False, discarded=np.zeros(len(x)))


def build(
    fmap: FeatureMap,
    x: np.ndarray,
    *,
    max_bond: int | None = None,
    cutoff: float = 0.0,
    limit: int = EXACT_MAX_BOND,
) -> MPS:
    """The feature map's states for the rows of ``x`` (angles, ``(rows, q)``) as an MPS,
    exact unless ``max_bond``/``cutoff`` ask for truncation."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != fmap.n_qubits:
        raise ValueError(f"expected an array of shape (n_samples, {fmap.n_qubits}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("feature-map inputs contain NaN or infinite values")
    check_bond(fmap, limit)
    q = fmap.n_qubits
    if fmap.kind == "angle":
        mps = _angle(fmap, x)
    elif q == 1 or fmap.entanglement == "full":
        from components.quantum.statevector import statevectors

        mps = from_dense(statevectors(fmap, x))
    elif fmap.entanglement == "linear" or q == 2:
        mps = _zz_linear(fmap, x)
    else:
        mps = _zz_circular(fmap, x)
    if max_bond is not None or cutoff > 0:
        mps = truncate(mps, max_bond, cutoff)
    return mps


def truncate(mps: MPS, max_bond: int | None, cutoff: float) -> MPS:
    """Keep at most ``max_bond`` singular values at each cut, dropping also those whose
    squared sum stays below ``cutoff``; the discarded weight per row is summed over cuts and
    the states renormalised."""
    t = _compress_exact(mps.generic()).tensors
    q, n = len(t), mps.rows
    for k in range(q - 1):  # left-canonical: the SVDs below see orthonormal left parts
        _, chl, _, chr_ = t[k].shape
        qm, r = np.linalg.qr(t[k].reshape(n, 2 * chl, chr_))
        t[k] = qm.reshape(n, chl, 2, qm.shape[2])
        t[k + 1] = np.einsum("nab,nbsr->nasr", r, t[k + 1])
    discarded = np.array(mps.discarded if len(mps.discarded) else np.zeros(n), dtype=np.float64)
    for k in range(q - 1, 0, -1):
        _, chl, _, chr_ = t[k].shape
        u, s, vh = np.linalg.svd(t[k].reshape(n, chl, 2 * chr_), full_matrices=False)
        norm2 = np.sum(s**2, axis=1, keepdims=True)
        w = s**2 / norm2
        tail = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = weight of j..end
        need = np.sum(tail > cutoff, axis=1) if cutoff > 0 else np.full(n, s.shape[1])
        keep = int(max(1, need.max()))
        if max_bond is not None:
            keep = min(keep, int(max_bond))
        discarded += w[:, keep:].sum(axis=1)
        t[k] = vh[:, :keep].reshape(n, keep, 2, chr_)
        t[k - 1] = np.einsum("nlsa,nab->nlsb", t[k - 1], u[:, :, :keep] * s[:, None, :keep])
    norms = np.sqrt(np.einsum("nlsr,nlsr->n", t[0].conj(), t[0]).real)
    t[0] = t[0] / norms[:, None, None, None]
    return MPS(t, compact=False, discarded=discarded)


def to_dense(mps: MPS) -> np.ndarray:
    """Little-endian statevectors (rows, 2**q) (tests; small q only)."""
    g = mps.generic()
    n = g.rows
    psi = g.tensors[0].reshape(n, 2, -1)
    for a in g.tensors[1:]:
        psi = np.einsum("npl,nlsr->npsr", psi, a).reshape(n, -1, a.shape[3])
    q = g.n_qubits
    return psi.reshape(n, *([2] * q)).transpose(0, *range(q, 0, -1)).reshape(n, -1)


# ---- overlaps and kernels ----------------------------------------------------------------


def _overlap_generic(xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    """``<x_a|y_b>`` for a tile: environment (b, a, χx, χy), one site at a time."""
    na, nb = xs[0].shape[0], ys[0].shape[0]
    env = np.ones((nb, na, 1, 1), dtype=np.complex128)
    for ax, ay in zip(xs, ys, strict=True):
        _, lx, _, rx = ax.shape
        _, ly, _, ry = ay.shape
        g = np.matmul(env.reshape(nb, na * lx, ly), ay.reshape(nb, ly, 2 * ry))  # b,a,lx,s,ry
        g = g.reshape(nb, na, lx * 2, ry).transpose(1, 2, 0, 3).reshape(na, lx * 2, nb * ry)
        e = np.matmul(ax.conj().reshape(na, lx * 2, rx).transpose(0, 2, 1), g)  # a,rx,b,ry
        env = np.ascontiguousarray(e.reshape(na, rx, nb, ry).transpose(2, 0, 1, 3))
    return env[:, :, 0, 0].T


def _compact_columns(ys: list[np.ndarray]) -> list[np.ndarray]:
    """The y rows' compact tensors laid out once for :func:`_overlap_compact`, the y row
    (``b``) the last, contiguous axis: site 0 as ``(t, l0', b)``, site ``k`` as
    ``(t, l0', s, m', b)`` (``t`` the carried bit, left index ``2 l0' + t``)."""
    nb = ys[0].shape[0]
    out = [np.ascontiguousarray(ys[0][:, 0].transpose(1, 2, 0))]
    for c in ys[1:]:
        _, chl, _, r = c.shape
        out.append(np.ascontiguousarray(c.reshape(nb, chl // 2, 2, 2, r).transpose(2, 1, 3, 4, 0)))
    return out


def _compact_rows(xs: list[np.ndarray]) -> list[np.ndarray]:
    """The x rows' conjugated compact tensors as the left operand of the row-side matrix
    product: site 0 as ``(a, t, l0)``, site ``k`` as ``(a, s, m, (t, l0))``, the last site
    as ``(a, 1, (t, l0, s))``."""
    na, q = xs[0].shape[0], len(xs)
    out = [np.ascontiguousarray(xs[0][:, 0].conj())]
    for k in range(1, q):
        _, chl, _, r = xs[k].shape
        h = chl // 2
        c = xs[k].conj().reshape(na, h, 2, 2, r)  # a, l0, t, s, m
        if k == q - 1:
            out.append(np.ascontiguousarray(c[..., 0].transpose(0, 2, 1, 3)).reshape(na, 1, 4 * h))
        else:
            out.append(np.ascontiguousarray(c.transpose(0, 3, 4, 2, 1)).reshape(na, 2, r, 2 * h))
    return out


def _overlap_compact(xr: list[np.ndarray], yc: list[np.ndarray]) -> np.ndarray:
    """``<x_a|y_b>`` for compact states, from :func:`_compact_rows` and
    :func:`_compact_columns`.

    The environment is block diagonal in the carried bit ``t``: ``(a, t, l0, l0', b)``, the
    y row last. Each site is two passes: the y side, whose tensors differ along ``b``, as
    elementwise products over the contiguous ``b`` axis, ``f[a, t, l0, s, m', b] = sum_l0'
    env[a, t, l0, l0', b] cy[t, l0', s, m', b]``; then the x side, one tensor per ``a``
    shared by every ``b``, as a matrix product ``env'[a, s, m, (m', b)] = sum_(t, l0)
    conj(cx)[a, s, m, (t, l0)] f[a, s, (t, l0), (m', b)]``. No transposes of the tile, and
    the buffers are reused: the tile's working set stays in cache."""
    with np.errstate():
        # NumPy's default ufunc buffer (8192) makes it copy strided and broadcast operands
        # through buffers (~3x slower here); a small one iterates them in place.
        np.setbufsize(UFUNC_BUFSIZE)
        return _overlap_compact_sites(xr, yc)


def _overlap_compact_sites(xr: list[np.ndarray], yc: list[np.ndarray]) -> np.ndarray:
    na, nb = xr[0].shape[0], yc[0].shape[-1]
    env = xr[0][:, :, :, None, None] * yc[0][None, :, None, :, :]  # (a, t, l0, l0', b)
    dtype = np.result_type(xr[0], yc[0])
    size = max(na * 4 * y.shape[1] * y.shape[3] * nb for y in yc[1:])
    fbuf, tbuf = np.empty(size, dtype=dtype), np.empty(size, dtype=dtype)
    ebuf = np.empty(max(na * 2 * y.shape[3] ** 2 * nb for y in yc[1:]), dtype=dtype)
    views: dict[tuple[int, int], tuple] = {}  # the buffers' views, by (h, r)

    def buffers(h: int, r: int) -> tuple:
        if (h, r) not in views:
            n = na * 4 * h * r * nb
            f = fbuf[:n].reshape(na, 2, h, 2, r, nb)
            e = ebuf[: na * 2 * r * r * nb].reshape(na, 2, r, r * nb)
            after = e.reshape(na, 2, r, r, nb)  # the next site's environment
            views[h, r] = (
                f,
                tbuf[:n].reshape(f.shape),
                f.reshape(na, 2 * h, 2, r * nb).transpose(0, 2, 1, 3),  # (a, s, (t, l0), ..)
                e,
                [after[:, :, :, j, None, None, :] for j in range(r)],
            )
        return views[h, r]

    env_j = [env[:, :, :, j, None, None, :] for j in range(env.shape[3])]
    last = len(yc) - 1
    for k in range(1, last + 1):
        y, x = yc[k], xr[k]
        h, r = y.shape[1], y.shape[3]
        f, tmp, fv, e, after_j = buffers(h, r)
        np.multiply(env_j[0], y[None, :, 0, None], out=f)
        for j in range(1, h):
            np.multiply(env_j[j], y[None, :, j, None], out=tmp)
            np.add(f, tmp, out=f)
        if k == last:  # right bond 1: sum over t, l0, s
            return np.matmul(x, f.reshape(na, 4 * h, nb))[:, 0]
        np.matmul(x, fv, out=e)
        env_j = after_j
    raise AssertionError("unreachable: compact states have at least two sites")


def _overlap_product(xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    out = np.ones((xs[0].shape[0], ys[0].shape[0]), dtype=np.complex128)
    for ax, ay in zip(xs, ys, strict=True):
        out *= ax[:, 0, :, 0].conj() @ ay[:, 0, :, 0].T
    return out


def overlaps(x: MPS, y: MPS) -> np.ndarray:
    """``<x_a|y_b>`` for one tile (all rows of both)."""
    if x.compact != y.compact:
        x, y = x.generic(), y.generic()
    if all(a.shape[1] == a.shape[3] == 1 for a in x.tensors + y.tensors):
        return _overlap_product(x.tensors, y.tensors)
    if x.compact:
        return _overlap_compact(_compact_rows(x.tensors), _compact_columns(y.tensors))
    return _overlap_generic(x.tensors, y.tensors)


def tile_rows(x: MPS, y: MPS, tile_bytes: int = TILE_BYTES) -> int:
    """Rows per side of a square tile so one site's intermediates stay within ``tile_bytes``."""
    chi = max(max(x.bonds, default=1), max(y.bonds, default=1))
    per_pair = 16 * 4 * chi * chi
    return max(8, int(math.sqrt(tile_bytes / per_pair)))


def compact_tile(x: MPS, y: MPS, tile_bytes: int = TILE_BYTES) -> tuple[int, int]:
    """(x rows, y rows) of a compact-overlap tile whose buffers (environment, the two
    products and the next environment: 12 h² complex numbers a pair, ``h`` the largest
    stored bond) stay within ``tile_bytes``: at most :data:`COLUMN_BLOCK` y rows (the
    contiguous axis of every product), as many x rows as then fit."""
    h = max(max(x.bonds, default=2), max(y.bonds, default=2)) // 2
    per_pair = 16 * 12 * h * h
    cols = max(1, min(y.rows, COLUMN_BLOCK, tile_bytes // per_pair))
    return max(1, tile_bytes // (per_pair * cols)), cols


_BLAS: list = []  # the threadpoolctl controller, found once (empty: not looked up yet)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS limited to one thread while the compact kernel runs: its matrix products are
    small (2 x 4 by 4 x 2·256), and OpenBLAS's own threads would spin against the tiles'."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:  # optional: without it BLAS keeps its threads
            _BLAS.append(None)
    controller = _BLAS[0]
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def kernel_workers() -> int:
    """Workers of the compact kernel: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def kernel(
    x: MPS,
    y: MPS | None = None,
    *,
    tile_bytes: int = TILE_BYTES,
    progress: ProgressFn | None = None,
    dtype: type = np.float64,
    workers: int | None = None,
    fork_min_work: int | None = None,
) -> np.ndarray:
    """``K[i, j] = |<x_i|y_j>|^2`` in tiles; the Gram matrix (``y=None``) computes only its
    upper block triangle, mirrors it and sets the unit diagonal. Compact states' tiles are
    shared by ``workers`` processes (default :func:`kernel_workers`) when the kernel has at
    least ``fork_min_work`` pair-sites (default :data:`FORK_MIN_WORK`; see
    :func:`_kernel_compact`)."""
    symmetric = y is None
    ys = x if symmetric else y
    n_x, n_y = x.rows, ys.rows
    out = np.empty((n_x, n_y), dtype=dtype)
    if n_x == 0 or n_y == 0:
        return out
    if x.compact and ys.compact:
        min_work = FORK_MIN_WORK if fork_min_work is None else fork_min_work
        _kernel_compact(x, ys, out, symmetric, tile_bytes, progress, workers, min_work)
        return out
    step = tile_rows(x, ys, tile_bytes)
    step_y = step if symmetric else min(n_y, step * 2)
    for start in range(0, n_x, step):
        stop = min(n_x, start + step)
        xt = x.take(start, stop)
        first = start if symmetric else 0
        for ystart in range(first, n_y, step_y):
            ystop = min(n_y, ystart + step_y)
            block = np.abs(overlaps(xt, ys.take(ystart, ystop))) ** 2
            out[start:stop, ystart:ystop] = block
            if symmetric and ystart >= stop:
                out[ystart:ystop, start:stop] = block.T
        if symmetric:
            diag = out[start:stop, start:stop]
            diag[...] = np.triu(diag) + np.triu(diag, 1).T
        if progress is not None:
            progress(stop, n_x)
    if symmetric:
        np.fill_diagonal(out, 1.0)
    return out


def _kernel_compact(
    x: MPS,
    y: MPS,
    out: np.ndarray,
    symmetric: bool,
    tile_bytes: int,
    progress: ProgressFn | None,
    workers: int | None,
    fork_min_work: int,
) -> None:
    """:func:`kernel` for compact states: the y side laid out once per call in blocks of
    columns, then tiles of x rows (each lays its x side out once and does every block of
    columns it needs); the Gram's lower part is mirrored after all tiles are done.

    With more than one worker the tiles are dealt round-robin to forked processes (Linux,
    no other Python thread running, at least ``fork_min_work`` pair-sites): threads do
    not scale here, their small BLAS products and ufunc calls contend inside one process
    (measured 1.1x on 2 cores against 1.9x for 2 processes); otherwise to threads."""
    n_x, n_y = x.rows, y.rows
    rows, cols = compact_tile(x, y, tile_bytes)
    blocks = [
        (c0, min(n_y, c0 + cols), _compact_columns(y.take(c0, min(n_y, c0 + cols)).tensors))
        for c0 in range(0, n_y, cols)
    ]
    starts = list(range(0, n_x, rows))

    def tile(start: int, dest: np.ndarray) -> int:
        stop = min(n_x, start + rows)
        xr = _compact_rows(x.take(start, stop).tensors)
        for c0, c1, yc in blocks:
            lo = max(c0, start) if symmetric else c0  # the Gram: its upper triangle only
            if lo < c1:
                part = yc if lo == c0 else [a[..., lo - c0 :] for a in yc]
                dest[start:stop, lo:c1] = np.abs(_overlap_compact(xr, part)) ** 2
        return stop

    n = min(len(starts), workers or kernel_workers())
    with _one_blas_thread():
        if n > 1 and _may_fork(n_x * n_y * x.n_qubits >= fork_min_work):
            _tiles_forked(tile, starts, rows, n, out, progress)
        elif n > 1:
            pool = ThreadPoolExecutor(max_workers=n)
            try:
                for stop in pool.map(lambda start: tile(start, out), starts):
                    if progress is not None:
                        progress(stop, n_x)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for start in starts:
                stop = tile(start, out)
                if progress is not None:
                    progress(stop, n_x)
    if symmetric:
        for start in starts:
            stop = min(n_x, start + rows)
            out[start:stop, :start] = out[:start, start:stop].T
            diag = out[start:stop, start:stop]
            diag[...] = np.triu(diag) + np.triu(diag, 1).T
        np.fill_diagonal(out, 1.0)


def _may_fork(enough_work: bool) -> bool:
    """Whether the kernel may fork workers: Linux, enough work to pay for the fork (~10 ms),
    and no other Python thread (a forked child gets only this one; locks others hold would
    stay held)."""
    return (
        enough_work
        and sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.active_count() == 1
    )


def _tiles_forked(
    tile: Callable[[int, np.ndarray], int],
    starts: list[int],
    rows: int,
    n: int,
    out: np.ndarray,
    progress: ProgressFn | None,
) -> None:
    """Tiles ``starts[w::n]`` in forked child ``w`` (``w >= 1``) into a shared anonymous
    mapping, ``starts[0::n]`` here into ``out``; then the children's rows are copied into
    ``out``. Rows done are counted in shared memory for ``progress``; an error here (the
    time limit, via ``progress``) kills the children, a child that fails is an error."""
    n_x = out.shape[0]
    shared_map = mmap.mmap(-1, max(1, out.nbytes))
    shared = np.frombuffer(shared_map, dtype=out.dtype).reshape(out.shape)
    count_map = mmap.mmap(-1, 8 * n)
    done = np.frombuffer(count_map, dtype=np.int64)
    children: list[int] = []
    try:
        for w in range(1, n):
            pid = os.fork()
            if pid == 0:  # the child: its tiles, then leave without Python's shutdown
                code = 1
                try:
                    for start in starts[w::n]:
                        done[w] += tile(start, shared) - start
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            children.append(pid)
        for start in starts[0::n]:
            done[0] += tile(start, out) - start
            if progress is not None:
                progress(int(done.sum()), n_x)
        failed = []
        while children:
            for pid in list(children):
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped:
                    children.remove(pid)
                    if os.waitstatus_to_exitcode(status) != 0:
                        failed.append(os.waitstatus_to_exitcode(status))
            if children:
                time.sleep(0.05)
                if progress is not None:
                    progress(int(done.sum()), n_x)
        if failed:
            raise RuntimeError(f"MPS kernel worker process(es) failed (exit codes {failed})")
    except BaseException:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    for w in range(1, n):
        for start in starts[w::n]:
            out[start : start + rows] = shared[start : start + rows]
    del shared, done
    shared_map.close()
    count_map.close()


# ---- projected features -------------------------------------------------------------------


def pauli_expectations(mps: MPS) -> np.ndarray:
    """Per qubit (<X>, <Y>, <Z>) of each row's state, shape (rows, 3 q), from batched left
    and right environments ``E[l, l'] = sum conj(psi_l) psi_l'``."""
    t = mps.generic().tensors
    n, q = mps.rows, len(t)
    right = [np.ones((n, 1, 1), dtype=np.complex128)]
    for a in reversed(t[1:]):
        ar = np.einsum("nmsq,nrq->nmsr", a, right[-1])
        right.append(np.einsum("nlsr,nmsr->nlm", a.conj(), ar))
    right = right[::-1]  # right[k]: the environment right of site k
    out = np.empty((n, 3 * q), dtype=np.float64)
    left = np.ones((n, 1, 1), dtype=np.complex128)
    for k, a in enumerate(t):
        la = np.einsum("nlm,nmsq->nlsq", left, a)  # sum_l' L[l, l'] a[l', s', r']
        lar = np.einsum("nlsq,nrq->nlsr", la, right[k])
        # m[s, s'] = sum conj(psi(s_k = s)) psi(s_k = s'): the statevector's cross is m[0, 1]
        m = np.einsum("nlsr,nltr->nst", a.conj(), lar)
        out[:, 3 * k] = 2.0 * m[:, 0, 1].real
        out[:, 3 * k + 1] = 2.0 * m[:, 0, 1].imag
        out[:, 3 * k + 2] = (m[:, 0, 0] - m[:, 1, 1]).real
        left = np.einsum("nlsr,nlsq->nrq", a.conj(), la)
    return out
