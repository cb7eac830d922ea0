"""Gate operations on the registry: decide and apply (pipeline and ``qubeflow promote``),
roll back, and read the champion history. All alias moves happen inside a
:class:`GateTransaction`, in this order:

1. the plan (aliases' current targets, the history key) is journaled on the gate lock;
2. the champion is re-read under the lock and the policy decides;
3. the decision is written as version tags (``gate.applied=pending`` if an alias will move)
   and as a JSON artifact, *before* any alias moves;
4. the aliases move (champion: only if promoted and mode ``enabled``), the history entry is
   appended, and ``gate.applied`` becomes ``true``;
5. commit. Any failure before the commit rolls all of it back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from components.errors import RegistryError
from components.registry import mlflow_names as names
from components.registry.client import alias_version, current_champion
from components.registry.compatibility import ModelInterface
from components.registry.gate import Evidence, GateDecision, evaluate
from components.registry.history import (
    DECISION,
    PROMOTE,
    ROLLBACK,
    HistoryEntry,
    HistoryReport,
    history_key,
    next_seq,
    parse_history,
    read_history,
    rollback_target,
)
from components.registry.policy import PromotionPolicy
from components.registry.transaction import GateTransaction

log = logging.getLogger(__name__)
MAX_REASON = 500


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def transaction(
    client: Any,
    name: str,
    policy: PromotionPolicy,
    actor: str,
    *,
    clock: Callable[[], float] = time.time,
) -> GateTransaction:
    """The gate transaction under ``policy``'s lock settings; ``clock`` times the lease."""
    return GateTransaction(
        client,
        name,
        actor=actor,
        timeout_s=policy.concurrency.lock_timeout_seconds,
        lease_s=policy.concurrency.lock_lease_seconds,
        clock=clock,
    )


def decide_and_apply(
    txn: GateTransaction,
    version: str,
    policy: PromotionPolicy,
    *,
    actor: str,
    run_id: str | None,
    artifact_path: str,
    first_decision: bool = True,
) -> GateDecision:
    """Steps 2-4 above for ``version`` inside ``txn`` (the caller commits).

    Records are append-only. ``first_decision`` (the pipeline, right after registering the
    version) writes the version's ``gate.*`` tags; a later decision (``qubeflow promote``,
    any mode) never rewrites them: it is a new record — its own JSON artifact and a history
    entry (a champion move, or a ``decision`` entry that moved nothing, e.g. a dry run)."""
    client, name = txn.client, txn.model_name
    champion = current_champion(client, name)
    challenger = alias_version(client, name, names.ALIAS_CHALLENGER)
    ev = evidence_of(client, name, version)
    theirs = evidence_of(client, name, champion) if champion and champion != version else None
    history = read_history(client, name)
    decision = evaluate(
        policy,
        ev,
        model_name=name,
        champion_version=champion,
        champion_metrics=theirs.metrics if theirs else {},
        champion_interface=theirs.interface if theirs else None,
        champion_since=champion_since(client, name, champion, history) if champion else None,
        actor=actor,
    )
    enabled = policy.mode == "enabled"
    moves_champion = enabled and decision.promoted and champion != version
    records = moves_champion or not first_decision
    key = history_key(next_seq(history)) if records else None
    if moves_champion:
        txn.plan_alias(names.ALIAS_CHAMPION, champion)
    if key:
        txn.plan(history_key=key)
    if enabled and challenger != (None if decision.promoted else version):
        txn.plan_alias(names.ALIAS_CHALLENGER, challenger)
    decision.applied = (
        "pending" if moves_champion else "true" if enabled and decision.promoted else "false"
    )
    if champion == version and decision.promoted and enabled:
        decision.extra["note"] = "candidate is already the champion; no alias moved"
    decision.extra.update({"run_id": run_id or "", "challenger_version_at_decision": challenger})
    if key:
        decision.extra["history_seq"] = next_seq(history)
    _write_decision(client, decision, run_id, artifact_path, on_version=first_decision)

    if enabled and not decision.promoted:
        txn.ensure_lock()
        client.set_registered_model_alias(name, names.ALIAS_CHALLENGER, version)
    if moves_champion:
        txn.ensure_lock()
        client.set_registered_model_alias(name, names.ALIAS_CHAMPION, version)
        if challenger is not None:
            client.delete_registered_model_alias(name, names.ALIAS_CHALLENGER)
        decision.applied = "true"
    if key:
        entry = HistoryEntry(
            seq=next_seq(history),
            at=datetime.now(UTC).isoformat(),
            action=PROMOTE if moves_champion else DECISION,
            version=version,
            previous=champion,
            actor=actor,
            reason="; ".join(decision.reasons)[:MAX_REASON],
            mode=policy.mode,
            policy_hash=policy.hash,
            run_id=run_id or "",
            outcome=decision.outcome,
            record=artifact_path if run_id else "",
        )
        txn.ensure_lock()
        client.set_registered_model_tag(name, entry.key, entry.to_json())
    if moves_champion:
        _write_decision(client, decision, run_id, artifact_path, on_version=first_decision)
    return decision


def champion_since(
    client: Any, name: str, champion: str, history: list[HistoryEntry] | None = None
) -> str | None:
    """When ``champion`` last became champion: its last recorded move, else (moved outside
    the gate, or before the history existed) when the version was registered."""
    for entry in reversed(history if history is not None else read_history(client, name)):
        if entry.moves and entry.version == champion:
            return entry.at
    try:
        created = client.get_model_version(name, champion).creation_timestamp
    except Exception:
        return None
    return datetime.fromtimestamp(created / 1000.0, UTC).isoformat() if created else None


@contextlib.contextmanager
def _mlflow_uris(uri: str) -> Iterator[None]:
    """mlflow's global tracking and registry URIs (which ``models:/`` resolves on) pointed at
    ``uri`` for the block, then restored exactly: module globals and environment."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        tracking_utils.set_tracking_uri(uri)
        registry_utils.set_registry_uri(uri)
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def evidence_of(client: Any, name: str, version: str) -> Evidence:
    """A version's evidence from its tags; its interface from its MLflow signature when it
    was registered before the interface tags existed."""
    mv = client.get_model_version(name, str(version))
    tags = dict(mv.tags)
    if Evidence.legacy(tags) or not mv.run_id:
        ev = Evidence.from_tags(str(version), tags)
    else:
        run = client.get_run(mv.run_id)
        ev = Evidence.from_run(str(version), tags, dict(run.data.tags), dict(run.data.metrics))
    if not ev.interface.known:
        try:
            from mlflow.models import get_model_info

            with _mlflow_uris(client._tracking_client.tracking_uri):
                signature = get_model_info(f"models:/{name}/{version}").signature
            ev = dataclasses.replace(ev, interface=ModelInterface.from_signature(signature))
        except Exception as exc:  # no signature, or unreadable: the rule says so
            log.warning("no input schema for %s v%s: %s", name, version, exc)
    return ev


def _write_decision(
    client: Any,
    decision: GateDecision,
    run_id: str | None,
    artifact_path: str,
    *,
    on_version: bool = True,
) -> None:
    """The decision's full record as a JSON artifact of the version's run; ``on_version``
    (its first decision only) also the few ``gate.*`` tags a reader scans on the version."""
    name, version = decision.model_name, decision.candidate_version
    if on_version:
        tags = {
            names.TAG_GATE_APPLIED: decision.applied,  # first: a partial record never claims
            names.TAG_GATE_DECISION: decision.outcome,
            names.TAG_GATE_MODE: decision.mode,
            names.TAG_GATE_REASONS: "; ".join(decision.reasons)[:4900],
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    if run_id:
        client.log_dict(run_id, decision.to_dict(), artifact_path)


# ---- by hand: promote, rollback, history -----------------------------------------------


def promote_version(
    client: Any,
    name: str,
    version: str,
    policy: PromotionPolicy,
    *,
    actor: str | None = None,
    clock: Callable[[], float] = time.time,
) -> GateDecision:
    """Evaluate an existing version under ``policy`` and apply the decision per its mode."""
    actor = actor or cli_actor()
    mv = existing_version(client, name, version)
    decided = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"gate/decisions/v{version}-{decided}-{policy.mode}.json"
    if policy.mode == "disabled":  # nothing evaluated: nothing recorded
        return evaluate(
            policy,
            Evidence.from_tags(str(version), dict(mv.tags)),
            model_name=name,
            champion_version=current_champion(client, name),
            actor=actor,
        )
    with transaction(client, name, policy, actor, clock=clock) as txn:
        txn.plan(action="promote", candidate=str(version))
        decision = decide_and_apply(
            txn,
            str(version),
            policy,
            actor=actor,
            run_id=mv.run_id,
            artifact_path=path,
            first_decision=False,
        )
        txn.commit()
    return decision


def existing_model(client: Any, name: str) -> Any:
    """The registered model, or a RegistryError naming ``--model`` (exit 2)."""
    from components.registry.client import or_none_if_not_found

    rm = or_none_if_not_found(client.get_registered_model, name)
    if rm is None:
        raise RegistryError(f"no registered model {name!r}", field="--model")
    return rm


def existing_version(client: Any, name: str, version: str | int) -> Any:
    """The model version, or a RegistryError naming ``--version`` / ``--model`` (exit 2)."""
    from components.registry.client import or_none_if_not_found

    text = str(version).strip().removeprefix("v")
    if not text.isdigit() or int(text) < 1:
        raise RegistryError(
            f"a version is a positive integer (e.g. 3), got {str(version)!r}", field="--version"
        )
    existing_model(client, name)
    mv = or_none_if_not_found(client.get_model_version, name, text)
    if mv is None:
        latest = [str(v.version) for v in client.search_model_versions(f"name='{name}'")]
        have = f"versions: {', '.join(sorted(latest, key=int))}" if latest else "no versions"
        raise RegistryError(f"{name} has no version {text} ({have})", field="--version")
    return mv


@dataclass(frozen=True)
class RollbackResult:
    model_name: str
    demoted: str
    champion: str
    entry: HistoryEntry


def rollback_champion(
    client: Any,
    name: str,
    policy: PromotionPolicy,
    *,
    reason: str = "",
    actor: str | None = None,
    clock: Callable[[], float] = time.time,
) -> RollbackResult:
    """Move ``champion`` back to the champion before the current one's last promotion, and
    record it in the history."""
    actor = actor or cli_actor()
    existing_model(client, name)
    with transaction(client, name, policy, actor, clock=clock) as txn:
        champion = current_champion(client, name)
        history = read_history(client, name)
        target = rollback_target(history, champion)
        client.get_model_version(name, target)  # still exists?
        entry = HistoryEntry(
            seq=next_seq(history),
            at=datetime.now(UTC).isoformat(),
            action=ROLLBACK,
            version=target,
            previous=champion,
            actor=actor,
            reason=(reason or "manual rollback")[:MAX_REASON],
        )
        txn.plan(action="rollback", history_key=entry.key)
        txn.plan_alias(names.ALIAS_CHAMPION, champion)
        txn.ensure_lock()
        client.set_registered_model_alias(name, names.ALIAS_CHAMPION, target)
        client.set_registered_model_tag(name, entry.key, entry.to_json())
        client.set_model_version_tag(name, str(champion), names.TAG_GATE_DEMOTED_AT, entry.at)
        txn.commit()
    log.info("rolled back %s: champion v%s -> v%s", name, champion, target)
    return RollbackResult(name, str(champion), target, entry)


def history_report(client: Any, name: str) -> HistoryReport:
    """The history plus warnings when the registry disagrees with it."""
    from components.registry.lock import lock_name
    from components.registry.transaction import JOURNAL_TAG

    rm = existing_model(client, name)
    entries = parse_history(dict(rm.tags))
    champion = current_champion(client, name)
    warnings = []
    moves = [e for e in entries if e.moves]
    last = moves[-1].version if moves else None
    if champion != last:
        warnings.append(
            f"the champion alias points at {'v' + champion if champion else 'none'}"
            f" but the last recorded move made it "
            f"{'v' + last if last else 'none'}: it was moved outside the gate"
        )
    try:
        lock = client.get_registered_model(lock_name(name))
        if JOURNAL_TAG in (lock.tags or {}):
            warnings.append(
                "a gate transaction is in progress or was interrupted; the next "
                "gate rolls an interrupted one back once its lease expires"
            )
    except Exception:
        pass
    return HistoryReport(name, entries, champion, warnings)
