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
