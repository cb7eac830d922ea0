"""Qiskit backends: ``qiskit-aer`` (exact, ideal shots, or noisy from an IBM device's
calibration), ``ibm:<backend>`` (IBM Quantum hardware) and ``ibm-local:<fake backend>`` (the
same IBM code path in qiskit-ibm-runtime's local testing mode).

Shot-based backends estimate the fidelity kernel with compute-uncompute circuits
``U(x) U(y)^dagger``: ``K(x, y)`` is the probability of measuring all zeros. One transpiled,
parameterised circuit serves every pair; pairs are parameter bindings of one Sampler PUB,
grouped into as few jobs as the per-job execution limit allows (never one job per pair), and
the Gram matrix uses only its strict upper triangle (symmetric, unit diagonal). Projected
features (per-qubit <X>, <Y>, <Z>) use the Estimator with one PUB per job.

Options (``name?key=value&...``):

- ``shots``: shots per circuit (default 1024; ``qiskit-aer`` without ``shots``/``noise`` is
  exact);
- ``noise``: ``qiskit-aer`` only, the fake backend whose calibration builds the noise model
  (e.g. ``FakeManilaV2``); circuits are transpiled to that device;
- ``optimization_level``: preset pass-manager level 0-3 (default 1);
- ``seed``: transpiler and simulator seed (default: the pipeline's ``seed``);
- ``mode``: ``batch`` (default) or ``session`` (``ibm``/``ibm-local``).

Credentials for ``ibm:`` come only from the environment: ``QISKIT_IBM_TOKEN`` and
``QISKIT_IBM_INSTANCE`` (on a cluster, from a Kubernetes Secret exposed to the quantum step).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from components.errors import BackendError
from components.feature_maps import FeatureMap
from components.quantum import calibration as cal
from components.quantum import statevector as sv
from components.quantum.backends import BackendName, ExactStatevectorBackend
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
from components.quantum.failures import QuantumStepFailure

log = logging.getLogger(__name__)

DEFAULT_SHOTS = 1024
DEFAULT_OPTIMIZATION_LEVEL = 1
#: IBM devices' usual delay between shots when the device does not report one.
DEFAULT_REP_DELAY_S = 250e-6
TOKEN_ENV = "QISKIT_IBM_TOKEN"
INSTANCE_ENV = "QISKIT_IBM_INSTANCE"
CHANNEL = "ibm_quantum_platform"
_OPTIONS = {"shots", "noise", "optimization_level", "seed", "mode"}


# ---- fake devices ---------------------------------------------------------------------

def fake_backend_names() -> list[str]:
    import qiskit_ibm_runtime.fake_provider as fp

    return sorted(n for n in dir(fp) if n.startswith("Fake")
                  and not n.startswith(("FakeProvider", "FakeFractional")))


def fake_backend_details() -> str:
    names = fake_backend_names()
    return (f"{len(names)} fake devices (qiskit_ibm_runtime.fake_provider), e.g. FakeManilaV2 "
            "(5 qubits), FakeBrisbane (127)")


def fake_backend(name: str) -> Any:
    """A qiskit-ibm-runtime fake device by class name (``FakeManilaV2``) or device name
    (``fake_manila``)."""
    import qiskit_ibm_runtime.fake_provider as fp

    if name in fake_backend_names():
        return getattr(fp, name)()
    wanted = name.lower().removeprefix("fake_").replace("_", "")
    for cls in fake_backend_names():
        if cls.lower().removeprefix("fake").removesuffix("v2") == wanted:
            return getattr(fp, cls)()  # device name, e.g. fake_manila -> FakeManilaV2
    raise BackendError(f"unknown fake backend {name!r}; available: "
                       f"{', '.join(fake_backend_names()[:12])}, ... "
                       "(qiskit_ibm_runtime.fake_provider)", field="quantum_backend")


# ---- circuits -------------------------------------------------------------------------

def compute_uncompute_circuit(fmap: FeatureMap) -> Any:
    """``U(x) U(y)^dagger`` with measurement: P(all zeros) = |<phi(y)|phi(x)>|^2."""
    from qiskit.circuit import ParameterVector

    qc = fmap.to_qiskit()
    y = ParameterVector("y", fmap.n_qubits)
    xs = sorted(qc.parameters, key=lambda p: p.index)
    inverse = qc.assign_parameters(dict(zip(xs, y, strict=True))).inverse()
    out = qc.compose(inverse)
    out.measure_all()
    return out


def parameter_columns(circuit: Any, n_qubits: int) -> np.ndarray:
    """For each of ``circuit.parameters`` (its binding order), the column of ``[x | y]``."""
    cols = []
    for p in circuit.parameters:
        vector = p.vector.name
        cols.append(p.index + (n_qubits if vector == "y" else 0))
    return np.array(cols, dtype=int)


def zero_probabilities(bit_array: Any) -> np.ndarray:
    """Fraction of shots that measured all zeros, per parameter binding."""
    arr = np.asarray(bit_array.array)  # (bindings, shots, bytes)
    return (~arr.any(axis=-1)).mean(axis=-1)


class SamplerKernelBackend:
    """Shot-based backends: compute-uncompute kernels on a Sampler, features on an Estimator.

    Subclasses say which device to transpile for, how to open the execution mode and which
    primitives to use; everything else (transpiling, grouping, budget, retries, job records,
    calibration snapshot) is shared, so ``ibm-local:`` tests exactly the ``ibm:`` path.
    """

    exact = False
    family = ""
    kind = ""

    def __init__(self, name: str, ctx: ExecutionContext, *, shots: int = DEFAULT_SHOTS,
                 optimization_level: int = DEFAULT_OPTIMIZATION_LEVEL,
                 seed: int | None = None) -> None:
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
                self._device = call_with_retries(self.connect, self.ctx,
                                                 f"connect to {self.name}")
            except QuantumStepFailure as failure:
                self._connect_failure = failure
                raise
        return self._device

    def _transpiled(self, fmap: FeatureMap, purpose: str) -> Any:
        key = (fmap, purpose)
        if key not in self._isa:
            from qiskit.transpiler import generate_preset_pass_manager

            circuit = (compute_uncompute_circuit(fmap) if purpose == "kernel"
                       else fmap.to_qiskit())
            device = self.device()
            try:
                pm = generate_preset_pass_manager(optimization_level=self.optimization_level,
                                                  backend=device, seed_transpiler=self.seed)
                isa = pm.run(circuit)
            except Exception as exc:
                raise QuantumStepFailure(
                    "transpile", f"cannot transpile the {fmap.n_qubits}-qubit {fmap.kind} "
                    f"feature map for {getattr(device, 'name', device)} "
                    f"({getattr(device, 'num_qubits', '?')} qubits): "
                    f"{type(exc).__name__}: {exc}") from exc
            self._isa[key] = isa
            if purpose == "kernel":
                ops = isa.count_ops()
                self._stats = {
                    "circuit_depth": int(isa.depth()),
                    "two_qubit_gates": int(sum(1 for inst in isa.data
                                               if inst.operation.num_qubits == 2)),
                    "gates_used": sorted(ops),
                    "layout": (list(isa.layout.final_index_layout())
                               if isa.layout is not None else None),
                }
                log.info("%s: compute-uncompute circuit transpiled (optimization level %d): "
                         "depth %d, %d two-qubit gates", self.name, self.optimization_level,
                         self._stats["circuit_depth"], self._stats["two_qubit_gates"])
        return self._isa[key]

    def prepare(self, fmap: FeatureMap) -> None:
        self._transpiled(fmap, "kernel")

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """Circuits (symmetry and unit diagonal used), shots, jobs after grouping and, on
        hardware once :meth:`prepare` has compiled the circuit, device time."""
        circuits = kernel_circuits(n_x, n_y)
        # Device time binds the budget only on real hardware (emulation runs locally).
        per_shot = self.seconds_per_shot(fmap) if self.kind == "hardware" else None
        return WorkEstimate(circuits, self.shots,
                            jobs_for(circuits, self.shots, self.max_executions_per_job()),
                            None if per_shot is None else circuits * self.shots * per_shot)

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
        rep_delay = getattr(getattr(self._device, "configuration", lambda: None)(),
                            "default_rep_delay", None) or DEFAULT_REP_DELAY_S
        return max(finish, default=0.0) + float(rep_delay)

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        symmetric = y is None
        ref = x if symmetric else np.asarray(y, dtype=np.float64)
        if symmetric:
            ii, jj = np.triu_indices(len(x), k=1)
        else:
            ii, jj = (a.ravel() for a in np.meshgrid(np.arange(len(x)), np.arange(len(ref)),
                                                     indexing="ij"))
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
        chunks = [values[i:i + per_job] for i in range(0, len(values), per_job)]
        log.info("%s: %d circuits x %d shots in %d job(s)", what, len(values), self.shots,
                 len(chunks))
        t0 = time.monotonic()
        results: list[np.ndarray] = []
        device = self.device()
        with self._mode(device) as mode:
            sampler = self.sampler(mode)

            def submit(chunk: np.ndarray) -> Any:
                self.ctx.clock.check_time(what)
                return sampler.run([(isa, chunk)], shots=self.shots)

            jobs = [call_with_retries(lambda c=c: submit(c), self.ctx, f"{what}: submit job")
                    for c in chunks]
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
                    done, result = call_with_retries(resubmit, self.ctx,
                                                     f"{what}: resubmit job {k + 1}")
                self.jobs.append(job_record(done, len(chunk), self.shots))
                pub = result[0]
                results.append(zero_probabilities(getattr(pub.data, _creg(isa))))
                log.info("%s: job %d/%d done (%s, %d circuits), %.1f s", what, k + 1,
                         len(chunks), done.job_id(), len(chunk), time.monotonic() - t0)
        return np.concatenate(results)

    def _mode(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        try:
            return self.open_mode(device)
        except QuantumStepFailure:
            raise
        except Exception as exc:
            from components.quantum.failures import classify

            raise classify(exc) from exc

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        from qiskit.quantum_info import SparsePauliOp

        x = np.asarray(x, dtype=np.float64)
        isa = self._transpiled(fmap, "state")
        n = fmap.n_qubits
        observables = [[SparsePauliOp.from_sparse_list([(p, [q], 1.0)], n)
                        .apply_layout(isa.layout)] for q in range(n) for p in "XYZ"]
        values = x[:, parameter_columns(isa, n)]
        what = f"{self.name} projected features"
        with self._mode(self.device()) as mode:
            estimator = self.estimator(mode)
            job = call_with_retries(
                lambda: estimator.run([(isa, observables, values)],
                                      precision=1.0 / np.sqrt(self.shots)),
                self.ctx, f"{what}: submit job")
            result = wait_for_job(job, self.ctx, what)
            self.jobs.append(job_record(job, len(values) * 3 * n, self.shots))
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
        backend = (cal.backend_identity(device, self.family, self.kind) if device is not None
                   else {"name": self.name, "family": self.family, "kind": self.kind,
                         "version": "", "num_qubits": None, "coupling_map": None,
                         "unreachable": True})
        calibration = cal.device_calibration(device, gates) if device is not None else None
        return cal.snapshot(
            backend=backend, calibration=calibration, simulator=self.simulator_identity(),
            execution={"shots": self.shots, "optimization_level": self.optimization_level,
                       "seed": self.seed,
                       "circuit": "compute-uncompute U(x) U(y)^dagger + measurement, "
                                  "transpiled to the device",
                       "circuit_depth": self._stats.get("circuit_depth"),
                       "two_qubit_gates": self._stats.get("two_qubit_gates"),
                       "layout": self._stats.get("layout"),
                       "jobs": list(self.jobs)})


def _creg(circuit: Any) -> str:
    return circuit.cregs[-1].name if circuit.cregs else "meas"


# ---- qiskit-aer -------------------------------------------------------------------------

class AerShotBackend(SamplerKernelBackend):
    """Aer's V2 primitives, ideal (``?shots=N``) or with a device noise model (``?noise=``)."""

    family = "qiskit-aer"

    def __init__(self, name: str, ctx: ExecutionContext, noise: str | None, **kw: Any) -> None:
        super().__init__(name, ctx, **kw)
        self.noise = noise
        self.kind = "noisy-simulator" if noise else "shot-simulator"
        self._simulator: Any = None

    def connect(self) -> Any:
        from qiskit_aer import AerSimulator

        if self.noise:
            device = fake_backend(self.noise)
            self._simulator = AerSimulator.from_backend(device, seed_simulator=self.seed)
            return device
        self._simulator = AerSimulator(seed_simulator=self.seed)
        return self._simulator

    def sampler(self, mode: Any) -> Any:
        from qiskit_aer.primitives import SamplerV2

        return SamplerV2.from_backend(self._simulator, default_shots=self.shots, seed=self.seed)

    def estimator(self, mode: Any) -> Any:
        from qiskit_aer.primitives import EstimatorV2

        return EstimatorV2.from_backend(self._simulator,
                                        options={"run_options": {"seed_simulator": self.seed}})

    def simulator_identity(self) -> dict[str, Any]:
        return {"name": "qiskit_aer.AerSimulator", "method": "automatic",
                "noise_model": (f"qiskit_aer.noise.NoiseModel.from_backend({self.noise})"
                                if self.noise else None),
                "seed_simulator": self.seed}


class AerExactBackend(ExactStatevectorBackend):
    """``qiskit-aer`` without shots or noise: Aer's statevector method, exact."""

    family = "qiskit-aer"
    simulator = "qiskit_aer.AerSimulator(method='statevector')"

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        from qiskit import transpile
        from qiskit_aer import AerSimulator

        x = sv.check_inputs(fmap, x)
        sim = AerSimulator(method="statevector")
        qc = fmap.to_qiskit()
        qc.save_statevector()
        tqc = transpile(qc, sim, optimization_level=0)
        params = list(tqc.parameters)
        cols = [p.index for p in params]
        out = np.empty((len(x), 2**fmap.n_qubits), dtype=np.complex128)
        batch = 1024
        for start in range(0, len(x), batch):
            self.ctx.clock.check_time(f"{self.name} statevectors")
            rows = x[start:start + batch]
            binds = [{p: rows[:, c].tolist() for p, c in zip(params, cols, strict=True)}]
            result = sim.run([tqc], parameter_binds=binds).result()
            for k in range(len(rows)):
                out[start + k] = np.asarray(result.get_statevector(k))
        return out


def _int_option(parsed: BackendName, key: str, default: int, low: int, high: int) -> int:
    raw = parsed.options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BackendError(f"option {key}={raw!r} in {str(parsed)!r} must be an integer from "
                           f"{low} to {high}", field="quantum_backend")
    return value


def common_options(parsed: BackendName, allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(parsed.options) - allowed)
    if unknown:
        raise BackendError(f"unknown option(s) {unknown} in {str(parsed)!r}; allowed: "
                           f"{sorted(allowed)}", field="quantum_backend")
    seed = parsed.options.get("seed")
    return {"shots": _int_option(parsed, "shots", DEFAULT_SHOTS, 1, 1_000_000),
            "optimization_level": _int_option(parsed, "optimization_level",
                                              DEFAULT_OPTIMIZATION_LEVEL, 0, 3),
            "seed": None if seed is None else _int_option(parsed, "seed", 0, 0, 2**31 - 1)}


def create_aer(parsed: BackendName, ctx: ExecutionContext) -> Any:
    if parsed.target:
        raise BackendError(f"'qiskit-aer' takes options, not a target: use "
                           f"'qiskit-aer?noise={parsed.target}'", field="quantum_backend")
    kw = common_options(parsed, _OPTIONS - {"mode"})
    noise = parsed.options.get("noise")
    if noise is not None:
        fake_backend(noise)  # validates the name now, at the edge
    if noise is None and "shots" not in parsed.options:
        unused = sorted(set(parsed.options) - {"seed"})
        if unused:
            raise BackendError(f"option(s) {unused} need shots: exact 'qiskit-aer' has none; "
                               "add ?shots=N or ?noise=<fake backend>", field="quantum_backend")
        return AerExactBackend("qiskit-aer", ctx)
    return AerShotBackend(str(parsed), ctx, noise, **kw)


# ---- IBM Quantum (hardware, and local testing mode) ------------------------------------

ServiceFactory = Callable[[], Any]


def connect_from_environment() -> Any:
    """``QiskitRuntimeService`` from ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE`` only (never
    a saved account file, never a parameter)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise QuantumStepFailure(
            "auth", f"no IBM Quantum credentials: {TOKEN_ENV} is not set (on a cluster, "
            "expose the IBM Quantum Secret to the quantum step)")
    from qiskit_ibm_runtime import QiskitRuntimeService

    instance = os.environ.get(INSTANCE_ENV, "").strip() or None
    return QiskitRuntimeService(channel=CHANNEL, token=token, instance=instance)


def credential_details() -> str:
    have = bool(os.environ.get(TOKEN_ENV, "").strip())
    inst = bool(os.environ.get(INSTANCE_ENV, "").strip())
    return (f"{TOKEN_ENV} {'set' if have else 'NOT set (runs fall back to classical)'}, "
            f"{INSTANCE_ENV} {'set' if inst else 'not set'}")


class LocalTestingService:
    """Stands in for ``QiskitRuntimeService`` in local testing mode: ``backend(name)`` is a
    fake device, which qiskit-ibm-runtime's primitives and Batch/Session run locally."""

    def backend(self, name: str) -> Any:
        return fake_backend(name)


class IBMRuntimeBackend(SamplerKernelBackend):
    """Primitives V2 from qiskit-ibm-runtime in a ``Batch`` (or ``Session``)."""

    family = "ibm"

    def __init__(self, name: str, target: str, ctx: ExecutionContext, *,
                 service_factory: ServiceFactory, local: bool, mode: str = "batch",
                 **kw: Any) -> None:
        super().__init__(name, ctx, **kw)
        self.target = target
        self.service_factory = service_factory
        self.local = local
        self.mode = mode
        self.family = "ibm-local" if local else "ibm"
        self.kind = "hardware-emulation" if local else "hardware"

    def connect(self) -> Any:
        service = self.service_factory()
        device = service.backend(self.target)
        log.info("%s: using %s (%s qubits)", self.name, getattr(device, "name", self.target),
                 getattr(device, "num_qubits", "?"))
        return device

    def open_mode(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        from qiskit_ibm_runtime import Batch, Session

        return (Session if self.mode == "session" else Batch)(backend=device)

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        left = self.ctx.clock.remaining()
        if left is not None and not self.local:
            options["max_execution_time"] = max(1, int(left))
        return options

    def sampler(self, mode: Any) -> Any:
        from qiskit_ibm_runtime.executor_sampler import Sampler

        sampler = Sampler(mode=mode, options=self._options() or None)
        sampler.options.default_shots = self.shots
        if self.local:  # reproducible local testing mode (ignored by hardware)
            sampler.options.simulator.seed_simulator = self.seed
        return sampler

    def estimator(self, mode: Any) -> Any:
        from qiskit_ibm_runtime.executor_estimator import Estimator

        estimator = Estimator(mode=mode, options=self._options() or None)
        if self.local and hasattr(estimator.options, "simulator"):
            estimator.options.simulator.seed_simulator = self.seed
        return estimator

    def simulator_identity(self) -> dict[str, Any] | None:
        if not self.local:
            return None
        return {"name": "qiskit-ibm-runtime local testing mode (qiskit_aer)",
                "noise_model": f"from fake device {self.target}",
                "seed_simulator": self.seed}


def _ibm(parsed: BackendName, ctx: ExecutionContext, *, local: bool,
         service_factory: ServiceFactory | None = None) -> IBMRuntimeBackend:
    if not parsed.target:
        example = "ibm-local:FakeManilaV2" if local else "ibm:ibm_brisbane"
        raise BackendError(f"{parsed.family!r} needs a backend name, e.g. {example!r}",
                           field="quantum_backend")
    kw = common_options(parsed, _OPTIONS - {"noise"})
    mode = parsed.options.get("mode", "batch")
    if mode not in ("batch", "session"):
        raise BackendError(f"option mode={mode!r} must be 'batch' or 'session'",
                           field="quantum_backend")
    if local:
        fake_backend(parsed.target)  # validates the name now, at the edge
    factory = service_factory or (LocalTestingService if local else connect_from_environment)
    return IBMRuntimeBackend(str(parsed), parsed.target, ctx, service_factory=factory,
                             local=local, mode=mode, **kw)


def create_ibm(parsed: BackendName, ctx: ExecutionContext) -> IBMRuntimeBackend:
    return _ibm(parsed, ctx, local=False)


def create_ibm_local(parsed: BackendName, ctx: ExecutionContext) -> IBMRuntimeBackend:
    return _ibm(parsed, ctx, local=True)
