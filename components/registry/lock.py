"""A lease lock kept in the MLflow model registry itself, so gates running in different pods
(that share nothing but the tracking server) never interleave their alias moves.

The lock for model ``NAME`` is a registered model named ``NAME.gate-lock``: creating a
registered model is atomic in every MLflow backend store (a unique key), so exactly one
contender succeeds; its owner and lease expiry are written in the same insert (as tags). A
holder that died leaves a lock that others may break once its lease has expired. Release
deletes it only if it is still ours.

Nothing but a lock the gate created is ever deleted: a lock carries the gate's owner tag and
no versions; a registered model that merely has the lock's name (``NAME.gate-lock`` registered
by hand) is refused with a clear error, never broken, and names ending in the lock suffix are
refused before anything is written (:func:`check_model_name`). Breaking an expired lock is
atomic: a contender first creates a break token ``NAME.gate-lock.break-<owner>`` for that very
lock (a unique insert, so one winner); only the winner runs ``on_break`` and deletes the lock,
the others wait for the next round. A token whose breaker died expires with its own lease.

A holder that is *provably* dead does not make others wait for its lease: the lock records the
holder's host, PID and PID namespace, and a contender on the same host in the same PID
namespace whose check finds no such process breaks the lock at once (through the same break
token and ``on_break``, which rolls back the holder's journal). Anywhere else — another
host or pod, or a PID that is running (even if reused) — only the lease decides.

Leases are unix seconds read from ``clock`` (``time.time`` by default: they are compared across
hosts); tests pass a clock they can move forward instead of sleeping out a lease. The wait
for a held lock (``timeout_s``) is measured with ``time.monotonic``.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from components.errors import ConfigError, RegistryError
from components.processes import identity as process_identity
from components.processes import is_dead as holder_is_dead
from components.registry.client import delete_if_present, is_already_exists, or_none_if_not_found

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".gate-lock"
TAG_OWNER = "qubeflow.lock.owner"
TAG_EXPIRES = "qubeflow.lock.expires_at"  # unix seconds
TAG_HOLDER = "qubeflow.lock.holder"  # JSON: who, host, pid, acquired_at
BREAK_INFIX = ".break-"


def _taken(exc: Exception) -> bool:
    """A create that lost to another holder: "already exists", or — when that holder deleted
    it in between — "not found" (MLflow's SQL store reads the existing model back after the
    unique-key violation, and the read can miss it). Either way: contended, try again."""
    return is_already_exists(exc) or "RESOURCE_DOES_NOT_EXIST" in str(
        getattr(exc, "error_code", "")
    )


def lock_name(model_name: str) -> str:
    return model_name + LOCK_SUFFIX


def check_model_name(name: str, field: str = "registered_model_name") -> None:
    """Refuse names the gate reserves for its locks (``*.gate-lock``, ``*.gate-lock.break-*``)."""
    if name.endswith(LOCK_SUFFIX) or LOCK_SUFFIX + BREAK_INFIX in name:
        raise ConfigError(
            f"{name!r} ends in {LOCK_SUFFIX!r}, which the promotion gate reserves for its lock "
            "models; choose another name",
            field=field,
        )


@dataclass
class LockHolder:
    owner: str
    expires_at: float
    holder: dict[str, Any]
    tags: dict[str, str]


class RegistryLock:
    """``with RegistryLock(client, name, actor=...):`` — held for the block, or RegistryError
    after ``timeout_s`` naming who holds it. ``clock`` gives the unix time that leases are
    written and checked in."""

    def __init__(
        self,
        client: Any,
        model_name: str,
        *,
        actor: str = "",
        timeout_s: float = 300.0,
        lease_s: float = 120.0,
        on_break: Callable[[dict[str, str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_model_name(model_name, field="model")
        self.client = client
        self.name = lock_name(model_name)
        self.model_name = model_name
        self.actor = actor
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.owner = uuid.uuid4().hex
        self.acquired_at: float | None = None
        #: Called with an expired lock's tags before it is deleted (to roll back its journal).
        self.on_break = on_break
        self.clock = clock

    # ---- inspection -----------------------------------------------------------------
    def current(self) -> LockHolder | None:
        return self._read(self.name)

    def _read(self, name: str) -> LockHolder | None:
        rm = or_none_if_not_found(self.client.get_registered_model, name)
        if rm is None:
            return None
        tags = rm.tags or {}
        try:
            holder = json.loads(tags.get(TAG_HOLDER, "{}"))
        except ValueError:
            holder = {}
        return LockHolder(
            tags.get(TAG_OWNER, ""), float(tags.get(TAG_EXPIRES, "0") or 0), holder, dict(tags)
        )

    def still_held(self) -> bool:
        """Ours and within the lease (checked right before each alias move)."""
        now = self.current()
        return now is not None and now.owner == self.owner and now.expires_at > self.clock()

    # ---- acquire / release ----------------------------------------------------------
    def acquire(self) -> RegistryLock:
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + self.timeout_s
        delay = 0.05
        while True:
            now = self.clock()
            holder = {
                "actor": self.actor,
                **process_identity(),
                "acquired_at": now,
            }
            try:
                self.client.create_registered_model(
                    self.name,
                    tags={
                        TAG_OWNER: self.owner,
                        TAG_EXPIRES: f"{now + self.lease_s}",
                        TAG_HOLDER: json.dumps(holder),
                    },
                    description=f"Qubeflow gate lock for {self.model_name} (transient; "
                    "deleted when the gate finishes).",
                )
                self.acquired_at = now
                log.debug("acquired %s", self.name)
                return self
            except MlflowException as exc:
                if not _taken(exc):
                    raise
            held = self.current()
            if held is not None and not held.owner:
                # No owner tag: a model the gate did not create (refused at once if it has
                # versions), or a lock whose tags a store has not written yet: wait for
                # them until the timeout, never break it.
                if time.monotonic() > deadline or self.client.search_model_versions(
                    f"name='{self.name}'"
                ):
                    self._refuse_foreign_model()
            elif held is not None and self._breakable(held) and self._break(held):
                continue
            if time.monotonic() > deadline:
                who = held.holder if held else {}
                raise RegistryError(
                    f"the promotion gate of {self.model_name!r} is locked by "
                    f"{who.get('actor') or 'another run'} (host {who.get('host', '?')}, pid "
                    f"{who.get('pid', '?')}) and was not released within {self.timeout_s:.0f} s; "
                    f"a dead holder's lock expires at its lease "
                    f"({time.strftime('%H:%M:%S', time.localtime(held.expires_at)) if held else '?'})",
                    field="gate.lock",
                )
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)

    def _breakable(self, held: LockHolder) -> bool:
        """Expired on the clock, or its holder provably dead (see the module docstring)."""
        if held.expires_at < self.clock():
            return True
        if holder_is_dead(held.holder):
            log.warning(
                "the gate lock of %s is held by pid %s on this host, which is no longer "
                "running: breaking it without waiting for its lease",
                self.model_name,
                held.holder.get("pid"),
            )
            return True
        return False

    def _refuse_foreign_model(self) -> None:
        """The lock's name is taken by a registered model the gate did not create."""
        versions = self.client.search_model_versions(f"name='{self.name}'")
        raise RegistryError(
            f"a registered model named {self.name!r} exists ({len(versions)} version(s)) but is "
            f"not a Qubeflow gate lock: the gate of {self.model_name!r} cannot lock until it "
            "is renamed or removed by hand. Nothing was deleted.",
            field="gate.lock",
        )

    def _break(self, held: LockHolder) -> bool:
        """Delete an expired lock if this contender wins its break token (True: the lock is
        gone or changed, try again at once; False: another contender is breaking it, wait)."""
        from mlflow.exceptions import MlflowException

        token = f"{self.name}{BREAK_INFIX}{held.owner}"
        now = self.clock()
        try:
            self.client.create_registered_model(
                token,
                tags={TAG_OWNER: self.owner, TAG_EXPIRES: f"{now + self.lease_s}"},
                description=f"Qubeflow: breaking the expired gate lock of {self.model_name}.",
            )
        except MlflowException as exc:
            if not _taken(exc):
                raise
            breaker = self._read(token)
            if breaker is not None and breaker.expires_at < self.clock():
                delete_if_present(self.client.delete_registered_model, token)  # breaker died
            return False
        try:
            again = self.current()
            if again is None or again.owner != held.owner:
                return True
            if self.client.search_model_versions(f"name='{self.name}'"):
                self._refuse_foreign_model()
            log.warning(
                "breaking the expired gate lock of %s held by %s", self.model_name, held.holder
            )
            if self.on_break is not None:
                self.on_break(again.tags)
            delete_if_present(self.client.delete_registered_model, self.name)
            return True
        finally:
            delete_if_present(self.client.delete_registered_model, token)

    def release(self) -> None:
        held = self.current()
        if held is None or held.owner != self.owner:
            log.warning("gate lock of %s was no longer ours at release", self.model_name)
            return
        delete_if_present(self.client.delete_registered_model, self.name)

    def __enter__(self) -> RegistryLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.release()
        except Exception as err:  # the server may be the reason we are leaving
            if exc is None:
                raise RegistryError(
                    f"could not release the gate lock: {err}", field="gate.lock"
                ) from err
            log.error(
                "could not release the gate lock of %s (expires with its lease): %s",
                self.model_name,
                err,
            )
