"""What every component does around its step: log to stderr in one format, and report a
failure (with the field at fault) before re-raising it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from components.errors import report_error

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
#: Set by ``qubeflow run``: the run record a step notes its MLflow run in (see
#: ``pipelines.run_records``), so a run killed with -9 has its RUNNING MLflow run marked FAILED.
RUN_RECORD_ENV = "QUBEFLOW_RUN_RECORD"


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


def note_mlflow_run(run_id: str) -> None:
    """Note the MLflow run a step opened in the local run's record (no-op on a cluster)."""
    path = os.environ.get(RUN_RECORD_ENV)
    if path:
        with contextlib.suppress(OSError), open(f"{path.removesuffix('.json')}.mlflow", "a") as f:
            f.write(run_id + "\n")
