"""A local run's record is whole from its first write: the server PID the clean-up must stop
is in it, and a reader never finds half a file."""

from __future__ import annotations

import json

from pipelines.run_records import new_record, runs_dir


def test_a_new_record_holds_its_server_pid_from_the_first_write(tmp_path):
    record = new_record(
        tmp_path, tracking_uri="http://127.0.0.1:1", started_server=True, server_pid=4242
    )
    on_disk = json.loads(record.path.read_text())
    assert on_disk["server_pid"] == 4242 and on_disk["started_server"] is True
    assert [p.name for p in runs_dir(tmp_path).iterdir()] == [record.path.name]  # no partial


def test_an_update_replaces_the_record_whole(tmp_path):
    record = new_record(tmp_path, tracking_uri="http://x", started_server=False)
    assert json.loads(record.path.read_text())["server_pid"] is None
    record.update(note="x" * 10_000)
    assert json.loads(record.path.read_text())["note"] == "x" * 10_000
    assert [p.name for p in runs_dir(tmp_path).iterdir()] == [record.path.name]
