"""Step options for tests: the pipeline's defaults (``PipelineConfig``, the one place they
live) with a test's overrides, validated as the steps validate them."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipelines.config import PipelineConfig


def quantum_options(**overrides: Any):
    """``QuantumOptions`` from the pipeline defaults, fields overridden by name."""
    return dataclasses.replace(PipelineConfig().quantum_options(), **overrides)


def prepare_options(**overrides: Any):
    """``PrepareOptions`` from the pipeline defaults, fields overridden by name."""
    return dataclasses.replace(PipelineConfig().prepare_options(), **overrides)


def baseline_options() -> dict[str, Any]:
    """The classical baseline's size settings (``exact_max_rows``, ``landmarks``)."""
    config = PipelineConfig()
    return {"exact_max_rows": config.exact_max_rows, "landmarks": config.nystroem_landmarks}
