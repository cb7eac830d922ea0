"""The shot-based Qiskit kernel shared by ``qiskit-aer?shots|noise`` and ``ibm``/``ibm-local``.

Shot-based backends estimate the fidelity kernel with compute-uncompute circuits
``U(x) U(y)^dagger``: ``K(x, y)`` is the probability of measuring all zeros. One transpiled,
parameterised circuit serves every pair; pairs are parameter bindings of one Sampler PUB,
grouped into as few jobs as the per-job execution limit allows (never one job per pair), and
the Gram matrix uses only its strict upper triangle (symmetric, unit diagonal). Projected
features (per-qubit <X>, <Y>, <Z>) use the Estimator with one PUB per job. On hardware the
device time of one shot is the compiled circuit's scheduled critical path plus the repetition
delay (:meth:`SamplerKernelBackend.seconds_per_shot`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np

from components.feature_maps import FeatureMap
from components.quantum import calibration as cal
from components.quantum.backends.qiskit.circuits import (
    classical_register,
    compute_uncompute_circuit,
    feature_map_circuit,
    parameter_columns,
    zero_probabilities,
)
from components.quantum.backends.qiskit.options import (
    DEFAULT_OPTIMIZATION_LEVEL,
    DEFAULT_REP_DELAY_S,
    DEFAULT_SHOTS,
)
from components.quantum.budget import (
    MAX_EXECUTIONS_PER_JOB,
    WorkEstimate,
    jobs_for,
    kernel_circuits,
)
from components.quantum.execution import (
    ExecutionContext,
    call_with_retries,
    job_record,
    wait_for_job,
)
from components.quantum.failures import QuantumStepFailure, classify
from components.quantum.statevector import ProgressLogger

log = logging.getLogger(__name__)


class SamplerKernelBackend:
    """Shot-based backends: compute-uncompute kernels on a Sampler, features on an Estimator.

    Subclasses say which device to transpile for, how to open the execution mode and which
    primitives to use; everything else (transpiling, grouping, budget, retries, job records,
    calibration snapshot) is shared, so ``ibm-local:`` tests exactly the ``ibm:`` path.
    """

    exact = False
    family = ""
    kind = ""

    def __init__(
        self,
        name: str,
        ctx: ExecutionContext,
        *,
        shots: int = DEFAULT_SHOTS,
        optimization_level: int = DEFAULT_OPTIMIZATION_LEVEL,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.ctx = ctx
        self.shots = shots
        self.optimization_level = optimization_level
        self.seed = seed if seed is not None else ctx.seed
        self.jobs: list[dict[str, Any]] = []
        self._device: Any = None
        self._connect_failure: QuantumStepFailure | None = None
        self._isa: dict[tuple[FeatureMap, str], Any] = {}
        self._stats: dict[str, Any] = {}

    # ---- hooks ----------------------------------------------------------------------
    def connect(self) -> Any:
        """The ``BackendV2`` to transpile for (and to read calibration from)."""
        raise NotImplementedError

    def open_mode(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext(device)

    def sampler(self, mode: Any) -> Any:
        raise NotImplementedError

    def estimator(self, mode: Any) -> Any:
        raise NotImplementedError

    def simulator_identity(self) -> dict[str, Any] | None:
        return None

    def max_executions_per_job(self) -> int:
        return MAX_EXECUTIONS_PER_JOB

    # ---- shared machinery -----------------------------------------------------------
    def device(self) -> Any:
        if self._device is None:
            if self._connect_failure is not None:
                raise self._connect_failure  # do not hammer a service that already refused
            try:
                self._device = call_with_retries(self.connect, self.ctx, f"connect to {self.name}")
            except QuantumStepFailure as failure:
                self._connect_failure = failure
                raise
        return self._device

    def _transpiled(self, fmap: FeatureMap, purpose: str) -> Any:
        key = (fmap, purpose)
        if key not in self._isa:
            from qiskit.transpiler import generate_preset_pass_manager

            circuit = (
                compute_uncompute_circuit(fmap)
                if purpose == "kernel"
                else feature_map_circuit(fmap)
            )
            device = self.device()
            try:
                pm = generate_preset_pass_manager(
                    optimization_level=self.optimization_level,
                    backend=device,
                    seed_transpiler=self.seed,
                )
                isa = pm.run(circuit)
            except Exception as exc:
                raise QuantumStepFailure(
                    "transpile",
                    f"cannot transpile the {fmap.n_qubits}-qubit {fmap.kind} "
                    f"feature map for {getattr(device, 'name', device)} "
                    f"({getattr(device, 'num_qubits', '?')} qubits): "
                    f"{type(exc).__name__}: {exc}",
                ) from exc
            self._isa[key] = isa
            if purpose == "kernel":
                ops = isa.count_ops()
                self._stats = {
                    "circuit_depth": int(isa.depth()),
                    "two_qubit_gates": int(
                        sum(1 for inst in isa.data if inst.operation.num_qubits == 2)
                    ),
                    "gates_used": sorted(ops),
                    "layout": (
                        list(isa.layout.final_index_layout()) if isa.layout is not None else None
                    ),
                }
                log.info(
                    "%s: compute-uncompute circuit transpiled (optimization level %d): "
                    "depth %d, %d two-qubit gates",
                    self.name,
                    self.optimization_level,
                    self._stats["circuit_depth"],
                    self._stats["two_qubit_gates"],
                )
        return self._isa[key]

    def prepare(self, fmap: FeatureMap) -> None:
        self._transpiled(fmap, "kernel")

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """Circuits (symmetry and unit diagonal used), shots, jobs after grouping and, on
        hardware once :meth:`prepare` has compiled the circuit, device time."""
        circuits = kernel_circuits(n_x, n_y)
        # Device time binds the budget only on real hardware (emulation runs locally).
        per_shot = self.seconds_per_shot(fmap) if self.kind == "hardware" else None
        return WorkEstimate(
            circuits,
            self.shots,
            jobs_for(circuits, self.shots, self.max_executions_per_job()),
            None if per_shot is None else circuits * self.shots * per_shot,
        )

    def estimate_features(self, fmap: FeatureMap, n_rows: int) -> WorkEstimate:
        """Projected features on the Estimator: every row measured in three bases (X, Y, Z
        on all qubits; the per-qubit Paulis of one basis commute), O(N) circuits."""
        circuits = 3 * n_rows
        per_shot = self.seconds_per_shot(fmap) if self.kind == "hardware" else None
        return WorkEstimate(
            circuits,
            self.shots,
            jobs_for(circuits, self.shots, self.max_executions_per_job()),
            None if per_shot is None else circuits * self.shots * per_shot,
        )

    #: Probe job sizes (circuits) for :meth:`measure_circuit_seconds`.
    PROBE_CIRCUITS = (4, 24)

    def measure_circuit_seconds(self, fmap: FeatureMap) -> tuple[float, float] | None:
        """(seconds per job, seconds per circuit) of a local simulator at this backend's shot
        count, from two probe jobs of random kernel circuits fitted to ``a + b·circuits``;
        None on real hardware (its probe would queue and cost device time) or on failure.
        Not recorded as jobs of the run."""
        if self.kind == "hardware":
            return None
        try:
            isa = self._transpiled(fmap, "kernel")
            lo, hi = fmap.angle_range
            rng = np.random.default_rng(0)
            columns = parameter_columns(isa, fmap.n_qubits)
            timings = []
            with self._mode(self.device()) as mode:
                sampler = self.sampler(mode)
                for n in self.PROBE_CIRCUITS:
                    values = rng.uniform(lo, hi, size=(n, 2 * fmap.n_qubits))[:, columns]
                    t0 = time.perf_counter()
                    sampler.run([(isa, values)], shots=self.shots).result()
                    timings.append(time.perf_counter() - t0)
        except Exception as exc:  # a probe that fails leaves the time unknown
            log.info("%s: no simulator rate (%s)", self.name, exc)
            return None
        (n1, n2), (t1, t2) = self.PROBE_CIRCUITS, timings
        per_circuit = max((t2 - t1) / (n2 - n1), t2 / n2 / 10, 1e-9)
        return max(t1 - n1 * per_circuit, 0.0), per_circuit

    def seconds_per_shot(self, fmap: FeatureMap) -> float | None:
        """Device time of one shot of the compiled kernel circuit: the scheduled duration
        of its critical path from the device's gate and readout durations, plus the
        repetition delay. None for simulators or before :meth:`prepare`."""
        if self.kind not in ("hardware", "hardware-emulation"):
            return None
        isa = self._isa.get((fmap, "kernel"))
        if isa is None or self._device is None:
            return None
        target = self._device.target
        finish = [0.0] * isa.num_qubits
        for inst in isa.data:
            qubits = tuple(isa.find_bit(q).index for q in inst.qubits)
            name = inst.operation.name
            props = target[name].get(qubits) if name in target.operation_names else None
            duration = (props.duration or 0.0) if props is not None else 0.0
            start = max(finish[q] for q in qubits) if qubits else 0.0
            for q in qubits:
                finish[q] = start + duration
        rep_delay = (
            getattr(
                getattr(self._device, "configuration", lambda: None)(), "default_rep_delay", None
            )
            or DEFAULT_REP_DELAY_S
        )
        return max(finish, default=0.0) + float(rep_delay)

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        symmetric = y is None
        ref = x if symmetric else np.asarray(y, dtype=np.float64)
        if symmetric:
            ii, jj = np.triu_indices(len(x), k=1)
        else:
            ii, jj = (
                a.ravel()
                for a in np.meshgrid(np.arange(len(x)), np.arange(len(ref)), indexing="ij")
            )
        out = np.eye(len(x)) if symmetric else np.zeros((len(x), len(ref)))
        if len(ii) == 0:
            return out
        isa = self._transpiled(fmap, "kernel")
        values = np.hstack([x[ii], ref[jj]])[:, parameter_columns(isa, fmap.n_qubits)]
        what = f"{self.name} {'train Gram' if symmetric else 'kernel vs. reference'}"
        probs = self._run_sampler(isa, values, what)
        out[ii, jj] = probs
        if symmetric:
            out[jj, ii] = probs
        return out

    def _run_sampler(self, isa: Any, values: np.ndarray, what: str) -> np.ndarray:
        per_job = max(1, self.max_executions_per_job() // self.shots)
        chunks = [values[i : i + per_job] for i in range(0, len(values), per_job)]
        log.info(
            "%s: %d circuits x %d shots in %d job(s)", what, len(values), self.shots, len(chunks)
        )
        # done/total circuits, rate and ETA after every job (the wait logs queue/run time)
        progress, finished = ProgressLogger(what, every_s=0.0, unit="circuits"), 0
        results: list[np.ndarray] = []
        device = self.device()
        with self._mode(device) as mode:
            sampler = self.sampler(mode)

            def submit(chunk: np.ndarray) -> Any:
                self.ctx.clock.check_time(what)
                return sampler.run([(isa, chunk)], shots=self.shots)

            jobs = [
                call_with_retries(lambda c=c: submit(c), self.ctx, f"{what}: submit job")
                for c in chunks
            ]
            for k, (chunk, job) in enumerate(zip(chunks, jobs, strict=True)):

                def finish(job: Any = job, chunk: np.ndarray = chunk) -> Any:
                    try:
                        return job, wait_for_job(job, self.ctx, what)
                    except QuantumStepFailure:
                        raise
                    except Exception:
                        self.jobs.append(job_record(job, len(chunk), self.shots))
                        raise

                def resubmit(chunk: np.ndarray = chunk) -> Any:
                    new = submit(chunk)
                    return new, wait_for_job(new, self.ctx, what)

                try:
                    done, result = call_with_retries(finish, self.ctx, f"{what}: job {k + 1}")
                except QuantumStepFailure as failure:
                    if not failure.transient:
                        raise
                    done, result = call_with_retries(
                        resubmit, self.ctx, f"{what}: resubmit job {k + 1}"
                    )
                self.jobs.append(job_record(done, len(chunk), self.shots))
                pub = result[0]
                results.append(zero_probabilities(getattr(pub.data, classical_register(isa))))
                finished += len(chunk)
                log.info("%s: job %d/%d done (%s)", what, k + 1, len(chunks), done.job_id())
                progress(finished, len(values))
        return np.concatenate(results)

    def _mode(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        try:
            return self.open_mode(device)
        except QuantumStepFailure:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        from qiskit.quantum_info import SparsePauliOp

        x = np.asarray(x, dtype=np.float64)
        isa = self._transpiled(fmap, "state")
        n = fmap.n_qubits
        observables = [
            [SparsePauliOp.from_sparse_list([(p, [q], 1.0)], n).apply_layout(isa.layout)]
            for q in range(n)
            for p in "XYZ"
        ]
        values = x[:, parameter_columns(isa, n)]
        what = f"{self.name} projected features"
        with self._mode(self.device()) as mode:
            estimator = self.estimator(mode)
            job = call_with_retries(
                lambda: estimator.run(
                    [(isa, observables, values)], precision=1.0 / np.sqrt(self.shots)
                ),
                self.ctx,
                f"{what}: submit job",
            )
            result = wait_for_job(job, self.ctx, what)
            # The estimator measures qubit-wise commuting observables together: the 3n
            # single-qubit Paulis need one circuit per basis (X, Y, Z) per row, not 3n.
            bases = len(
                SparsePauliOp.sum([o[0] for o in observables]).group_commuting(qubit_wise=True)
            )
            self.jobs.append(job_record(job, len(values) * bases, self.shots))
        evs = np.asarray(result[0].data.evs)  # (3n, N)
        return np.ascontiguousarray(evs.reshape(3 * n, len(values)).T)

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        device = self._device
        if device is None:
            with contextlib.suppress(Exception):
                device = self.device()
        if device is not None and not self._stats:
            with contextlib.suppress(Exception):
                self._transpiled(fmap, "kernel")
        gates = set(self._stats.get("gates_used", [])) or None
        backend = (
            cal.backend_identity(device, self.family, self.kind)
            if device is not None
            else {
                "name": self.name,
                "family": self.family,
                "kind": self.kind,
                "version": "",
                "num_qubits": None,
                "coupling_map": None,
                "unreachable": True,
            }
        )
        calibration = cal.device_calibration(device, gates) if device is not None else None
        return cal.snapshot(
            backend=backend,
            calibration=calibration,
            simulator=self.simulator_identity(),
            execution={
                "shots": self.shots,
                "optimization_level": self.optimization_level,
                "seed": self.seed,
                "circuit": "compute-uncompute U(x) U(y)^dagger + measurement, "
                "transpiled to the device",
                "circuit_depth": self._stats.get("circuit_depth"),
                "two_qubit_gates": self._stats.get("two_qubit_gates"),
                "layout": self._stats.get("layout"),
                "jobs": list(self.jobs),
            },
        )
