"""The data step's options: checked when built, before any I/O, by the CLI and by the step.

Kept apart from :mod:`components.steps.prepare_data.step` so validating a run's parameters
(``qubeflow run`` does it before anything starts) does not import scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.data.sources import check_dataset_reference
from components.data.split import train_test_sizes
from components.data.validation import DataRequirements
from components.errors import ConfigError
from components.feature_maps import FeatureMap
from components.training.baseline_cost import BaselineEstimate, check_limit, estimate_baseline


@dataclass(frozen=True)
class PrepareOptions:
    """The data step's settings (no defaults here: ``PipelineConfig`` holds them and builds
    these with ``prepare_options()``). Checked when built, before any I/O."""

    dataset: str
    label_column: str
    n_qubits: int
    feature_map: str
    reps: int
    entanglement: str
    bandwidth: float
    test_size: float
    min_samples_per_class: int
    impute: str
    seed: int
    #: The quantum method and landmark count, checked against the data's size here, before
    #: any training (the data step is the first to know how many rows there are).
    quantum_method: str
    nystroem_landmarks: int
    #: The classical baseline's plan (SVC grid up to ``exact_max_rows`` train rows) and the
    #: limit on its estimated fit time (0 = no limit), checked once the rows are counted.
    exact_max_rows: int
    classical_max_seconds: float

    def __post_init__(self) -> None:
        check_dataset_reference(self.dataset)
        self.requirements()
        self.angle_range()
        if self.seed < 0:
            raise ConfigError(f"must be >= 0, got {self.seed}", field="seed")
        if self.exact_max_rows < 0:
            raise ConfigError(f"must be >= 0, got {self.exact_max_rows}", field="exact_max_rows")
        check_limit(self.classical_max_seconds)

    def baseline_estimate(self, n_rows: int) -> BaselineEstimate:
        """The classical baseline's estimated cost on a table of ``n_rows`` rows."""
        n_train, _ = train_test_sizes(n_rows, self.test_size)
        return estimate_baseline(
            n_train, exact_max_rows=self.exact_max_rows, landmarks=self.nystroem_landmarks
        )

    def requirements(self) -> DataRequirements:
        return DataRequirements(
            label_column=self.label_column,
            n_qubits=self.n_qubits,
            test_size=self.test_size,
            min_samples_per_class=self.min_samples_per_class,
            impute=self.impute,
            landmarks=self.nystroem_landmarks if self.quantum_method == "nystroem" else 0,
        )

    def feature_map_spec(self) -> FeatureMap:
        return FeatureMap(
            kind=self.feature_map,
            n_qubits=self.n_qubits,
            reps=self.reps,
            entanglement=self.entanglement,
        )

    def angle_range(self) -> tuple[float, float]:
        if not 0.0 < self.bandwidth <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.bandwidth}", field="bandwidth")
        lo, hi = self.feature_map_spec().angle_range
        return (lo, lo + (hi - lo) * self.bandwidth)
