"""``qubeflow estimate``: what the quantum step would cost, before anything runs.

Every method is priced on the dataset's real size — circuits, shots and jobs from the
backend's own estimate, peak memory of the quantum step, expected wall time for exact
backends (from rates measured here on a few hundred rows), device time when the device's
timing is known — and the method ``quantum_method`` resolves to (``auto`` included) is named
with the reason, or the refusal the step would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.data.split import train_test_sizes
from components.feature_maps import FeatureMap
from pipelines.config import PipelineConfig

MiB = 2**20


@dataclass
class CostEstimate:
    backend: str
    n_train: int
    n_test: int
    #: method -> its cost (``MethodCost.to_dict()``), every method that applies
    methods: dict[str, dict[str, Any]]
    chosen: str | None
    reason: str
    seconds_per_shot: float | None = None
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    #: The classical baseline's plan and estimated time; the data step's refusal when it is
    #: over ``classical_max_seconds`` (the run would fail before training).
    baseline: dict[str, Any] = field(default_factory=dict)
    baseline_refusal: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "methods": self.methods,
            "chosen": self.chosen,
            "reason": self.reason,
            "seconds_per_shot": self.seconds_per_shot,
            "within_budget": not self.refusals and not self.baseline_refusal,
            "refusals": self.refusals,
            "notes": self.notes,
            "baseline": self.baseline,
            "baseline_refusal": self.baseline_refusal,
        }


def estimate_run(config: PipelineConfig) -> CostEstimate:
    from components.data.sources import load_table
    from components.errors import ConfigError
    from components.quantum.backends import get_backend
    from components.quantum.failures import QuantumStepFailure
    from components.quantum.methods import (
        DataShape,
        measure_rates,
        method_cost,
    )
    from components.steps.train_quantum.step import plan_for
    from components.training.baseline_cost import check_baseline_cost

    config.validate()
    options = config.quantum_options()
    frame, _ = load_table(config.dataset)
    baseline = config.prepare_options().baseline_estimate(len(frame))
    try:
        baseline_line, baseline_refusal = (
            check_baseline_cost(baseline, config.classical_max_seconds),
            "",
        )
    except ConfigError as exc:
        baseline_line, baseline_refusal = "", str(exc)
    n_train, n_test = train_test_sizes(len(frame), config.test_size)
    shape = DataShape(n_train, n_test, frame.shape[1] - 1)
    del frame
    fmap = FeatureMap(
        kind=config.feature_map,
        n_qubits=config.n_qubits,
        reps=config.reps,
        entanglement=config.entanglement,
    )
    backend = get_backend(config.quantum_backend)
    notes: list[str] = []
    try:
        backend.prepare(fmap)
    except QuantumStepFailure as failure:
        notes.append(f"device not reached ({failure.summary}); device time unknown")
    rates = measure_rates(backend, fmap, probe_circuits=True)
    m = min(config.nystroem_landmarks, n_train)
    methods = {
        name: method_cost(name, backend, fmap, shape, landmarks=m, rates=rates).to_dict()
        for name in ("fidelity", "nystroem", "projected")
    }
    per_shot = getattr(backend, "seconds_per_shot", lambda _f: None)(fmap)
    if backend.exact:
        notes.append(
            "exact backend: circuits are state preparations (one per row), no shots; "
            f"time from rates measured here ({rates.states_per_second:,.0f} states/s, "
            f"{rates.macs_per_second / 1e9:,.2f} G complex MAC/s)"
        )
    bonds = getattr(backend, "bond_dimensions", None)
    if bonds is not None:
        dims = bonds(fmap)
        notes.append(
            f"mps: exact bond dimension {max(dims, default=1)} at the largest cut ("
            + (f"truncated to max_bond={backend.max_bond}" if backend.max_bond else "no truncation")
            + f"), "
            f"{backend.state_bytes(fmap) / 1024:,.1f} KiB per state, "
            f"{backend.pair_macs(fmap):,} complex MAC per kernel entry"
        )
    elif rates.circuit_seconds > 0:
        notes.append(
            f"simulator: time from two probe jobs here ({rates.circuit_seconds * 1e3:,.2f} ms "
            f"per circuit at {getattr(backend, 'shots', 0):,} shots, "
            f"{rates.job_seconds:,.2f} s per job); no device time"
        )
    elif not backend.exact and per_shot is None and getattr(backend, "kind", "") != "hardware":
        notes.append("simulator: no device time; wall time unknown (the probe did not run)")
    estimate = CostEstimate(
        config.quantum_backend,
        n_train,
        n_test,
        methods,
        None,
        "",
        per_shot,
        notes,
        baseline={**baseline.to_dict(), "summary": baseline_line},
        baseline_refusal=baseline_refusal,
    )
    try:
        plan = plan_for(options, backend, fmap, shape, rates)
        estimate.chosen, estimate.reason = plan.method, plan.reason
        estimate.methods[plan.method] = plan.cost.to_dict()
    except QuantumStepFailure as failure:
        estimate.refusals.append(failure.summary)
    return estimate


def format_estimate(e: CostEstimate, config: PipelineConfig) -> str:
    def cell(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [
        f"Quantum step cost estimate: {e.backend}, {config.n_qubits} qubits, "
        f"{config.feature_map} map (reps={config.reps}, {config.entanglement})",
        f"  dataset {config.dataset}: {e.n_train:,} train x {e.n_test:,} test rows",
        "",
        f"  {'method':<22}{'circuits':>14}{'shots':>16}{'jobs':>7}{'peak MiB':>11}"
        f"{'time s':>9}{'device s':>10}",
    ]
    for name, c in e.methods.items():
        label = name + (f" (m={c['landmarks']})" if c["landmarks"] else "")
        mark = "  <- runs" if name == e.chosen else ""
        lines.append(
            f"  {label:<22}{c['circuits']:>14,}{c['shots']:>16,}{c['jobs']:>7}"
            f"{c['memory_mib']:>11,.0f}{cell(c['seconds'], '>9.1f'):>9}"
            f"{cell(c['device_seconds'], '>10,.0f'):>10}{mark}"
        )
    lines += [f"  note: {n}" for n in e.notes]
    budget = (
        f"quantum_max_circuits={config.quantum_max_circuits:,}, "
        f"quantum_max_shots={config.quantum_max_shots:,}, "
        f"quantum_max_seconds={config.quantum_max_seconds:g}, "
        f"quantum_max_memory_mb={config.quantum_max_memory_mb:g}"
    )
    lines += [
        "",
        f"  CLASSICAL BASELINE OVER ITS LIMIT: {e.baseline_refusal}"
        if e.baseline_refusal
        else f"  {e.baseline['summary']}",
    ]
    if e.refusals:
        lines += [
            "",
            f"  OVER BUDGET ({budget}): the quantum step would refuse to start and fall back:",
        ] + [f"    {r}" for r in e.refusals]
    else:
        lines += [
            "",
            f"  quantum_method={config.quantum_method} -> {e.chosen}: {e.reason}",
            f"  within budget ({budget})",
        ]
    return "\n".join(lines)
