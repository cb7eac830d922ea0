"""The classical-baseline step: the baseline that scales like the quantum method (see
:mod:`components.training.models`), saved as a model bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.data.split import Split
from components.training.bundle import ModelBundle, save_trained


def train_classical(
    split: Split,
    preprocessor: Any,
    out_dir: str | Path,
    *,
    seed: int,
    exact_max_rows: int,
    landmarks: int,
) -> ModelBundle:
    """Fit the baseline (SVC up to ``exact_max_rows`` train rows, Nyström-RBF + linear model
    above) and save it as a bundle in ``out_dir``."""
    from components.training.models import fit_classical_baseline  # scikit-learn, on first use

    trained = fit_classical_baseline(
        split, preprocessor, seed=seed, exact_max_rows=exact_max_rows, landmarks=landmarks
    )
    return save_trained(trained, split, out_dir)
