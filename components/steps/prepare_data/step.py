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
from components.data.sources import DatasetSource, load_table
from components.data.validation import DataProfile, DataRequirements, validate_table
from components.errors import ConfigError
from components.feature_maps import FeatureMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareOptions:
    dataset: str
    label_column: str = "target"
    n_qubits: int = 8
    feature_map: str = "zz"
    reps: int = 2
    entanglement: str = "linear"
    bandwidth: float = 0.1
    test_size: float = 0.25
    min_samples_per_class: int = 10
    impute: str = "none"
    seed: int = 42

    def feature_map_spec(self) -> FeatureMap:
        return FeatureMap(kind=self.feature_map, n_qubits=self.n_qubits, reps=self.reps,
                          entanglement=self.entanglement)

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
        return {"source": self.source.to_dict(), "profile": self.profile.to_dict(),
                "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
                "n_train": len(self.split.train), "n_test": len(self.split.test)}


def prepare(options: PrepareOptions) -> PreparedData:
    """Load and validate the dataset, split it and fit the preprocessing (nothing written)."""
    angle_range = options.angle_range()  # validates feature-map params before any I/O
    frame, source = load_table(options.dataset)
    log.info("loaded %s: %d rows x %d columns (%s, sha256 %s)", source.uri, len(frame),
             frame.shape[1], source.format, source.sha256[:12])
    profile = validate_table(frame, DataRequirements(
        label_column=options.label_column, n_qubits=options.n_qubits,
        test_size=options.test_size, min_samples_per_class=options.min_samples_per_class,
        impute=options.impute))
    split = stratified_split(frame, options.label_column, options.test_size, options.seed)
    pre = fit_preprocessor(split, options.n_qubits, angle_range, options.impute, options.seed)
    log.info("split %d train / %d test; preprocessing %s -> %d angles in [%.3f, %.3f]",
             len(split.train), len(split.test), [s for s, _ in pre.steps], options.n_qubits,
             *angle_range)
    return PreparedData(split, pre, profile, source)


def prepare_dataset(options: PrepareOptions, *, train_path: str, test_path: str,
                    preprocessor_path: str, lineage_path: str) -> PreparedData:
    """Run :func:`prepare` and write train/test Parquet, the preprocessor and lineage JSON."""
    data = prepare(options)
    save_prepared(data.split, data.preprocessor, data.lineage(options), train_path=train_path,
                  test_path=test_path, preprocessor_path=preprocessor_path,
                  lineage_path=lineage_path)
    return data
