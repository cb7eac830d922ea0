"""Registry writes as one transaction: under the gate lock, journaled on the lock itself.

Before each write the transaction records in the lock's journal what it is about to change
(and what to put back). If anything fails, the journal is rolled back at once; if that is
impossible too (the server went away), the lock is left in place with its journal, and the
next gate on the model rolls it back when it breaks the expired lock. The lock is released
only after a commit or a complete rollback, so a journal is never lost.

What a rollback undoes (each step idempotent):
- ``champion`` and ``challenger`` aliases put back where they pointed before;
- the champion-history entry the transaction wrote, removed;
- versions the transaction's run created, deleted (pipeline publish); or, for a version that
  existed before (``qubeflow promote``), its decision marked ``gate.applied=aborted``;
- the run marked FAILED and deleted (pipeline publish);
- the registered model, deleted if the transaction created it and it has no versions left.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from components.errors import RegistryError
from components.registry import mlflow_names as names
from components.registry.client import delete_if_present
from components.registry.lock import RegistryLock

log = logging.getLogger(__name__)
JOURNAL_TAG = "qubeflow.lock.journal"
UNSET = "<unset>"  # journal value for "alias did not exist"


def _attempt(done: list[str], failed: list[str], what: str, fn: Any, *args: Any) -> None:
    try:
        done.append(what if delete_if_present(fn, *args) else f"{what} (already gone)")
    except Exception as exc:  # connection errors: keep going, report
        failed.append(f"{what}: {exc}")


def _restore_alias(client: Any, name: str, alias: str, target: str) -> None:
    if target == UNSET:
        delete_if_present(client.delete_registered_model_alias, name, alias)
    else:
        client.set_registered_model_alias(name, alias, target)


def rollback_journal(client: Any, journal: dict[str, Any]) -> str:
    """Undo what ``journal`` says was (or may have been) written; returns what was undone.
    Raises RegistryError if any step failed (the caller then keeps the lock)."""
    name = journal.get("model", "")
    done: list[str] = []
    failed: list[str] = []
    for alias in (names.ALIAS_CHAMPION, names.ALIAS_CHALLENGER):
        before = journal.get(f"{alias}_before")
        if name and before is not None and journal.get(f"{alias}_planned"):
            _attempt(
                done,
                failed,
                f"put {alias} back to {'none' if before == UNSET else 'v' + before}",
                _restore_alias,
                client,
                name,
                alias,
                before,
            )
    if name and journal.get("history_key"):
        _attempt(
            done,
            failed,
            f"remove history entry {journal['history_key']}",
            client.delete_registered_model_tag,
            name,
            journal["history_key"],
        )
    run_id = journal.get("run_id")
    if name and journal.get("owns_versions") and run_id:
        try:
            versions = [
                str(v.version)
                for v in client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
            ]
        except Exception as exc:
            versions = []
            failed.append(f"find versions of run {run_id}: {exc}")
        for v in versions:
            _attempt(done, failed, f"delete version {v}", client.delete_model_version, name, v)
    elif name and journal.get("version"):
        _attempt(
            done,
            failed,
            f"mark v{journal['version']} decision aborted",
            client.set_model_version_tag,
            name,
            journal["version"],
            names.TAG_GATE_APPLIED,
            "aborted",
        )
    if journal.get("owns_run") and run_id:
        _attempt(done, failed, "mark run FAILED", client.set_terminated, run_id, "FAILED")
        _attempt(done, failed, f"delete run {run_id}", client.delete_run, run_id)
    if name and journal.get("created_model"):

        def drop_if_empty() -> None:
            if not client.search_model_versions(f"name='{name}'"):
                client.delete_registered_model(name)

        _attempt(done, failed, f"delete registered model {name}", drop_if_empty)
    if failed:
        raise RegistryError(
            "could not undo: "
            + "; ".join(failed)
            + (f" (undone: {', '.join(done)})" if done else ""),
            field="mlflow",
        )
    return ", ".join(done) or "nothing to undo"


class GateTransaction:
    """``with GateTransaction(client, name, ...) as txn: txn.plan(...); write...; txn.commit()``

    Leaving the block without :meth:`commit` (normally or by an exception) rolls back."""

    def __init__(
        self,
        client: Any,
        model_name: str,
        *,
        actor: str,
        timeout_s: float = 300.0,
        lease_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self.lock = RegistryLock(
            client,
            model_name,
            actor=actor,
            timeout_s=timeout_s,
            lease_s=lease_s,
            on_break=self._roll_back_abandoned,
            clock=clock,
        )
        self.journal: dict[str, Any] = {"model": model_name, "actor": actor}
        self.committed = False
        self.undone = ""

    def _roll_back_abandoned(self, tags: dict[str, str]) -> None:
        text = tags.get(JOURNAL_TAG)
        if not text:
            return
        journal = json.loads(text)
        if journal.get("committed"):
            return
        log.warning(
            "rolling back an abandoned gate transaction on %s: %s",
            self.model_name,
            rollback_journal(self.client, journal),
        )

    def plan(self, **fields: Any) -> None:
        """Record (before writing it) what the transaction is about to change."""
        self.journal.update(fields)
        self.client.set_registered_model_tag(
            self.lock.name, JOURNAL_TAG, json.dumps(self.journal, sort_keys=True)
        )

    def plan_alias(self, alias: str, current: str | None) -> None:
        self.plan(**{f"{alias}_before": current or UNSET, f"{alias}_planned": True})

    def ensure_lock(self) -> None:
        """Right before an alias move: the lock is still ours and within its lease."""
        if not self.lock.still_held():
            raise RegistryError(
                "the gate lock expired or was taken over before the alias "
                "move (raise concurrency.lock_lease_seconds)",
                field="gate.lock",
            )

    def commit(self) -> None:
        self.plan(committed=True)
        self.committed = True

    def __enter__(self) -> GateTransaction:
        self.lock.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            try:
                self.undone = rollback_journal(self.client, self.journal)
            except Exception as err:
                self.undone = (
                    f"{err}; the gate lock of {self.model_name!r} is kept with its "
                    "journal and the next gate rolls it back once its lease expires"
                )
                log.error("%s", self.undone)
                raise RegistryError(
                    f"the gate on {self.model_name!r} failed ({_short(exc)}) and {self.undone}",
                    field="mlflow",
                ) from (exc or err)
        try:
            self.lock.release()
        except Exception as err:
            log.warning(
                "could not release the gate lock of %s (it expires with its lease%s): %s",
                self.model_name,
                "; committed" if self.committed else "",
                err,
            )
        if exc is not None and not isinstance(exc, RegistryError | KeyboardInterrupt):
            raise RegistryError(
                f"the gate on {self.model_name!r} failed ({_short(exc)}); undone: {self.undone}",
                field="mlflow",
            ) from exc


def _short(exc: BaseException | None) -> str:
    """An exception in one line (MLflow's connection errors run to several hundred chars)."""
    if exc is None:
        return "no error"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"
