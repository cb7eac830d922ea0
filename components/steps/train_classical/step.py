"""The classical-baseline step: an RBF SVC with a small CV grid on the data step's split,
saved as a model bundle (see :mod:`components.training.models`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.data.preprocessing import Split
from components.training.bundle import ModelBundle, save_trained
from components.training.models import fit_classical_baseline


def train_classical(split: Split, preprocessor: Any, out_dir: str | Path, *,
                    seed: int = 42) -> ModelBundle:
    return save_trained(fit_classical_baseline(split, preprocessor, seed=seed), split, out_dir)
