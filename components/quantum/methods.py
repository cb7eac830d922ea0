"""Which quantum method runs, what it costs, and why ``auto`` chose it.

Methods (the pipeline parameter ``quantum_method``):

- ``fidelity``: the exact fidelity Gram (N×N) and an SVC on it — for small data;
- ``nystroem``: ``m`` landmark rows, the N×m kernel against them and the m×m landmark kernel,
  then a linear model on the Nyström features (:mod:`.nystroem`) — O(N·m) time and memory;
- ``projected``: per-qubit ⟨X⟩, ⟨Y⟩, ⟨Z⟩ of each row's state (one state per row; on a
  shot-based backend three measurement bases, O(N) circuits), then the classical head;
- ``auto`` (default): on exact backends ``fidelity`` up to ``exact_max_rows`` train rows when
  it fits the memory budget, else ``nystroem``; on shot-based backends, where circuits are the
  cost, the first of ``fidelity``, ``projected`` (3 circuits per row), ``nystroem``
  (``m`` landmarks, then fewer) that fits the circuit/shot budget.

The cost model (:func:`method_cost`): circuits, shots and jobs from the backend's own
estimate; peak memory of the quantum step from the arrays each method holds; the wall time
of the kernel work from rates measured on this machine (:func:`measure_rates`): for exact
backends a few hundred rows, well under a second; for local shot-based simulators (``qubeflow
estimate`` only) two small probe jobs, per-job overhead and per-circuit time at the
backend's shot count. Real hardware is priced by device time instead (``seconds_per_shot``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.errors import ConfigError
from components.feature_maps import MAX_QUBITS, FeatureMap
from components.quantum.budget import QuantumBudget, WorkEstimate
from components.quantum.failures import QuantumStepFailure

METHODS = ("auto", "fidelity", "nystroem", "projected")
MiB = 2**20
#: What the quantum step's process holds before any kernel work: interpreter, NumPy,
#: scikit-learn, pandas, the KFP executor and the step's imports (measured with
#: benchmarks/scale_bench.py: 253-275 MiB peak RSS for the whole step at 1 000 rows).
BASE_PROCESS_BYTES = 250 * MiB
#: Rows per statevector chunk in streaming transforms: one chunk's states stay ~64 MiB.
CHUNK_STATE_BYTES = 64 * MiB
#: Fewest landmarks ``auto`` accepts when it shrinks ``m`` to fit a shot budget.
MIN_AUTO_LANDMARKS = 16


def chunk_rows(n_qubits: int, itemsize: int = 16) -> int:
    """Rows per chunk so one chunk of statevectors stays within :data:`CHUNK_STATE_BYTES`."""
    return max(1, CHUNK_STATE_BYTES // (itemsize * 2**n_qubits))


@dataclass(frozen=True)
class Rates:
    """Measured speed of a backend on this machine (zeros: unknown)."""

    states_per_second: float
    #: complex multiply-adds per second in the kernel product
    macs_per_second: float
    #: local shot-based simulators: seconds per circuit (at the backend's shots) and per job
    circuit_seconds: float = 0.0
    job_seconds: float = 0.0

    @classmethod
    def unknown(cls) -> Rates:
        return cls(0.0, 0.0)


def state_bytes(backend: Any, fmap: FeatureMap) -> int:
    """Memory of one row's state on an exact backend (dense: 16·2^q; ``mps``: its tensors)."""
    own = getattr(backend, "state_bytes", None)
    return int(own(fmap)) if own is not None else 16 * 2**fmap.n_qubits


def pair_macs(backend: Any, fmap: FeatureMap) -> int:
    """Complex multiply-adds of one kernel entry (dense: 2^q; ``mps``: the overlap chain)."""
    own = getattr(backend, "pair_macs", None)
    return int(own(fmap)) if own is not None else 2**fmap.n_qubits


def column_copies(backend: Any) -> int:
    """Extra copies of the kernel's column (reference) states a backend lays out while it
    computes a kernel (``mps``: one, in the contraction's layout)."""
    return int(getattr(backend, "column_copies", 0))


def backend_chunk_rows(backend: Any, fmap: FeatureMap) -> int:
    own = getattr(backend, "chunk_rows", None)
    return int(own(fmap)) if own is not None else chunk_rows(fmap.n_qubits)


def measure_rates(
    backend: Any, fmap: FeatureMap, rows: int = 256, *, probe_circuits: bool = False
) -> Rates:
    """States/s and kernel MAC/s of an exact backend, timed on at most ``rows`` random rows
    (fewer for wide registers: the sample's states stay within one chunk's memory). A
    backend with its own ``measure_rates`` (``mps``: overlap MAC/s) times itself.

    ``probe_circuits``: a local shot-based simulator (one with ``measure_circuit_seconds``)
    runs two small probe jobs for its per-job and per-circuit time (never on hardware)."""
    if not getattr(backend, "exact", False):
        probe = getattr(backend, "measure_circuit_seconds", None)
        if probe_circuits and probe is not None:
            measured = probe(fmap)
            if measured is not None:
                job, circuit = measured
                return Rates(0.0, 0.0, circuit_seconds=circuit, job_seconds=job)
        return Rates.unknown()
    own = getattr(backend, "measure_rates", None)
    if own is not None:
        return Rates(*own(fmap))
    if not hasattr(backend, "statevectors") or fmap.n_qubits > MAX_QUBITS:
        return Rates.unknown()
    rows = min(rows, chunk_rows(fmap.n_qubits))
    if rows < 2:  # one state alone fills a chunk: too wide to time cheaply
        return Rates.unknown()
    from components.quantum.statevector import fidelity_kernel

    lo, hi = fmap.angle_range
    x = np.random.default_rng(0).uniform(lo, hi, size=(rows, fmap.n_qubits))
    backend.statevectors(fmap, x[:8])  # warm caches (tables, BLAS threads)
    t0 = time.perf_counter()
    states = backend.statevectors(fmap, x)
    t1 = time.perf_counter()
    fidelity_kernel(states, states[: max(1, rows // 2)])
    t2 = time.perf_counter()
    macs = rows * max(1, rows // 2) * states.shape[1]
    return Rates(rows / max(t1 - t0, 1e-9), macs / max(t2 - t1, 1e-9))


@dataclass(frozen=True)
class MethodCost:
    method: str
    landmarks: int
    work: WorkEstimate
    memory_bytes: int
    #: Expected wall time of the kernel work (measured rates); None: unknown.
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "landmarks": self.landmarks,
            **self.work.to_dict(),
            "memory_mib": round(self.memory_bytes / MiB, 1),
            "seconds": None if self.seconds is None else round(self.seconds, 2),
        }


@dataclass(frozen=True)
class MethodPlan:
    """The method that will run, its cost, why it was chosen, and what else was priced."""

    cost: MethodCost
    reason: str
    considered: list[MethodCost] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.cost.method

    @property
    def landmarks(self) -> int:
        return self.cost.landmarks

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "landmarks": self.landmarks,
            "reason": self.reason,
            "cost": self.cost.to_dict(),
            "considered": [c.to_dict() for c in self.considered],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodPlan:
        def cost(c: dict[str, Any]) -> MethodCost:
            work = WorkEstimate(
                int(c["circuits"]),
                int(c["shots_per_circuit"]),
                int(c["jobs"]),
                c.get("device_seconds"),
            )
            return MethodCost(
                c["method"], int(c["landmarks"]), work, int(c["memory_mib"] * MiB), c.get("seconds")
            )

        return cls(cost(data["cost"]), data["reason"], [cost(c) for c in data["considered"]])


@dataclass(frozen=True)
class DataShape:
    n_train: int
    n_test: int
    n_features: int

    @property
    def n_rows(self) -> int:
        return self.n_train + self.n_test


def _features_work(backend: Any, fmap: FeatureMap, n_rows: int) -> WorkEstimate:
    estimate = getattr(backend, "estimate_features", None)
    if estimate is not None:
        return estimate(fmap, n_rows)
    return WorkEstimate(circuits=n_rows, shots_per_circuit=0, jobs=0)


def method_cost(
    method: str,
    backend: Any,
    fmap: FeatureMap,
    shape: DataShape,
    *,
    landmarks: int = 0,
    rates: Rates | None = None,
) -> MethodCost:
    """Circuits/shots/jobs, peak memory and (exact backends) wall time of one method."""
    n, t, q = shape.n_train, shape.n_test, fmap.n_qubits
    exact = bool(getattr(backend, "exact", False))
    dim = pair_macs(backend, fmap) if exact else 2**q
    one_state = state_bytes(backend, fmap) if exact else 16 * 2**q
    data = BASE_PROCESS_BYTES + 3 * 8 * shape.n_rows * (shape.n_features + 1) + 8 * shape.n_rows * q
    chunk = min(shape.n_rows, backend_chunk_rows(backend, fmap) if exact else chunk_rows(q))
    if method == "fidelity":
        work = backend.estimate(fmap, n) + backend.estimate(fmap, t, n)
        # Gram + GridSearchCV's per-fold kernel copies and libsvm's own (~2x), test kernel.
        # Conservative: scale_bench measured ~12 B per Gram entry at 15 000 train rows
        # (3.4 GiB peak against 6.0 GiB priced here)
        memory = data + 24 * n * n + 8 * t * n + (one_state * shape.n_rows if exact else 0)
        memory += one_state * n * column_copies(backend)  # the kernel's layout of the train rows
        macs = (n * n / 2 + t * n) * dim
        states = shape.n_rows
    elif method == "nystroem":
        m = landmarks
        work = (
            backend.estimate(fmap, m) + backend.estimate(fmap, n, m) + backend.estimate(fmap, t, m)
        )
        # K_nm (float32, 4 B) and Φ (float64, 8 B) per row and landmark, +2 B of transient
        # copies; landmark states; one chunk of states plus its overlap and |.|² buffers
        # (~2.4 chunks). Fitted to the measured step peaks at 2·10⁴..10⁶ rows (scale_bench)
        memory = data + 14 * shape.n_rows * m + 8 * m * m
        memory += (one_state * (m * (1 + column_copies(backend)) + 2.4 * chunk)) if exact else 0
        macs = (shape.n_rows * m + m * m) * dim
        states = shape.n_rows + m
    elif method == "projected":
        work = _features_work(backend, fmap, n) + _features_work(backend, fmap, t)
        # three float64 copies of the 3q features per row; one chunk of states and its
        # per-basis temporaries (~1.25 chunks measured at 2·10⁴ and 10⁵ rows)
        memory = data + 3 * 8 * 3 * q * shape.n_rows + (one_state * 1.25 * chunk if exact else 0)
        # dense: 3q passes over each state; mps: left/right environments, ~3 overlaps a row
        own = exact and hasattr(backend, "pair_macs")
        macs = 3 * shape.n_rows * dim if own else 3 * q * shape.n_rows * dim
        states = shape.n_rows
    else:
        raise ConfigError(
            f"unknown method {method!r}; use one of {list(METHODS)}", field="quantum_method"
        )
    seconds = None
    if exact and rates is not None and rates.states_per_second > 0:
        seconds = states / rates.states_per_second + macs / rates.macs_per_second
    elif not exact and rates is not None and rates.circuit_seconds > 0:
        seconds = work.jobs * rates.job_seconds + work.circuits * rates.circuit_seconds
    return MethodCost(method, landmarks if method == "nystroem" else 0, work, int(memory), seconds)


def _refusal(cost: MethodCost, budget: QuantumBudget) -> str | None:
    """Why ``budget`` refuses ``cost`` (None: it fits)."""
    try:
        budget.start().reserve(cost.work, f"{cost.method}")
    except QuantumStepFailure as failure:
        return failure.message
    if budget.max_memory_mb and cost.memory_bytes > budget.max_memory_mb * MiB:
        return (
            f"{cost.method} needs an estimated {cost.memory_bytes / MiB:,.0f} MiB > "
            f"quantum_max_memory_mb={budget.max_memory_mb:g}"
        )
    return None


def check_method(method: str, landmarks: int, exact_max_rows: int) -> None:
    """The method settings on their own (before any data is known)."""
    if method not in METHODS:
        raise ConfigError(
            f"unknown method {method!r}; use one of {list(METHODS)}", field="quantum_method"
        )
    if landmarks < 1:
        raise ConfigError(f"must be >= 1, got {landmarks}", field="nystroem_landmarks")
    if exact_max_rows < 0:
        raise ConfigError(f"must be >= 0, got {exact_max_rows}", field="exact_max_rows")


def plan_method(
    method: str,
    backend: Any,
    fmap: FeatureMap,
    shape: DataShape,
    *,
    landmarks: int,
    exact_max_rows: int,
    budget: QuantumBudget,
    rates: Rates | None = None,
) -> MethodPlan:
    """Resolve ``method`` (``auto`` included) for this backend and data; raise
    QuantumStepFailure("budget") when nothing fits, naming the limits."""
    check_method(method, landmarks, exact_max_rows)
    if method == "nystroem" and landmarks > shape.n_train:
        raise ConfigError(
            f"{landmarks} landmarks > {shape.n_train} training rows; use at most the training rows",
            field="nystroem_landmarks",
        )
    m = min(landmarks, shape.n_train)
    exact = bool(getattr(backend, "exact", False))

    def cost(name: str, k: int = m) -> MethodCost:
        return method_cost(name, backend, fmap, shape, landmarks=k, rates=rates)

    if method != "auto":
        chosen = cost(method)
        why = _refusal(chosen, budget)
        if why:
            raise QuantumStepFailure(
                "budget", f"quantum_method={method}: {why}", field="quantum_method"
            )
        return MethodPlan(chosen, f"quantum_method={method} (set explicitly)", [chosen])

    considered: list[MethodCost] = []
    if exact:
        candidates = [("fidelity", m)] if shape.n_train <= exact_max_rows else []
        candidates += [("nystroem", m), ("projected", 0)]
    else:  # on a device circuits are the cost: the exact Gram if it fits, else O(N) circuits
        candidates = [("fidelity", m), ("projected", 0), ("nystroem", m)]
        k = m // 2
        while k >= MIN_AUTO_LANDMARKS:
            candidates.append(("nystroem", k))
            k //= 2
    refusals = []
    for name, k in candidates:
        c = cost(name, k)
        considered.append(c)
        why = _refusal(c, budget)
        if why is None:
            return MethodPlan(
                c, _auto_reason(c, shape, exact, exact_max_rows, considered), considered
            )
        refusals.append(why)
    raise QuantumStepFailure(
        "budget",
        "no quantum method fits the budget: " + "; ".join(refusals),
        field="quantum_method",
    )


def _auto_reason(
    c: MethodCost, shape: DataShape, exact: bool, exact_max_rows: int, considered: list[MethodCost]
) -> str:
    if exact:
        if c.method == "fidelity":
            return (
                f"auto: {shape.n_train} train rows <= exact_max_rows={exact_max_rows}: "
                "exact fidelity Gram"
            )
        if shape.n_train > exact_max_rows and c.method == "nystroem":
            return (
                f"auto: {shape.n_train} train rows > exact_max_rows={exact_max_rows}: "
                f"Nystroem with {c.landmarks} landmarks (O(N·m), never N×N)"
            )
        over = ", ".join(x.method for x in considered[:-1])
        return f"auto: {c.method}, the first that fits the budget (over it: {over})"
    skipped = ", ".join(
        f"{x.method}{f'(m={x.landmarks})' if x.landmarks else ''} {x.work.circuits:,} circuits"
        for x in considered[:-1]
    )
    return (
        f"auto: shot-based backend, {c.method}"
        f"{f' with {c.landmarks} landmarks' if c.landmarks else ''} fits the budget "
        f"({c.work.circuits:,} circuits, {c.work.shots:,} shots)"
        + (f"; over budget: {skipped}" if skipped else "")
    )
