"""The data-prep step: load, validate, split, fit preprocessing; write the step's files.

``prepare_dataset`` is what the ``prepare_data`` KFP component calls; it takes and writes
plain paths so tests can call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from components.data.prepared import save_prepared
from components.data.sources import DatasetSource, load_table
from components.data.split import Split
from components.data.validation import DataProfile, validate_table
from components.steps.prepare_data.options import PrepareOptions
from components.training.baseline_cost import BaselineEstimate, check_baseline_cost

__all__ = ["PrepareOptions", "PreparedData", "prepare", "prepare_dataset"]

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    split: Split
    preprocessor: Any
    profile: DataProfile
    source: DatasetSource
    baseline: BaselineEstimate

    def lineage(self, options: PrepareOptions) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
            "profile": self.profile.to_dict(),
            "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
            "n_train": len(self.split.train),
            "n_test": len(self.split.test),
            "baseline_estimate": self.baseline.to_dict(),
        }


def prepare(options: PrepareOptions) -> PreparedData:
    """Load and validate the dataset, split it and fit the preprocessing (nothing written)."""
    # scikit-learn (~1 s to import) once the table is read and valid, not before
    from components.data.preprocessing import fit_preprocessor, stratified_split

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
    # the baseline's plan priced before anything is fitted: a plan over the limit fails here
    baseline = options.baseline_estimate(len(frame))
    log.info("%s", check_baseline_cost(baseline, options.classical_max_seconds))
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
    return PreparedData(split, pre, profile, source, baseline)


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
