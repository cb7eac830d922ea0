"""The models' CV grids and limits, in one place (plain constants, no scikit-learn): the
trainers in :mod:`components.training.models` search them, and
:mod:`components.training.baseline_cost` prices them before anything is fitted."""

from __future__ import annotations

#: The quantum-kernel SVC's C values (one Gram, searched over C only).
QUANTUM_C_GRID = (0.1, 1.0, 10.0, 100.0)
#: The classical baseline's RBF SVC grid, up to ``exact_max_rows`` train rows.
CLASSICAL_GRID = {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.1, 1.0]}
#: The linear head's C values (Nyström and projected features, both models).
LINEAR_C_GRID = (0.1, 1.0, 10.0, 100.0)
#: The CV that picks the linear head's C runs on at most this many (stratified) rows.
CV_MAX_ROWS = 20_000
CV_SCORING = "balanced_accuracy"


def grid_points(grid: dict[str, list]) -> int:
    """How many parameter combinations a ``GridSearchCV`` grid holds."""
    points = 1
    for values in grid.values():
        points *= len(values)
    return points
