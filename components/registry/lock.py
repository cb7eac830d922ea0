"""A lease lock kept in the MLflow model registry itself, so gates running in different pods
(that share nothing but the tracking server) never interleave their alias moves.

The lock for model ``NAME`` is a registered model named ``NAME.gate-lock``: creating a
registered model is atomic in every MLflow backend store (a unique key), so exactly one
contender succeeds; its owner and lease expiry are written in the same insert (as tags). A
holder that died leaves a lock that others may break once its lease has expired. Release
deletes it only if it is still ours.

Leases are unix seconds read from ``clock`` (``time.time`` by default: they are compared across
hosts); tests pass a clock they can move forward instead of sleeping out a lease. The wait
for a held lock (``timeout_s``) is measured with ``time.monotonic``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from components.errors import RegistryError
from components.registry.client import delete_if_present, is_already_exists, or_none_if_not_found

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".gate-lock"
TAG_OWNER = "qubeflow.lock.owner"
TAG_EXPIRES = "qubeflow.lock.expires_at"  # unix seconds
TAG_HOLDER = "qubeflow.lock.holder"  # JSON: who, host, pid, acquired_at


def lock_name(model_name: str) -> str:
    return model_name + LOCK_SUFFIX


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
        rm = or_none_if_not_found(self.client.get_registered_model, self.name)
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
                "host": socket.gethostname(),
                "pid": os.getpid(),
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
                if not is_already_exists(exc):
                    raise
            held = self.current()
            if held is not None and held.expires_at < self.clock():
                self._break(held)
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

    def _break(self, held: LockHolder) -> None:
        """Delete an expired lock, if it is still the same expired one."""
        again = self.current()
        if again is None or again.owner != held.owner:
            return
        log.warning("breaking the expired gate lock of %s held by %s", self.model_name, held.holder)
        if self.on_break is not None:
            self.on_break(again.tags)
        delete_if_present(self.client.delete_registered_model, self.name)

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
