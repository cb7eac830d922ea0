"""Budget guards for the quantum step: total shots, total circuits, wall-clock seconds.

A :class:`QuantumBudget` is the user's limits (pipeline parameters ``quantum_max_shots``,
``quantum_max_circuits``, ``quantum_max_seconds``; 0 means no limit). ``budget.start()``
gives a :class:`BudgetClock` that backends consult: before submitting work
(:meth:`BudgetClock.reserve`, which refuses work that would exceed the limits *before* it
runs) and while waiting (:meth:`BudgetClock.remaining`, :meth:`BudgetClock.check_time`).
Both raise :class:`~components.quantum.failures.QuantumStepFailure` (``budget`` or
``timeout``), which the step turns into a classical fallback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from components.errors import ConfigError
from components.quantum.failures import QuantumStepFailure

#: IBM Quantum's limit on executions (circuits x shots) in one Sampler job.
MAX_EXECUTIONS_PER_JOB = 10_000_000


@dataclass(frozen=True)
class WorkEstimate:
    """What evaluating a kernel costs on a backend, known before anything runs."""

    circuits: int  # circuit executions (parameter bindings); state preparations when exact
    shots_per_circuit: int  # 0 for exact backends
    jobs: int = 1
    #: Estimated device (QPU) time, when the device's timing is known; None otherwise.
    device_seconds: float | None = None

    @property
    def shots(self) -> int:
        return self.circuits * self.shots_per_circuit

    def __add__(self, other: WorkEstimate) -> WorkEstimate:
        seconds = (
            None
            if self.device_seconds is None or other.device_seconds is None
            else self.device_seconds + other.device_seconds
        )
        return WorkEstimate(
            self.circuits + other.circuits,
            max(self.shots_per_circuit, other.shots_per_circuit),
            self.jobs + other.jobs,
            seconds,
        )

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "circuits": self.circuits,
            "shots_per_circuit": self.shots_per_circuit,
            "shots": self.shots,
            "jobs": self.jobs,
            "device_seconds": (
                None if self.device_seconds is None else round(self.device_seconds, 3)
            ),
        }


def kernel_circuits(n_x: int, n_y: int | None) -> int:
    """Compute-uncompute circuits for a kernel: the Gram matrix needs only the strict upper
    triangle (symmetric, unit diagonal); a cross kernel needs every pair."""
    return n_x * (n_x - 1) // 2 if n_y is None else n_x * n_y


def jobs_for(circuits: int, shots: int, max_executions: int = MAX_EXECUTIONS_PER_JOB) -> int:
    if circuits == 0:
        return 0
    per_job = max(1, max_executions // max(shots, 1))
    return math.ceil(circuits / per_job)


@dataclass(frozen=True)
class QuantumBudget:
    max_shots: int = 0
    max_circuits: int = 0
    max_seconds: float = 0.0
    #: Peak memory the quantum step may use (MiB, from the method's cost model).
    max_memory_mb: float = 0.0
    #: Where the wall budget reads the time (tests drive it; not a setting).
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in (
            ("quantum_max_shots", self.max_shots),
            ("quantum_max_circuits", self.max_circuits),
            ("quantum_max_seconds", self.max_seconds),
            ("quantum_max_memory_mb", self.max_memory_mb),
        ):
            if value < 0:
                raise ConfigError(f"must be >= 0 (0 means no limit), got {value}", field=name)

    def start(self) -> BudgetClock:
        return BudgetClock(self)


class BudgetClock:
    """A running budget: what has been reserved so far and when time runs out."""

    def __init__(self, budget: QuantumBudget) -> None:
        self.budget = budget
        self.started = budget.clock()
        self.circuits = 0
        self.shots = 0

    @property
    def elapsed(self) -> float:
        return self.budget.clock() - self.started

    def remaining(self) -> float | None:
        """Seconds left, or None when there is no time limit."""
        if not self.budget.max_seconds:
            return None
        return self.budget.max_seconds - self.elapsed

    def check_time(self, what: str = "the quantum step") -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise QuantumStepFailure(
                "timeout",
                f"{what} exceeded quantum_max_seconds="
                f"{self.budget.max_seconds:g} (after {self.elapsed:.1f} s)",
                field="quantum_max_seconds",
            )

    def reserve(self, work: WorkEstimate, what: str) -> None:
        """Account for ``work`` before it runs; refuse it when it would break a limit."""
        self.check_time(what)
        # Exact simulators report state preparations as "circuits" with no shots: those are
        # not device circuits, so the circuit and shot limits do not count them.
        device_circuits = work.circuits if work.shots_per_circuit else 0
        circuits = self.circuits + device_circuits
        shots = self.shots + work.shots
        b = self.budget
        if b.max_circuits and circuits > b.max_circuits:
            raise QuantumStepFailure(
                "budget",
                f"{what} needs {device_circuits:,} circuits{_total(circuits, device_circuits)}"
                f" > quantum_max_circuits={b.max_circuits:,}",
                field="quantum_max_circuits",
            )
        if b.max_shots and shots > b.max_shots:
            raise QuantumStepFailure(
                "budget",
                f"{what} needs {work.shots:,} shots{_total(shots, work.shots)} > "
                f"quantum_max_shots={b.max_shots:,}",
                field="quantum_max_shots",
            )
        if (
            b.max_seconds
            and work.device_seconds is not None
            and self.elapsed + work.device_seconds > b.max_seconds
        ):
            raise QuantumStepFailure(
                "budget",
                f"{what} needs an estimated {work.device_seconds:,.0f} s of device "
                f"time > quantum_max_seconds={b.max_seconds:g}",
                field="quantum_max_seconds",
            )
        self.circuits, self.shots = circuits, shots


def _total(total: int, this: int) -> str:
    return f" ({total:,} in total)" if total != this else ""


#: No limits (tests, notebooks, direct library use).
UNLIMITED = QuantumBudget()
