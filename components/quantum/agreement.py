"""How far a shot-based backend's kernel (or features) is from the noiseless simulation of the
same feature map — the simulation a model trained on that backend serves with.

A model trained on a device or a noisy simulator is registered to predict with the exact
engine (``serving_backend``): its head was fitted on the device's numbers and now sees exact
ones. These measures say how different the two are, on what the training step already
computed (no extra circuits): the train Gram (fidelity), the landmark kernel (Nyström) or the
train rows' projected features, on a seeded sample of at most ``AGREEMENT_MAX_ROWS`` rows.

- ``mean_abs_error``, ``max_abs_error``: of the entries (off-diagonal ones for a Gram, whose
  unit diagonal is never measured);
- ``alignment``: the kernel alignment ⟨A, B⟩_F / (‖A‖_F ‖B‖_F) of the two matrices (1 =
  proportional; Cristianini et al. 2001), the same off-diagonal entries;
- ``rows``: how many rows the comparison used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Rows (a square block for a Gram) compared at most: an exact m×m or S×S kernel, cheap.
AGREEMENT_MAX_ROWS = 256


def sample_rows(n_rows: int, seed: int, limit: int = AGREEMENT_MAX_ROWS) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n_rows`` rows (seeded; all when fewer)."""
    if n_rows <= limit:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=limit, replace=False))


def agreement(device: np.ndarray, exact: np.ndarray, *, symmetric: bool) -> dict[str, float]:
    """Agreement of two same-shaped matrices; ``symmetric`` compares off-diagonal entries only."""
    a = np.asarray(device, dtype=np.float64)
    b = np.asarray(exact, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"device matrix {a.shape} and exact matrix {b.shape} differ in shape")
    if symmetric:
        off = ~np.eye(a.shape[0], dtype=bool)
        a, b = a[off], b[off]
    a, b = a.ravel(), b.ravel()
    if a.size == 0:
        return {"rows": float(len(device))}
    diff = np.abs(a - b)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return {
        "mean_abs_error": float(diff.mean()),
        "max_abs_error": float(diff.max()),
        "alignment": float(a @ b / norm) if norm > 0 else 0.0,
        "rows": float(len(device)),
    }


def gram_agreement(
    device_gram: np.ndarray,
    rows: np.ndarray,
    exact_kernel: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
) -> dict[str, float]:
    """A device Gram of ``rows`` against ``exact_kernel(rows)``, on a sampled square block."""
    idx = sample_rows(len(rows), seed)
    block = np.asarray(device_gram)[np.ix_(idx, idx)]
    return agreement(block, exact_kernel(rows[idx]), symmetric=True)


def feature_agreement(
    device_features: np.ndarray,
    rows: np.ndarray,
    exact_features: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
) -> dict[str, float]:
    """Device features of ``rows`` against ``exact_features(rows)`` on sampled rows."""
    idx = sample_rows(len(rows), seed)
    return agreement(np.asarray(device_features)[idx], exact_features(rows[idx]), symmetric=False)
