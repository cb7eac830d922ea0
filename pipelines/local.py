"""Run the retraining pipeline on this machine with KFP's local runner.

Real components, real subprocesses (``kfp.local.SubprocessRunner`` in the current
environment: no per-task venv, no pip install at run time), real MLflow: either the server at
``MLFLOW_TRACKING_URI`` / ``mlflow_tracking_uri``, or a ``mlflow server`` started on loopback
for the run and stopped after it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.errors import ERROR_FILE_ENV, QubeflowError, read_reported_errors
from components.registry.client import STARTING_SERVER_WAIT_ENV
from components.registry.lineage import git_commit
from components.runtime import RUN_RECORD_ENV
from pipelines.config import PipelineConfig
from pipelines.mlflow_server import LocalMlflowServer
from pipelines.run_records import RUN_MARKER_ENV, new_record, reap_dead_runs, stop_marked

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = ".qubeflow"
#: The task that registers the classical baseline when the quantum task died (one per
#: quantum route: ``register-after-quantum-crash``, ``register-after-quantum-crash-2``).
CRASH_TASK = "register-after-quantum-crash"


class PipelineRunError(QubeflowError):
    """The local pipeline run failed; ``task`` says which step."""

    def __init__(self, message: str, *, task: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.task, self.field = task, field


@dataclass
class LocalRunResult:
    summary: dict[str, Any]
    config: PipelineConfig
    seconds: float
    pipeline_root: str
    started_server: bool
    extra: dict[str, Any] = field(default_factory=dict)


class RunConsole(io.TextIOBase):
    """Where the local runner's stdout goes during a run: every line to the run's log file;
    step progress and Qubeflow's own log lines (or everything, when verbose) to ``echo``."""

    PROGRESS = re.compile(
        r"Executing task|finished with status|Skipping conditional|"
        r"Pipeline .* finished|\[qubeflow\]|"
        r"\[KFP Executor [^\]]*(INFO|WARNING|ERROR)\]: (?!Looking for component|"
        r"Loading KFP component|Got executor_input|Wrote executor output)"
    )
    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, log_file: io.TextIOBase, echo: io.TextIOBase, verbose: bool = False) -> None:
        self.log_file, self.echo, self.verbose = log_file, echo, verbose
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            plain = self.ANSI.sub("", line)
            self.log_file.write(plain + "\n")
            if self.verbose or self.PROGRESS.search(plain):
                self.echo.write(plain.strip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.log_file.flush()
        self.echo.flush()


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` for the block (child processes inherit it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM ends the run the way Ctrl-C does: by unwinding, so its clean-up runs (the
    run's processes and local server stopped, its temp folder removed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        log.warning("%s: stopping the run's processes", signal.Signals(signum).name)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_locally(
    config: PipelineConfig, *, state_dir: str | Path = DEFAULT_STATE_DIR, verbose: bool = False
) -> LocalRunResult:
    """Validate ``config``, then run the whole pipeline locally and return its summary."""
    import kfp.local

    from pipelines.retraining import local_pipeline

    config.validate()
    # Known, harmless notices of the local runner: display names and container images are
    # cluster-only settings (the images' contents are this environment).
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    reaped = reap_dead_runs(state)  # what a run killed with -9 left behind here
    t0 = time.perf_counter()
    with ExitStack() as stack:
        uri = config.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        started = False
        if not uri:
            # Started beside the pipeline, not before it: its start-up (several seconds)
            # overlaps the training tasks, and the registry step waits for it if needed.
            server = LocalMlflowServer(state).start(wait=False)
            stack.callback(server.stop)
            stack.enter_context(_env(STARTING_SERVER_WAIT_ENV, str(server.start_timeout_s)))
            uri, started = server.uri, True
        if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:  # a local run sends no usage data
            stack.enter_context(_env("MLFLOW_DISABLE_TELEMETRY", "true"))
        # What this run starts carries its marker, and its temp files go to its own folder:
        # whatever way the run ends, both are cleaned up (see pipelines.run_records).
        record = new_record(
            state,
            tracking_uri=uri,
            started_server=started,
            server_pid=server.process.pid if started and server.process is not None else None,
        )
        stack.callback(record.remove)
        stack.enter_context(_env(RUN_MARKER_ENV, record.run_id))
        stack.enter_context(_env(RUN_RECORD_ENV, str(record.path)))
        stack.enter_context(_env("TMPDIR", str(record.tmp)))
        stack.callback(stop_marked, record.run_id)
        stack.enter_context(_sigterm_unwinds())
        run_config = config.replace(
            mlflow_tracking_uri=uri, git_commit=config.git_commit or git_commit(Path.cwd())
        )
        pipeline_root = state / "kfp_outputs"
        kfp.local.init(
            runner=kfp.local.SubprocessRunner(use_venv=False),
            pipeline_root=str(pipeline_root),
            raise_on_error=True,
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        error_file = state / f"errors-{os.getpid()}-{time.time_ns()}.jsonl"
        log_dir = state / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"run-{stamp}-{os.getpid()}.log"
        log_file = stack.enter_context(open(log_path, "w", encoding="utf-8"))
        console = RunConsole(log_file, sys.stderr, verbose)
        log.info("running the pipeline locally; full log: %s", log_path)
        previous = os.environ.get(ERROR_FILE_ENV)
        os.environ[ERROR_FILE_ENV] = str(error_file)
        runs_before = _run_dirs(pipeline_root)
        extra: dict[str, Any] = {"log": str(log_path), "reaped": reaped}
        try:
            with contextlib.redirect_stdout(console):
                task = local_pipeline()(**run_config.pipeline_arguments())
            summary = json.loads(task.output)
        except Exception as exc:
            # The quantum task died and the crash task registered the classical baseline:
            # KFP reports the run as failed (a task did), but it did what it is for.
            crashed = _crash_summary(pipeline_root, runs_before)
            if crashed is None:
                raise _explain_failure(exc, error_file, log_path) from exc
            summary = crashed
            extra["pipeline_failure"] = RunConsole.ANSI.sub("", str(exc))
            log.warning("%s; %s", extra["pipeline_failure"], summary.get("fallback_reason"))
        finally:
            if previous is None:
                os.environ.pop(ERROR_FILE_ENV, None)
            else:
                os.environ[ERROR_FILE_ENV] = previous
            error_file.unlink(missing_ok=True)
    return LocalRunResult(
        summary=summary,
        config=run_config,
        seconds=time.perf_counter() - t0,
        pipeline_root=str(pipeline_root),
        started_server=started,
        extra=extra,
    )


def _run_dirs(pipeline_root: Path) -> set[Path]:
    """The local runner's run directories (``{pipeline_root}/{pipeline}-{timestamp}``)."""
    return {p for p in pipeline_root.glob("*") if p.is_dir()} if pipeline_root.is_dir() else set()


def _crash_summary(pipeline_root: Path, runs_before: set[Path]) -> dict[str, Any] | None:
    """The summary the crash task returned in this run (its executor output in the run's
    directory), or None when it registered nothing."""
    for run in sorted(_run_dirs(pipeline_root) - runs_before, reverse=True):
        for output in sorted(run.glob(f"{CRASH_TASK}*/executor_output.json")):
            value = json.loads(output.read_text()).get("parameterValues", {}).get("Output")
            if value:
                return json.loads(value)
    return None


def _explain_failure(exc: Exception, error_file: Path, log_path: Path) -> PipelineRunError:
    errors = read_reported_errors(str(error_file))
    if errors:
        first = errors[0]
        what = f"{first['field']}: {first['message']}" if first.get("field") else first["message"]
        return PipelineRunError(
            f"step {first.get('task')} failed: {what} (full log: {log_path})",
            task=first.get("task"),
            field=first.get("field"),
        )
    return PipelineRunError(f"pipeline failed: {exc} (full log: {log_path})")
