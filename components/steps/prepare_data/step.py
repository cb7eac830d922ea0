"""The data-prep step: load, validate, split, fit preprocessing; write the step's files.

``prepare_dataset`` is what the ``prepare_data`` KFP component calls; it takes and writes
plain paths so tests can call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from components.data.prepared import save_prepared
from components.data.preprocessing import Split, fit_preprocessor, stratified_split
from components.data.sources import DatasetSource, check_dataset_reference, load_table
from components.data.validation import DataProfile, DataRequirements, validate_table
from components.errors import ConfigError
from components.feature_maps import FeatureMap

log = logging.getLogger(__name__)


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

    def __post_init__(self) -> None:
        check_dataset_reference(self.dataset)
        self.requirements()
        self.angle_range()
        if self.seed < 0:
            raise ConfigError(f"must be >= 0, got {self.seed}", field="seed")

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


@dataclass
class PreparedData:
    split: Split
    preprocessor: Any
    profile: DataProfile
    source: DatasetSource

    def lineage(self, options: PrepareOptions) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
            "profile": self.profile.to_dict(),
            "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
            "n_train": len(self.split.train),
            "n_test": len(self.split.test),
        }


def prepare(options: PrepareOptions) -> PreparedData:
    """Load and validate the dataset, split it and fit the preprocessing (nothing written)."""
    angle_range = options.angle_range()
    frame, source = load_table(options.dataset)
    log.info(
        "loaded %s: %d rows x %d columns (%s, sha256 %s)",
        source.uri,
        len(frame),
        frame.shape[1],
        source.format,
        source.sha256[:12],
    )
    profile = validate_table(frame, options.requirements())
    split = stratified_split(frame, options.label_column, options.test_size, options.seed)
    pre = fit_preprocessor(split, options.n_qubits, angle_range, options.impute, options.seed)
    log.info(
        "split %d train / %d test; preprocessing %s -> %d angles in [%.3f, %.3f]",
        len(split.train),
        len(split.test),
        [s for s, _ in pre.steps],
        options.n_qubits,
        *angle_range,
    )
    return PreparedData(split, pre, profile, source)


def prepare_dataset(
    options: PrepareOptions,
    *,
    train_path: str,
    test_path: str,
    preprocessor_path: str,
    lineage_path: str,
) -> PreparedData:
    """Run :func:`prepare` and write train/test Parquet, the preprocessor and lineage JSON."""
    data = prepare(options)
    save_prepared(
        data.split,
        data.preprocessor,
        data.lineage(options),
        train_path=train_path,
        test_path=test_path,
        preprocessor_path=preprocessor_path,
        lineage_path=lineage_path,
    )
    return data
