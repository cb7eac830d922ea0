"""What a model version's clients depend on — input columns (names, order, types), label set,
task type — recorded on the version and compared by the gate's first rule: a candidate that a
client of ``@champion`` could not call the same way is never promoted.

Recorded by the publish step as version tags (``model.inputs``, ``model.labels``,
``model.task``); a version logged before they existed is read from its MLflow signature
(inputs only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from components.registry import mlflow_names as names

#: Longest ``model.inputs`` tag written as the column list; wider schemas are recorded by hash.
MAX_INPUTS_TAG = 4900
#: Columns named in a difference before "… and N more".
SHOWN = 5


@dataclass(frozen=True)
class ModelInterface:
    #: (column, type) in order, or None when unknown; ``digest`` identifies it either way
    inputs: tuple[tuple[str, str], ...] | None = None
    labels: tuple[str, ...] | None = None
    task: str | None = None  # binary | multiclass
    digest: str | None = None

    @classmethod
    def of(cls, inputs: list[tuple[str, str]] | None, labels: list[Any] | None) -> ModelInterface:
        cols = None if inputs is None else tuple((str(n), str(t)) for n, t in inputs)
        labs = None if labels is None else tuple(str(v) for v in labels)
        task = None if labs is None else ("binary" if len(labs) == 2 else "multiclass")
        return cls(cols, labs, task, None if cols is None else _digest(cols))

    @classmethod
    def from_signature(cls, signature: Any, labels: list[Any] | None = None) -> ModelInterface:
        if signature is None or signature.inputs is None:
            return cls.of(None, labels)
        cols = [(c.name, getattr(c.type, "name", str(c.type))) for c in signature.inputs.inputs]
        return cls.of(cols, labels)

    def to_tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        if self.inputs is not None:
            text = json.dumps([list(c) for c in self.inputs])
            tags[names.TAG_MODEL_INPUTS] = (
                text if len(text) <= MAX_INPUTS_TAG else f"sha256:{self.digest}"
            )
        if self.labels is not None:
            tags[names.TAG_MODEL_LABELS] = json.dumps(list(self.labels))
            tags[names.TAG_MODEL_TASK] = str(self.task)
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ModelInterface:
        raw = tags.get(names.TAG_MODEL_INPUTS)
        inputs, digest = None, None
        if raw and raw.startswith("sha256:"):
            digest = raw.removeprefix("sha256:")
        elif raw:
            try:
                inputs = tuple((str(n), str(t)) for n, t in json.loads(raw))
                digest = _digest(inputs)
            except (ValueError, TypeError):
                inputs = None
        try:
            labels = tuple(json.loads(tags[names.TAG_MODEL_LABELS]))
        except (KeyError, ValueError, TypeError):
            labels = None
        return cls(inputs, labels, tags.get(names.TAG_MODEL_TASK), digest)

    @property
    def known(self) -> bool:
        return self.digest is not None


def _digest(cols: tuple[tuple[str, str], ...]) -> str:
    return hashlib.sha256(json.dumps([list(c) for c in cols]).encode()).hexdigest()


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def differences(candidate: ModelInterface, champion: ModelInterface) -> list[str]:
    """What a client of the champion would see change; empty when compatible."""
    out: list[str] = []
    if candidate.digest != champion.digest:
        if candidate.inputs is None or champion.inputs is None:
            out.append("input schema differs (recorded by hash)")
        else:
            mine, theirs = dict(candidate.inputs), dict(champion.inputs)
            missing = [n for n in theirs if n not in mine]
            added = [n for n in mine if n not in theirs]
            retyped = [
                f"{n} {theirs[n]}->{mine[n]}" for n in theirs if n in mine and mine[n] != theirs[n]
            ]
            if missing:
                out.append(f"{len(missing)} input column(s) missing: {_names(missing)}")
            if added:
                out.append(f"{len(added)} input column(s) added: {_names(added)}")
            if retyped:
                out.append(f"{len(retyped)} column type(s) changed: {_names(retyped)}")
            if not (missing or added or retyped):
                out.append("input columns in a different order")
    if candidate.labels is not None and champion.labels is not None:
        if set(candidate.labels) != set(champion.labels):
            out.append(
                f"labels {sorted(candidate.labels)} instead of the champion's "
                f"{sorted(champion.labels)}"
            )
        if candidate.task != champion.task:
            out.append(f"task {candidate.task} instead of {champion.task}")
    return out
