"""``qubeflow estimate``: what the quantum step would cost, before anything runs.

Reads the dataset to size the split exactly as the data step will, builds the backend, and,
when the device can be reached (fake devices always; IBM with credentials), compiles the
kernel circuit for it to estimate device time. Nothing is submitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from components.feature_maps import FeatureMap
from components.quantum.budget import WorkEstimate
from pipelines.config import PipelineConfig


@dataclass
class CostEstimate:
    backend: str
    n_train: int
    n_test: int
    train: WorkEstimate
    test: WorkEstimate
    seconds_per_shot: float | None = None
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def total(self) -> WorkEstimate:
        return self.train + self.test

    @property
    def device_seconds(self) -> float | None:
        if self.seconds_per_shot is None:
            return None
        return self.total.shots * self.seconds_per_shot

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "n_train": self.n_train, "n_test": self.n_test,
                "train_gram": self.train.to_dict(), "test_kernel": self.test.to_dict(),
                "total": self.total.to_dict(), "seconds_per_shot": self.seconds_per_shot,
                "device_seconds": self.device_seconds, "within_budget": not self.refusals,
                "refusals": self.refusals, "notes": self.notes}


def split_sizes(n_rows: int, test_size: float) -> tuple[int, int]:
    """(train, test) rows as scikit-learn's ``train_test_split`` sizes them."""
    n_test = math.ceil(test_size * n_rows)
    return n_rows - n_test, n_test


def estimate_run(config: PipelineConfig) -> CostEstimate:
    from components.data.sources import load_table
    from components.quantum.backends import get_backend
    from components.quantum.budget import QuantumBudget
    from components.quantum.failures import QuantumStepFailure

    config.validate()
    frame, _ = load_table(config.dataset)
    n_train, n_test = split_sizes(len(frame), config.test_size)
    fmap = FeatureMap(kind=config.feature_map, n_qubits=config.n_qubits, reps=config.reps,
                      entanglement=config.entanglement)
    backend = get_backend(config.quantum_backend)
    notes: list[str] = []
    try:
        backend.prepare(fmap)
    except QuantumStepFailure as failure:
        notes.append(f"device not reached ({failure.summary}); device time unknown")
    train = backend.estimate(fmap, n_train)
    test = backend.estimate(fmap, n_test, n_train)
    per_shot = getattr(backend, "seconds_per_shot", lambda _f: None)(fmap)
    estimate = CostEstimate(config.quantum_backend, n_train, n_test, train, test, per_shot,
                            notes)
    if backend.exact:
        notes.append("exact backend: circuits are state preparations (one per sample), "
                     "no shots, no jobs")
    elif per_shot is None and getattr(backend, "kind", "") not in ("hardware",
                                                                   "hardware-emulation"):
        notes.append("simulator: no device time")
    clock = QuantumBudget(config.quantum_max_shots, config.quantum_max_circuits,
                          config.quantum_max_seconds).start()
    try:
        clock.reserve(estimate.total, "the quantum kernel (train Gram + test kernel)")
    except QuantumStepFailure as failure:
        estimate.refusals.append(failure.summary)
    return estimate


def format_estimate(e: CostEstimate, config: PipelineConfig) -> str:
    def row(name: str, w: WorkEstimate) -> str:
        return f"  {name:<26}{w.circuits:>12,}{w.shots:>16,}{w.jobs:>6}"

    lines = [f"Quantum step cost estimate: {e.backend}, {config.n_qubits} qubits, "
             f"{config.feature_map} map (reps={config.reps}, {config.entanglement})",
             f"  dataset {config.dataset}: {e.n_train} train x {e.n_test} test rows",
             "",
             f"  {'':<26}{'circuits':>12}{'shots':>16}{'jobs':>6}",
             row(f"train Gram ({e.n_train}x{e.n_train})", e.train),
             row(f"test kernel ({e.n_test}x{e.n_train})", e.test),
             row("total", e.total)]
    if e.device_seconds is not None:
        lines.append(f"  estimated device time     {e.device_seconds:,.0f} s "
                     f"({e.device_seconds / 3600:.2f} h; {e.seconds_per_shot * 1e6:.0f} us "
                     "per shot incl. repetition delay)")
    lines += [f"  note: {n}" for n in e.notes]
    budget = (f"quantum_max_circuits={config.quantum_max_circuits:,}, "
              f"quantum_max_shots={config.quantum_max_shots:,}, "
              f"quantum_max_seconds={config.quantum_max_seconds:g}")
    if e.refusals:
        lines += ["", f"  OVER BUDGET ({budget}): the quantum step would refuse to start and "
                      "fall back:"] + [f"    {r}" for r in e.refusals]
    else:
        lines += ["", f"  within budget ({budget})"]
    return "\n".join(lines)
