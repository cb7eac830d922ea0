"""Error types users see. Every error names the field or value at fault.

A component reports any failure through :func:`report_error` (see ``components.runtime``), so the
``qubeflow`` CLI can print the specific cause of a failed local run (KFP's local runner only
says which task failed).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

#: When set, a failing component appends one JSON line ``{"task", "type", "field", "message"}``.
ERROR_FILE_ENV = "QUBEFLOW_ERROR_FILE"


class QubeflowError(Exception):
    """Base class: a problem a user can fix, with the field or value it concerns."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class ConfigError(QubeflowError):
    """A pipeline parameter or configuration value is invalid."""


class DataSourceError(QubeflowError):
    """The dataset could not be found or read."""


class DataValidationError(QubeflowError):
    """The dataset was read but does not satisfy the schema the pipeline needs."""


class BackendError(QubeflowError):
    """A quantum backend is unknown, unavailable or failed."""


class RegistryError(QubeflowError):
    """The model registry could not complete an operation; nothing half-done was left."""


def report_error(task: str, exc: BaseException) -> None:
    """Write ``exc`` to stderr and, when ``QUBEFLOW_ERROR_FILE`` is set, append it there."""
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None) or str(exc)
    print(f"[qubeflow] {task} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    if not isinstance(exc, QubeflowError):
        traceback.print_exception(exc, file=sys.stderr)
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        record = {"task": task, "type": type(exc).__name__, "field": field, "message": message}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def read_reported_errors(path: str) -> list[dict[str, Any]]:
    """The error records a run's components wrote (empty when none or no file)."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
