"""Nyström approximation of a (quantum) kernel: ``m`` landmark rows stand in for all ``N``.

With ``K_mm`` the kernel among the landmarks and ``K_nm`` every row against them, the feature
map ``Φ = K_nm · K_mm^(-1/2)`` gives ``Φ Φᵀ = K_nm K_mm⁺ K_mn ≈ K``: a linear model on ``Φ``
approximates the kernel machine on ``K`` at cost O(N·m) in time and memory, never N×N. With
``m = N`` (every row a landmark) the approximation is exact.

Landmarks are a **seeded, stratified** random sample of the training rows: O(N), reproducible,
every class represented in proportion, and — unlike k-means centres — actual data points,
so on a device the landmark circuits are ordinary feature-map circuits of real rows.
"""

from __future__ import annotations

import numpy as np

from components.errors import ConfigError

#: Eigenvalues of K_mm below this fraction of the largest are dropped (numerical rank).
RANK_TOLERANCE = 1e-10


def select_landmarks(
    n_rows: int, m: int, *, y: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted indices of ``m`` landmark rows among ``n_rows``: a seeded sample, stratified by
    ``y`` when given (each class gets its share, at least one row when it has any)."""
    if not 1 <= m <= n_rows:
        raise ConfigError(
            f"must be from 1 to the number of training rows ({n_rows}), got {m}",
            field="nystroem_landmarks",
        )
    rng = np.random.default_rng(seed)
    if m == n_rows:
        return np.arange(n_rows)
    if y is None:
        return np.sort(rng.choice(n_rows, size=m, replace=False))
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    share = np.maximum(1, np.floor(counts / n_rows * m).astype(int))
    share = np.minimum(share, counts)
    while share.sum() < m:  # hand the rounding remainder to the classes with most rows left
        share[np.argmax(counts - share)] += 1
    while share.sum() > m:
        share[np.argmax(share)] -= 1
    picked = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        for c, k in zip(classes, share, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def normalization(k_mm: np.ndarray) -> tuple[np.ndarray, float]:
    """``K_mm^(-1/2)`` (pseudo-inverse square root on the numerical rank) as an (m, r) matrix,
    so ``Φ = K_nm @ W``; and the fraction of ``K_mm``'s trace that the kept rank carries."""
    k = 0.5 * (np.asarray(k_mm, dtype=np.float64) + np.asarray(k_mm, dtype=np.float64).T)
    values, vectors = np.linalg.eigh(k)
    keep = values > RANK_TOLERANCE * max(values.max(initial=0.0), 1e-300)
    kept_trace = float(values[keep].sum() / max(values[values > 0].sum(), 1e-300))
    return vectors[:, keep] / np.sqrt(values[keep]), kept_trace


def features(k_nm: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Nyström features ``Φ = K_nm W`` (float64: what the linear model fits on)."""
    return np.asarray(k_nm, dtype=np.float64) @ weights


def approximation_error(k_exact: np.ndarray, phi: np.ndarray) -> float:
    """Relative Frobenius error ``‖K − ΦΦᵀ‖ / ‖K‖`` (for benchmarks and tests)."""
    approx = phi @ phi.T
    return float(np.linalg.norm(k_exact - approx) / max(np.linalg.norm(k_exact), 1e-300))
