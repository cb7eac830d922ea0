"""Champion history: which version was champion when, and why.

MLflow keeps only where an alias points now. Every champion move made through the gate
(pipeline promotions, ``qubeflow promote``, ``qubeflow rollback``) appends one entry to the
registered model itself, as a tag ``gate.history.<seq>`` holding compact JSON, written under
the gate lock in the same transaction as the alias move.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from components.errors import RegistryError

HISTORY_PREFIX = "gate.history."
PROMOTE = "promote"
ROLLBACK = "rollback"
#: A decision made by hand that moved no alias (a dry run, a rejection, the champion itself).
DECISION = "decision"


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    at: str  # ISO-8601 UTC: when the alias moved
    action: str  # promote | rollback
    version: str  # champion from this moment
    previous: str | None  # champion until this moment
    actor: str = ""
    reason: str = ""
    mode: str = ""
    policy_hash: str = ""
    run_id: str = ""
    outcome: str = ""  # promote | reject (the gate's verdict; empty for rollbacks)
    record: str = ""  # the decision's JSON artifact in run_id

    @property
    def moves(self) -> bool:
        """Did the champion alias move here (promote, rollback) or was it a decision only."""
        return self.action in (PROMOTE, ROLLBACK)

    @property
    def kind(self) -> str:
        """What happened, for people: ``promoted``, ``rolled back``, ``dry run: would
        promote``, ``rejected``, ..."""
        if self.action == ROLLBACK:
            return "rolled back"
        if self.action == PROMOTE:
            return "promoted"
        verb = {"promote": "promote", "reject": "reject"}.get(self.outcome, self.outcome)
        if self.mode == "dry_run":
            return f"dry run: would {verb}"
        return {"promote": "kept (is champion)", "reject": "rejected"}.get(self.outcome, verb)

    @property
    def key(self) -> str:
        return history_key(self.seq)

    def to_json(self) -> str:
        return json.dumps(
            {k: v for k, v in asdict(self).items() if v not in ("", None)}
            | {"previous": self.previous},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> HistoryEntry:
        data = json.loads(text)
        return cls(
            **{
                k: data.get(k, "")
                for k in (
                    "seq",
                    "at",
                    "action",
                    "version",
                    "actor",
                    "reason",
                    "mode",
                    "policy_hash",
                    "run_id",
                    "outcome",
                    "record",
                )
            },
            previous=data.get("previous"),
        )


def history_key(seq: int) -> str:
    return f"{HISTORY_PREFIX}{seq:06d}"


def parse_history(tags: dict[str, str]) -> list[HistoryEntry]:
    """Entries from a registered model's tags, oldest first (unreadable ones are skipped)."""
    out = []
    for key in sorted(k for k in tags if k.startswith(HISTORY_PREFIX)):
        try:
            out.append(HistoryEntry.from_json(tags[key]))
        except (ValueError, TypeError):
            continue
    return out


def read_history(client: Any, name: str) -> list[HistoryEntry]:
    return parse_history(dict(client.get_registered_model(name).tags))


def next_seq(history: list[HistoryEntry]) -> int:
    return max((e.seq for e in history), default=0) + 1


def _parse_time(value: str | datetime) -> datetime:
    when = (
        value
        if isinstance(value, datetime)
        else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def champion_at(history: list[HistoryEntry], when: str | datetime) -> HistoryEntry | None:
    """The entry in force at ``when`` (None: no champion yet then)."""
    try:
        t = _parse_time(when)
    except ValueError:
        raise RegistryError(f"not an ISO-8601 time: {when!r}", field="--at") from None
    current = None
    for entry in history:
        if entry.moves and _parse_time(entry.at) <= t:
            current = entry
    return current


def rollback_target(history: list[HistoryEntry], champion: str | None) -> str:
    """The champion before the current one was last promoted (rollbacks are skipped, so two
    rollbacks step back twice rather than toggling)."""
    if champion is None:
        raise RegistryError("the model has no champion to roll back", field="--model")
    for entry in reversed(history):
        if entry.version == champion and entry.action == PROMOTE:
            if entry.previous is None:
                raise RegistryError(
                    f"v{champion} was the first champion; there is no previous "
                    "champion to roll back to",
                    field="--model",
                )
            return entry.previous
    raise RegistryError(
        f"the history has no promotion of the current champion v{champion} "
        "(was the alias moved outside the gate?); use qubeflow promote "
        "--version V to choose one",
        field="--model",
    )


@dataclass
class HistoryReport:
    """What ``qubeflow history`` prints."""

    model_name: str
    entries: list[HistoryEntry]
    champion: str | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "champion": self.champion,
            "history": [asdict(e) | {"kind": e.kind} for e in self.entries],
            "warnings": self.warnings,
        }

    def to_text(self) -> str:
        """An aligned table: champion moves and decisions made by hand, oldest first."""
        from components.registry.gate import align

        lines = [
            f"Champion history of {self.model_name} (current champion: "
            f"{'v' + self.champion if self.champion else 'none'})",
            "",
        ]
        rows = [
            ["#", "at (UTC)", "what", "version", "champion before", "mode", "policy", "by", "why"]
        ]
        for e in self.entries:
            rows.append(
                [
                    str(e.seq),
                    e.at[:19].replace("T", " "),
                    e.kind,
                    "v" + e.version,
                    "v" + e.previous if e.previous else "-",
                    e.mode or "-",
                    e.policy_hash or "-",
                    e.actor or "-",
                    e.reason or "-",
                ]
            )
        if self.entries:
            lines += align(rows, indent="  ")
        else:
            lines.append("  (no champion moves or decisions recorded)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
