"""The quantum step as a bounded, observable part of the pipeline.

:func:`run_quantum_step` builds the backend inside the step's budget, refuses work that the
budget cannot cover *before* it runs, trains the quantum-kernel model, and captures the
backend's calibration snapshot. When anything fails (auth, backend unavailable, timeout,
budget, transpile, job failure) it either falls back (``fallback="classical"``: the step
succeeds and says why, and the registry step registers the classical baseline with
``quantum.fallback=true``) or fails the run (``fallback="fail"``).

Its output directory always holds ``quantum_outcome.json`` (status, reason, backend, budget
use) and, when a backend was reached, ``calibration.json``; on success also the model bundle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError
from components.feature_maps import FeatureMap
from components.quantum.budget import QuantumBudget
from components.quantum.execution import ExecutionContext, RetryPolicy
from components.quantum.failures import classify
from components.quantum.methods import (
    DataShape,
    MethodPlan,
    Rates,
    check_method,
    measure_rates,
    plan_method,
)
from components.training.quantum_outcome import QuantumOutcome, save_outcome

if TYPE_CHECKING:  # the planning task imports this module: no pandas/scikit-learn at import
    from components.data.split import Split

log = logging.getLogger(__name__)

FALLBACK_MODES = ("classical", "fail")
#: Retries of transient backend errors are bounded (each waits up to a minute).
MAX_RETRIES = 10


@dataclass(frozen=True)
class QuantumOptions:
    """The quantum step's settings (no defaults here: ``PipelineConfig`` holds them and builds
    these with ``quantum_options()``). Checked when built."""

    feature_map: str
    reps: int
    entanglement: str
    backend: str
    seed: int
    budget: QuantumBudget
    max_retries: int
    fallback: str
    #: fidelity | nystroem | projected | auto (see components.quantum.methods)
    method: str
    landmarks: int
    exact_max_rows: int

    def __post_init__(self) -> None:
        check_method(self.method, self.landmarks, self.exact_max_rows)
        if self.fallback not in FALLBACK_MODES:
            raise ConfigError(
                f"must be one of {list(FALLBACK_MODES)}, got {self.fallback!r}",
                field="quantum_fallback",
            )
        if not 0 <= self.max_retries <= MAX_RETRIES:
            raise ConfigError(
                f"must be from 0 to {MAX_RETRIES}, got {self.max_retries}",
                field="quantum_max_retries",
            )


#: The pipeline parameters :func:`quantum_options` reads (names as in the pipeline).
OPTION_PARAMETERS = (
    "feature_map",
    "reps",
    "entanglement",
    "quantum_backend",
    "seed",
    "quantum_fallback",
    "quantum_max_retries",
    "quantum_max_shots",
    "quantum_max_circuits",
    "quantum_max_seconds",
    "quantum_max_memory_mb",
    "quantum_method",
    "nystroem_landmarks",
    "exact_max_rows",
)


def quantum_options(
    *,
    feature_map: str,
    reps: int,
    entanglement: str,
    quantum_backend: str,
    seed: int,
    quantum_fallback: str,
    quantum_max_retries: int,
    quantum_max_shots: int,
    quantum_max_circuits: int,
    quantum_max_seconds: float,
    quantum_max_memory_mb: float,
    quantum_method: str,
    nystroem_landmarks: int,
    exact_max_rows: int,
) -> QuantumOptions:
    """:class:`QuantumOptions` from the pipeline parameters of the same names (what the
    components receive and what ``PipelineConfig.quantum_options`` passes)."""
    return QuantumOptions(
        feature_map=feature_map,
        reps=reps,
        entanglement=entanglement,
        backend=quantum_backend,
        seed=seed,
        fallback=quantum_fallback,
        max_retries=quantum_max_retries,
        budget=QuantumBudget(
            max_shots=quantum_max_shots,
            max_circuits=quantum_max_circuits,
            max_seconds=quantum_max_seconds,
            max_memory_mb=quantum_max_memory_mb,
        ),
        method=quantum_method,
        landmarks=nystroem_landmarks,
        exact_max_rows=exact_max_rows,
    )


def plan_for(
    options: QuantumOptions,
    backend: Any,
    fmap: FeatureMap,
    shape: DataShape,
    rates: Rates | None = None,
) -> MethodPlan:
    """The method these options resolve to for data of ``shape`` on ``backend`` — the one
    function the quantum step, the fan-out plan and ``qubeflow estimate`` share, so all
    three agree. Rates are measured here unless given."""
    return plan_method(
        options.method,
        backend,
        fmap,
        shape,
        landmarks=options.landmarks,
        exact_max_rows=options.exact_max_rows,
        budget=options.budget,
        rates=measure_rates(backend, fmap) if rates is None else rates,
    )


def plan_step_method(
    options: QuantumOptions, backend: Any, fmap: FeatureMap, split: Split
) -> MethodPlan:
    """The method this step runs for its split."""
    shape = DataShape(len(split.train), len(split.test), len(split.feature_columns))
    return plan_for(options, backend, fmap, shape)


def run_quantum_step(
    split: Split,
    preprocessor: Any,
    out_dir: str | Path,
    options: QuantumOptions,
    precomputed: tuple[Any, Any] | None = None,
) -> QuantumOutcome:
    """Train the quantum model within budget; fall back or fail as ``options.fallback`` says.

    The method (``options.method``, ``auto`` resolved by :func:`plan_method` from the data
    size, the backend and the budget) is priced — circuits, shots, peak memory, time — and
    refused before anything runs when over budget. ``precomputed`` (train, test) comes from
    the pipeline's kernel fan-out."""
    from components.quantum.backends import get_backend
    from components.training.bundle import save_trained

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = options.budget.start()
    ctx = ExecutionContext(
        clock=clock, retry=RetryPolicy(attempts=options.max_retries + 1), seed=options.seed
    )
    n_train, n_test = len(split.train), len(split.test)
    # The preprocessor's last step (MinMax to angles) outputs one column per qubit.
    fmap = FeatureMap(
        kind=options.feature_map,
        n_qubits=int(preprocessor[-1].n_features_in_),
        reps=options.reps,
        entanglement=options.entanglement,
    )
    outcome = QuantumOutcome(
        status="ok",
        backend=options.backend,
        settings={
            "quantum_fallback": options.fallback,
            "quantum_max_retries": options.max_retries,
            "quantum_max_shots": options.budget.max_shots,
            "quantum_max_circuits": options.budget.max_circuits,
            "quantum_max_seconds": options.budget.max_seconds,
            "quantum_max_memory_mb": options.budget.max_memory_mb,
            "quantum_method": options.method,
            "nystroem_landmarks": options.landmarks,
            "exact_max_rows": options.exact_max_rows,
        },
    )
    backend = None
    try:
        backend = get_backend(options.backend, ctx)
        backend.prepare(fmap)  # connect and transpile first: "cannot run" beats "too costly"
        plan = plan_step_method(options, backend, fmap, split)
        outcome.method = plan.to_dict()
        outcome.estimate = plan.cost.work.to_dict()
        log.info(
            "quantum step on %s: %d train x %d test rows, method %s (%s); estimate %s",
            options.backend,
            n_train,
            n_test,
            plan.method,
            plan.reason,
            plan.cost.to_dict(),
        )
        clock.reserve(plan.cost.work, f"the quantum {plan.method} kernel (train + test)")
        from components.training.models import fit_quantum_model

        trained = fit_quantum_model(
            split,
            preprocessor,
            method=plan.method,
            landmarks=plan.landmarks,
            exact_max_rows=options.exact_max_rows,
            feature_map=options.feature_map,
            reps=options.reps,
            entanglement=options.entanglement,
            backend=options.backend,
            seed=options.seed,
            backend_instance=backend,
            precomputed=precomputed,
        )
        outcome.calibration = backend.snapshot(fmap)
        outcome.bundle = save_trained(
            trained,
            split,
            out,
            quantum={
                "backend": options.backend,
                "feature_map": fmap.to_dict(),
                "calibration_hash": outcome.calibration["calibration_hash"],
            },
        )
    except Exception as exc:
        failure = classify(exc)
        outcome.status, outcome.reason = "fallback", failure.summary
        outcome.bundle = None
        if backend is not None:
            try:
                outcome.calibration = backend.snapshot(fmap)
            except Exception as snap_exc:
                log.warning("no calibration snapshot after the failure: %s", snap_exc)
        if options.fallback == "fail":
            save_outcome(out, outcome)
            raise failure from exc
        log.warning(
            "quantum step failed on %s (%s); FALLING BACK to the classical model",
            options.backend,
            failure.summary,
        )
    outcome.seconds = round(clock.elapsed, 3)
    save_outcome(out, outcome)
    return outcome
