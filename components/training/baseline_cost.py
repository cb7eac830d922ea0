"""What the classical baseline will cost, known from the data's size before it is trained.

The data step is the first to know how many rows there are; it estimates the baseline with
:func:`estimate_baseline`, logs the estimate and refuses a plan over ``classical_max_seconds``
(:func:`check_baseline_cost`) — seconds into the run, not after hours of fitting.

The cost laws are those of :func:`components.training.models.fit_classical_baseline`:

* up to ``exact_max_rows`` train rows, an RBF SVC's CV grid (``CLASSICAL_GRID``: 12
  combinations x ``CV_FOLDS`` folds, then one refit on every row). libsvm's time grows with
  the square of the rows (kernel rows computed and cached per iteration), so
  ``seconds ~ SVC_FIXED_S + SVC_SECONDS_PER_ROW2 * sum(rows_per_fit**2)``;
* above it, Nyström features (O(rows x landmarks)) and a linear head whose CV runs on at most
  ``CV_MAX_ROWS`` rows: ``seconds ~ a * min(rows, CV_MAX_ROWS) + b * rows * landmarks``.

The rates were measured on the 2-core machine the benchmarks run on (``benchmarks/README.md``,
"classical baseline"); a slower node takes proportionally longer. The estimate is for
planning (minutes or days?), not a promise. Pure Python: no scikit-learn import.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.data.validation import CV_FOLDS
from components.errors import ConfigError
from components.training.grids import CLASSICAL_GRID, CV_MAX_ROWS, grid_points

#: The RBF SVC's CV grid: a fixed cost and seconds per (row**2 x fit), measured here
#: (8 features; 0.6 / 1.0 / 2.8 / 8.8 s at 500 / 1 000 / 2 000 / 4 000 train rows).
SVC_FIXED_S = 0.5
SVC_SECONDS_PER_ROW2 = 3.2e-8
#: The Nyström + linear baseline: its CV picks C on at most ``CV_MAX_ROWS`` (stratified)
#: rows, then one fit on every row. Seconds per CV row and per (row x landmark) of building
#: the features and the final fit, measured here (21 / 48 / 59 s at 20 000 / 100 000 /
#: 200 000 rows, 256 landmarks).
LINEAR_CV_SECONDS_PER_ROW = 8.5e-4
LINEAR_SECONDS_PER_ROW_LANDMARK = 8e-7
#: The SVC grid's size (``CLASSICAL_GRID``: 4 values of C x 3 of gamma).
SVC_GRID_POINTS = grid_points(CLASSICAL_GRID)
FIELD = "classical_max_seconds"


@dataclass(frozen=True)
class BaselineEstimate:
    """The classical baseline's plan and its estimated fitting time on this data."""

    method: str  # "svc" (CV grid on the exact kernel) | "nystroem" (linear head)
    n_train: int
    fits: int
    seconds: float

    def describe(self) -> str:
        if self.method == "svc":
            how = f"RBF SVC, {self.fits} CV fits on up to {self.n_train:,} rows"
        else:
            how = f"Nystroem + linear model on {self.n_train:,} rows"
        return f"classical baseline ~{format_seconds(self.seconds)} ({how})"

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "method": self.method,
            "n_train": self.n_train,
            "fits": self.fits,
            "seconds": round(self.seconds, 1),
        }


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_baseline(
    n_train: int, *, exact_max_rows: int, landmarks: int, cv_folds: int = CV_FOLDS
) -> BaselineEstimate:
    """Estimate :func:`~components.training.models.fit_classical_baseline` on ``n_train`` rows."""
    if n_train <= exact_max_rows:
        fold_rows = n_train * (cv_folds - 1) / cv_folds
        fits = SVC_GRID_POINTS * cv_folds + 1
        seconds = SVC_FIXED_S + SVC_SECONDS_PER_ROW2 * (
            SVC_GRID_POINTS * cv_folds * fold_rows**2 + float(n_train) ** 2
        )
        return BaselineEstimate("svc", n_train, fits, seconds)
    m = min(landmarks, n_train)
    seconds = (
        LINEAR_CV_SECONDS_PER_ROW * min(n_train, CV_MAX_ROWS)
        + LINEAR_SECONDS_PER_ROW_LANDMARK * n_train * m
    )
    return BaselineEstimate("nystroem", n_train, 1, seconds)


def check_limit(max_seconds: float) -> float:
    """``classical_max_seconds`` itself: a finite number >= 0 (0 = no limit)."""
    if not (0 <= max_seconds < float("inf")):  # NaN fails this too
        raise ConfigError(f"must be a number >= 0 (0 = no limit), got {max_seconds:g}", field=FIELD)
    return max_seconds


def check_baseline_cost(estimate: BaselineEstimate, max_seconds: float) -> str:
    """Raise ConfigError (field ``classical_max_seconds``) when the estimate is over the limit
    (0 = no limit); return the line to log."""
    line = estimate.describe()
    check_limit(max_seconds)
    if max_seconds and estimate.seconds > max_seconds:
        hint = (
            "lower exact_max_rows below the train rows (above it the baseline uses Nystroem "
            "features, linear in the rows)"
            if estimate.method == "svc"
            else "lower nystroem_landmarks or sample the table"
        )
        raise ConfigError(
            f"{line} is over the limit of {format_seconds(max_seconds)}: {hint}, or raise "
            f"classical_max_seconds (0 = no limit); nothing was trained",
            field=FIELD,
        )
    limit = f"limit {format_seconds(max_seconds)}" if max_seconds else "no limit"
    return f"{line}, {limit}"
