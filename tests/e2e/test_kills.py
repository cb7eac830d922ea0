"""Kills leave nothing behind: real ``qubeflow run`` processes (their own local ``mlflow
server``), real signals. SIGTERM and SIGINT to the CLI's PID alone stop its tasks and its server
and remove its temp folder; a run killed with -9 (with its tasks, as when its container dies)
is cleaned up by ``qubeflow doctor``: server stopped, its RUNNING MLflow run marked FAILED with
the reason; the next run then starts and promotes as usual."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from components import processes
from pipelines.mlflow_server import direct_local_store
from pipelines.run_records import RUN_MARKER_ENV, TAG_FAILURE

pytestmark = pytest.mark.slow
#: Generous: how long a step may take on a loaded machine, never what decides a result.
PATIENCE_S = 300


def _start(state: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--state-dir", str(state), "--json"],
        env=env,
        cwd=state,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(what: str, probe, proc: subprocess.Popen):
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {PATIENCE_S} s")


def _record(state: Path) -> dict | None:
    records = list((state / "runs").glob("*.json"))
    return json.loads(records[0].read_text()) if records else None


def _task_running(state: Path, task: str) -> bool:
    logs = list((state / "logs").glob("run-*.log"))
    return bool(logs) and f"Executing task '{task}'" in logs[0].read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_cli_alone_stops_its_tasks_and_server(tmp_path, sig):
    proc = _start(tmp_path)
    record = _wait_for("run record", lambda: _record(tmp_path), proc)
    _wait_for("a running task", lambda: _task_running(tmp_path, "train-classical-model"), proc)
    os.kill(proc.pid, sig)  # the PID alone, not its process group
    _, err = proc.communicate(timeout=PATIENCE_S)
    assert proc.returncode in (128 + sig, 2, 130), err[-2000:]
    assert processes.marked(RUN_MARKER_ENV, record["run_id"]) == []
    assert not processes.is_running(record["server_pid"])
    assert not Path(record["tmp"]).exists() and _record(tmp_path) is None


def test_a_run_killed_with_sigkill_is_cleaned_up_by_doctor_and_the_next_run(tmp_path):
    proc = _start(tmp_path)
    record = _wait_for("run record", lambda: _record(tmp_path), proc)
    mlflow_runs = tmp_path / "runs" / f"{record['run_id']}.mlflow"
    _wait_for("the register step's MLflow run", mlflow_runs.exists, proc)
    # The container dies: the CLI and every task at once, -9; its server (own session) stays.
    for pid in [proc.pid, *processes.marked(RUN_MARKER_ENV, record["run_id"])]:
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=PATIENCE_S)
    run_id = mlflow_runs.read_text().split()[0]
    assert processes.is_running(record["server_pid"])  # left behind, until the clean-up

    doctor = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "doctor", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert doctor.returncode == 0, doctor.stderr[-2000:]
    assert f"run {record['run_id']} (pid {proc.pid}) had died" in doctor.stdout
    assert not processes.is_running(record["server_pid"])
    assert not Path(record["tmp"]).exists() and _record(tmp_path) is None
    with direct_local_store(tmp_path) as uri:
        run = MlflowClient(uri).get_run(run_id)
    # killed within 0.1 s of opening its run, seconds of logging before it could finish
    assert run.info.status == "FAILED"
    assert "killed: the local run" in run.data.tags[TAG_FAILURE]

    again = _start(tmp_path)  # starts at once: nothing to wait for (no lease to sit out)
    out, err = again.communicate(timeout=PATIENCE_S)
    assert again.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["decision"] in ("promote", "reject") and summary["model_version"]
    assert (
        "nothing to clean up"
        in subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "doctor", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=PATIENCE_S,
        ).stdout
    )
