"""What a local run leaves to clean up if it is killed, and the cleanup.

Every ``qubeflow run`` writes a record in ``<state>/runs/<run id>.json`` (who runs it: host,
PID, PID namespace; its local server's PID; its temp folder) and marks every process it starts
with ``QUBEFLOW_LOCAL_RUN=<run id>`` in their environment. The register step appends the
MLflow run it opens to ``<record>.mlflow`` (``QUBEFLOW_RUN_RECORD``,
:func:`components.runtime.note_mlflow_run`).

A run that ends — normally, by an error, SIGTERM or SIGINT — cleans up itself and removes its
record. A run killed with -9 cannot; the next ``qubeflow run`` or ``qubeflow doctor`` in the
same state folder finds its record, sees that its PID is gone (same host and PID namespace
only: anything else may still be running), stops what still carries its marker, stops its
local server, marks its MLflow runs that are still RUNNING as FAILED with the reason, removes
its temp folder and the record. A gate lock the dead run held is broken by the next gate at
once (its holder's PID is gone, see ``components.registry.lock``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import processes

log = logging.getLogger(__name__)

RUN_MARKER_ENV = "QUBEFLOW_LOCAL_RUN"
TAG_FAILURE = "qubeflow.failure"


@dataclass
class RunRecord:
    path: Path
    data: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.data["run_id"])

    @property
    def tmp(self) -> Path:
        return Path(self.data["tmp"])

    @property
    def mlflow_runs_file(self) -> Path:
        return self.path.with_suffix(".mlflow")

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        # atomically: a reader (`qubeflow doctor`, the next run) never sees half a record
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(self.data, indent=2))
        os.replace(partial, self.path)

    def mlflow_runs(self) -> list[str]:
        if not self.mlflow_runs_file.exists():
            return []
        return [line for line in self.mlflow_runs_file.read_text().split() if line]

    def remove(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.mlflow_runs_file.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def runs_dir(state: Path) -> Path:
    return state / "runs"


def new_record(
    state: Path, *, tracking_uri: str, started_server: bool, server_pid: int | None = None
) -> RunRecord:
    """Write a run's record in one go, the server's PID included: a record is never seen (or
    left behind by a kill) without the server it must stop."""
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    root = runs_dir(state)
    root.mkdir(parents=True, exist_ok=True)
    tmp = state / "tmp" / run_id
    tmp.mkdir(parents=True, exist_ok=True)
    record = RunRecord(root / f"{run_id}.json", {})
    record.update(
        run_id=run_id,
        holder=processes.identity(),
        started_at=time.time(),
        tmp=str(tmp),
        tracking_uri=tracking_uri,
        started_server=started_server,
        server_pid=server_pid,
    )
    return record


def stop_marked(run_id: str, *, exclude: frozenset[int] = frozenset()) -> list[int]:
    """Stop every process that carries ``run_id``'s marker (but ``exclude``)."""
    pids = [p for p in processes.marked(RUN_MARKER_ENV, run_id) if p not in exclude]
    return processes.terminate(pids)


def reap_dead_runs(state: Path) -> list[str]:
    """Clean up after the runs in ``state`` whose CLI process died; return what was done, one
    line per run (empty when nothing needed it)."""
    done = []
    for path in sorted(runs_dir(state).glob("*.json")):
        try:
            record = RunRecord(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        if not processes.is_dead(record.data.get("holder", {})):
            continue  # running (or elsewhere): not ours to touch
        stopped = stop_marked(record.run_id)
        server = record.data.get("server_pid")
        if isinstance(server, int) and _is_our_server(server, state):
            stopped += processes.terminate([server])
        failed = _fail_running(record, state)
        record.remove()
        done.append(
            f"run {record.run_id} (pid {record.data['holder'].get('pid')}) had died: stopped "
            f"{len(stopped)} process(es), marked {len(failed)} RUNNING MLflow run(s) FAILED"
            + (f" ({', '.join(failed)})" if failed else "")
            + ", removed its temp folder"
        )
        log.warning("%s", done[-1])
    return done


def _is_our_server(pid: int, state: Path) -> bool:
    """``pid`` is still the ``mlflow server`` of this state folder (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "mlflow" in cmdline and str(state.resolve()) in cmdline


def _fail_running(record: RunRecord, state: Path) -> list[str]:
    """Mark the dead run's MLflow runs that are still RUNNING as FAILED, with the reason."""
    runs = record.mlflow_runs()
    if not runs:
        return []
    from mlflow import MlflowClient

    from pipelines.mlflow_server import direct_local_store

    reason = (
        f"killed: the local run {record.run_id} (pid {record.data['holder'].get('pid')}) died "
        "before this run finished; marked FAILED by the next run in the same state folder"
    )
    failed = []
    with contextlib.ExitStack() as stack:
        uri = (
            stack.enter_context(direct_local_store(state))
            if record.data.get("started_server")
            else record.data["tracking_uri"]
        )
        client = MlflowClient(uri)
        for run_id in runs:
            try:
                if client.get_run(run_id).info.status != "RUNNING":
                    continue
                client.set_tag(run_id, TAG_FAILURE, reason)
                client.set_terminated(run_id, "FAILED")
                failed.append(run_id)
            except Exception as exc:  # a run that cannot be read is reported, not fatal
                log.warning("could not mark MLflow run %s FAILED: %s", run_id, exc)
    return failed
