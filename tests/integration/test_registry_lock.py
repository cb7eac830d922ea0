"""The gate's lease lock on a real MLflow registry (SQLite store), its lease driven by an
injected clock: expiry is decided by the clock, never by how long the machine took."""

from __future__ import annotations

import pytest

from components.errors import RegistryError
from components.registry.client import registry_client
from components.registry.lock import TAG_OWNER, RegistryLock, lock_name
from tests.support import MovableClock


def test_a_lock_is_held_for_its_lease_on_the_clock_then_broken(sqlite_tracking_uri):
    client = registry_client(sqlite_tracking_uri)
    clock = MovableClock()
    first = RegistryLock(client, "m", actor="first", lease_s=60, clock=clock).acquire()
    assert first.still_held()

    broken = []
    second = RegistryLock(
        client, "m", actor="second", timeout_s=0.2, lease_s=60, clock=clock, on_break=broken.append
    )
    with pytest.raises(RegistryError, match="is locked by first") as e:
        second.acquire()  # within the lease: waits its 0.2 s, however slow, and gives up
    assert e.value.field == "gate.lock" and broken == []
    assert first.still_held()

    clock.advance(61)  # past the lease: no sleeping
    assert not first.still_held()
    second.acquire()  # breaks the expired lock, telling on_break whose it was
    assert [tags[TAG_OWNER] for tags in broken] == [first.owner]
    assert second.still_held() and not first.still_held()
    first.release()  # no longer ours: leaves the new holder's lock alone
    assert second.current().owner == second.owner
    second.release()
    assert client.search_registered_models(f"name='{lock_name('m')}'") == []


def test_a_model_that_only_has_the_locks_name_is_refused_never_deleted(sqlite_tracking_uri):
    """A registered model named like the lock (``m.gate-lock``, created by hand or by an old
    version that let the name through) is someone's data: the gate refuses, deletes nothing."""
    from tests.support import log_tiny_model

    client = registry_client(sqlite_tracking_uri)
    _, info = log_tiny_model(sqlite_tracking_uri, "exp")
    import mlflow

    mlflow.register_model(info.model_uri, lock_name("m"))
    with pytest.raises(RegistryError, match="not a Qubeflow gate lock") as e:
        RegistryLock(client, "m", timeout_s=60, lease_s=60).acquire()
    assert "1 version(s)" in str(e.value) and "Nothing was deleted" in str(e.value)
    assert len(client.search_model_versions(f"name='{lock_name('m')}'")) == 1


@pytest.mark.parametrize("name", ["qf5.gate-lock", "qf5.gate-lock.break-abc"])
def test_reserved_lock_names_are_refused_before_anything_is_written(name):
    from components.errors import ConfigError
    from components.registry.lock import check_model_name

    with pytest.raises(ConfigError, match="reserves for its lock") as e:
        check_model_name(name)
    assert e.value.field == "registered_model_name"
    check_model_name("qf5.gate-locks")  # only the exact suffix is reserved


_CONTENDER = """
import os, sys, time
from components.registry.client import registry_client
from components.registry.lock import RegistryLock

uri, work, index = sys.argv[1], sys.argv[2], sys.argv[3]
client = registry_client(uri)
go = os.path.join(work, "go")
while not os.path.exists(go):  # start together: the race is what is under test
    time.sleep(0.01)

def on_break(tags):
    with open(os.path.join(work, "breaks"), "a") as fh:
        fh.write(tags["qubeflow.lock.owner"] + "\\n")
    time.sleep(0.3)  # widen the window between the check and the delete

lock = RegistryLock(client, "m", actor=f"p{index}", timeout_s=240, lease_s=600, on_break=on_break)
with lock:
    # Exclusive while held: a second holder at the same time fails to create the marker.
    fd = os.open(os.path.join(work, "held"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.close(fd)
    time.sleep(0.05)
    os.unlink(os.path.join(work, "held"))
print("ok")
"""


def test_many_processes_break_one_expired_lock_exactly_once(mlflow_server, tmp_path):
    """Six processes find the same expired lock at once: one breaks it (``on_break`` runs
    once), the others wait their turn; no two ever hold the lock together."""
    import subprocess
    import sys

    from tests.support import MovableClock

    client = registry_client(mlflow_server.uri)
    past = MovableClock()
    past.advance(-3600)  # a holder that died an hour ago: its lease is long over
    dead = RegistryLock(client, "m", actor="dead", lease_s=60, clock=past).acquire()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, mlflow_server.uri, str(tmp_path), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=300) for p in procs]
    failed = [err[-3000:] for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert not failed, "\n---\n".join(failed)
    assert (tmp_path / "breaks").read_text().split() == [dead.owner]
    assert client.search_registered_models("name LIKE 'm.gate-lock%'") == []


_HOLDER = """
import sys
from components.registry.client import registry_client
from components.registry.lock import RegistryLock

lock = RegistryLock(registry_client(sys.argv[1]), "m", actor="doomed", lease_s=3600).acquire()
print(lock.owner, flush=True)
sys.stdin.read()  # holds the lock until killed
"""


def test_a_holder_killed_with_sigkill_is_broken_at_once_not_after_its_lease(sqlite_tracking_uri):
    """A holder on this host killed with -9 holds a one-hour lease; the next contender finds
    its PID gone and breaks the lock right away (on_break gets its journal tags). A holder
    that is alive, or one recorded on another host, is left to its lease."""
    import os
    import signal
    import subprocess
    import sys

    from components.registry.lock import holder_is_dead, process_identity

    client = registry_client(sqlite_tracking_uri)
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, sqlite_tracking_uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    owner = proc.stdout.readline().strip()  # the lock is held once this line is printed
    held = RegistryLock(client, "m").current()
    assert held.owner == owner and held.holder["pid"] == proc.pid
    assert not holder_is_dead(held.holder)  # alive: the lease decides
    with pytest.raises(RegistryError, match="is locked by doomed"):
        RegistryLock(client, "m", timeout_s=0.2).acquire()

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    broken = []
    # timeout 120 s < the 3600 s lease: only the dead-holder check can let this through
    with RegistryLock(client, "m", actor="next", timeout_s=120, on_break=broken.append) as lock:
        assert lock.still_held()
    assert [tags["qubeflow.lock.owner"] for tags in broken] == [owner]
    assert client.search_registered_models("name LIKE 'm.gate-lock%'") == []

    elsewhere = {**process_identity(), "host": "another-host", "pid": proc.pid}
    assert not holder_is_dead(elsewhere)
    assert not holder_is_dead({**process_identity(), "pidns": "other", "pid": proc.pid})
    assert not holder_is_dead({})  # an old lock without an identity: its lease decides
