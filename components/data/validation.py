"""Schema checks on a loaded table, before anything is fitted or written.

``validate_table`` raises :class:`DataValidationError` naming the column or parameter at
fault, or returns a :class:`DataProfile` describing what the pipeline will train on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: checking a requirement does not need pandas
    import pandas as pd

from components.errors import ConfigError, DataValidationError

IMPUTE_STRATEGIES = ("none", "mean", "median", "most_frequent")
#: Folds of the small cross-validated grid the trainers run: each class needs this many train rows.
CV_FOLDS = 3


@dataclass(frozen=True)
class DataRequirements:
    """What the data step requires of a table; its own settings are checked when built (the
    one place these rules live), the table by :func:`validate_table`."""

    label_column: str
    n_qubits: int
    test_size: float
    min_samples_per_class: int
    impute: str
    #: Train rows an explicit ``quantum_method=nystroem`` needs as landmarks (0: none).
    landmarks: int = 0

    def __post_init__(self) -> None:
        if not self.label_column.strip():
            raise ConfigError("is empty", field="label_column")
        if self.impute not in IMPUTE_STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.impute!r}; use one of {list(IMPUTE_STRATEGIES)}",
                field="impute",
            )
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError(
                f"must be between 0 and 1 (exclusive), got {self.test_size}", field="test_size"
            )
        if self.min_samples_per_class < 2:
            raise ConfigError(
                f"must be at least 2, got {self.min_samples_per_class}",
                field="min_samples_per_class",
            )
        if self.n_qubits < 1:
            raise ConfigError(f"must be at least 1, got {self.n_qubits}", field="n_qubits")


@dataclass
class DataProfile:
    n_rows: int
    n_features: int
    label_column: str
    feature_columns: list[str]
    class_counts: dict[str, int]
    missing_values: dict[str, int]
    feature_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self, title: str = "Data profile") -> str:
        lines = [
            f"## {title}",
            "",
            f"- rows: **{self.n_rows}**, features: **{self.n_features}**, "
            f"label: `{self.label_column}`",
            "- classes: " + ", ".join(f"`{k}`: {v}" for k, v in self.class_counts.items()),
            "",
            "| feature | mean | std | min | max | missing |",
            "|---|---|---|---|---|---|",
        ]
        for name in self.feature_columns:
            s = self.feature_stats.get(name, {})
            lines.append(
                f"| {name} | {s.get('mean', float('nan')):.4g} | "
                f"{s.get('std', float('nan')):.4g} | {s.get('min', float('nan')):.4g} | "
                f"{s.get('max', float('nan')):.4g} | {self.missing_values.get(name, 0)} |"
            )
        return "\n".join(lines) + "\n"


def _as_float(col: pd.Series) -> np.ndarray:
    """A numeric column as float64 values, missing as NaN (no copy when it is float64 already)."""
    return col.to_numpy(dtype="float64", na_value=np.nan)


def _standardisable(values: np.ndarray) -> bool:
    """Whether the finite ``values`` have a finite variance (standard scaling divides by it)."""
    finite = values[np.isfinite(values)]
    with np.errstate(all="ignore"):
        return finite.size == 0 or bool(np.isfinite(np.var(finite)))


def _list(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def validate_table(frame: pd.DataFrame, req: DataRequirements) -> DataProfile:
    """Check ``frame`` against ``req``; return its profile or raise DataValidationError."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataValidationError(
            f"the dataset has no rows (columns {_list(columns)}, header only?)", field="dataset"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataValidationError(
            f"column name(s) {_list(repeated)} appear more than once in the header; "
            "each column needs its own name",
            field="label_column" if req.label_column in repeated else "dataset",
        )
    if req.label_column not in columns:
        raise DataValidationError(
            f"column {req.label_column!r} is not in the dataset; its columns are {_list(columns)}",
            field="label_column",
        )
    labels = frame[req.label_column]
    if labels.isna().any():
        raise DataValidationError(
            f"label column {req.label_column!r} has {int(labels.isna().sum())} missing values",
            field="label_column",
        )
    counts = labels.value_counts().sort_index()
    if len(counts) < 2:
        only = counts.index[0] if len(counts) else None
        raise DataValidationError(
            f"label column {req.label_column!r} has a single class "
            f"({only!r}); at least 2 classes are needed",
            field="label_column",
        )
    small = {str(k): int(v) for k, v in counts.items() if v < req.min_samples_per_class}
    if small:
        raise DataValidationError(
            f"classes with fewer than {req.min_samples_per_class} rows: {small}",
            field="min_samples_per_class",
        )

    # one feature column at a time: no frame-wide copies (drop/astype/replace) of a large table
    features = [c for c in frame.columns if c != req.label_column]
    if not features:
        raise DataValidationError(
            "the dataset has no feature columns besides the label", field="dataset"
        )
    non_numeric = [
        str(c)
        for c in features
        if not (
            pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_complex_dtype(frame[c])
        )
    ]
    if non_numeric:
        raise DataValidationError(
            f"non-numeric feature columns {_list(non_numeric)}; encode "
            "or drop them before training",
            field="dataset",
        )
    infinite: dict[str, int] = {}
    missing: dict[str, int] = {}
    too_large: list[str] = []
    for c in features:  # one float64 view of each column serves every check
        values = _as_float(frame[c])
        if n_inf := int(np.isinf(values).sum()):
            infinite[str(c)] = n_inf
        if n_nan := int(np.isnan(values).sum()):
            missing[str(c)] = n_nan
        if not _standardisable(values):
            too_large.append(str(c))
    if too_large:
        raise DataValidationError(
            f"column(s) {_list(too_large)} hold values too large to standardise (their "
            "variance overflows float64, e.g. |x| near 1e308); rescale them (other units) "
            "or drop them",
            field="dataset",
        )
    if (missing or infinite) and req.impute == "none":
        parts = []
        if missing:
            parts.append(f"missing values in {missing}")
        if infinite:
            parts.append(f"infinite values in {infinite}")
        raise DataValidationError(
            "; ".join(parts) + "; clean the data or set impute to one of "
            f"{list(IMPUTE_STRATEGIES[1:])}",
            field="dataset",
        )

    n_features = len(features)
    if req.n_qubits > n_features:
        raise DataValidationError(
            f"{req.n_qubits} qubits need at least {req.n_qubits} features, "
            f"but the dataset has {n_features}",
            field="n_qubits",
        )

    n_rows, n_classes = len(frame), len(counts)
    n_test = math.ceil(req.test_size * n_rows)
    n_train = n_rows - n_test
    smallest = int(counts.min())
    smallest_train = smallest - math.ceil(req.test_size * smallest)
    if n_test < n_classes or n_train < n_classes * CV_FOLDS or smallest_train < CV_FOLDS:
        raise DataValidationError(
            f"{n_rows} rows are too few for test_size={req.test_size} with {n_classes} classes: "
            f"the test split needs one row per class and the train split {CV_FOLDS} per class "
            f"(smallest class has {smallest})",
            field="dataset",
        )
    if req.landmarks > n_train:
        raise DataValidationError(
            f"{req.landmarks} Nystroem landmarks > the {n_train} training rows of this dataset "
            "(quantum_method=nystroem); use at most the training rows, or quantum_method=auto",
            field="nystroem_landmarks",
        )

    stats = {}
    for c in features:
        col = pd.Series(_as_float(frame[c]), copy=False)
        if str(c) in infinite:  # statistics of the finite values; copies this column only
            col = col.replace([np.inf, -np.inf], np.nan)
        stats[str(c)] = {
            "mean": float(col.mean()),
            "std": float(col.std()),
            "min": float(col.min()),
            "max": float(col.max()),
        }
    return DataProfile(
        n_rows=n_rows,
        n_features=n_features,
        label_column=req.label_column,
        feature_columns=[str(c) for c in features],
        class_counts={str(k): int(v) for k, v in counts.items()},
        missing_values={
            k: missing.get(k, 0) + infinite.get(k, 0) for k in set(missing) | set(infinite)
        },
        feature_stats=stats,
    )
