"""What every component does around its step: log to stderr in one format, and report a
failure (with the field at fault) before re-raising it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from components.errors import report_error

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    # Inside a KFP executor the root logger already has KFP's handler: reuse it.
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in (
        "urllib3",
        "botocore",
        "matplotlib",
        "alembic",
        "git",
        "qiskit",
        "qiskit_ibm_runtime",
        "qiskit_aer",
        "pennylane",
        "stevedore",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def task(name: str) -> Iterator[logging.Logger]:
    """``with task("prepare-data") as log: ...`` — logging set up, failures reported."""
    setup_logging()
    log = logging.getLogger(f"qubeflow.{name}")
    log.info("%s: started", name)  # after the step's imports: where its own work begins
    try:
        yield log
    except BaseException as exc:
        report_error(name, exc)
        raise
