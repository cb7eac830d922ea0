"""What the quantum step hands to the registry step: ``quantum_outcome.json`` (status,
reason, backend, budget use), ``calibration.json`` when a backend was reached and, on success,
the model bundle, all in the step's output directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.quantum.failures import QuantumStepFailure
from components.training.bundle import ModelBundle

OUTCOME_FILE = "quantum_outcome.json"
CALIBRATION_FILE = "calibration.json"


@dataclass
class QuantumOutcome:
    status: str  # "ok" | "fallback"
    backend: str
    reason: str | None = None  # "<code>: <message>" when status == "fallback"
    estimate: dict[str, Any] | None = None
    #: The resolved method, its cost and why (``MethodPlan.to_dict()``), once planned.
    method: dict[str, Any] | None = None
    seconds: float = 0.0
    #: The step's guard settings (logged as MLflow params by the registry step).
    settings: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    bundle: ModelBundle | None = None

    @property
    def fallback(self) -> bool:
        return self.status == "fallback"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("bundle")
        data.pop("calibration")
        return data


def save_outcome(out: Path, outcome: QuantumOutcome) -> None:
    (out / OUTCOME_FILE).write_text(json.dumps(outcome.to_dict(), indent=2, sort_keys=True))
    if outcome.calibration is not None:
        (out / CALIBRATION_FILE).write_text(
            json.dumps(outcome.calibration, indent=2, sort_keys=True)
        )


def load_outcome(path: str | Path) -> QuantumOutcome:
    """Read a quantum step's output directory (the registry step's view of it)."""
    from components.training.bundle import INFO_FILE, load_bundle

    root = Path(path)
    outcome_path = root / OUTCOME_FILE
    if not outcome_path.is_file():
        raise QuantumStepFailure("error", f"{root} holds no {OUTCOME_FILE}", field="quantum_model")
    data = json.loads(outcome_path.read_text())
    cal_path = root / CALIBRATION_FILE
    data["calibration"] = json.loads(cal_path.read_text()) if cal_path.is_file() else None
    outcome = QuantumOutcome(**data)
    if outcome.status == "ok" and (root / INFO_FILE).is_file():
        outcome.bundle = load_bundle(root)
    return outcome
