"""``ibm:<backend>`` (IBM Quantum hardware through qiskit-ibm-runtime, ``Batch`` or
``Session`` mode, executor Sampler/Estimator) and ``ibm-local:<fake device>`` (the same code in
qiskit-ibm-runtime's local testing mode).

Credentials come only from the environment: ``QISKIT_IBM_TOKEN`` and ``QISKIT_IBM_INSTANCE``
(on a cluster, from a Kubernetes Secret exposed to the quantum step).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from components.errors import BackendError
from components.quantum.backends.qiskit.devices import fake_backend
from components.quantum.backends.qiskit.options import OPTIONS, common_options
from components.quantum.backends.qiskit.sampler import SamplerKernelBackend
from components.quantum.backends.registry import BackendName
from components.quantum.execution import ExecutionContext
from components.quantum.failures import QuantumStepFailure

log = logging.getLogger(__name__)

TOKEN_ENV = "QISKIT_IBM_TOKEN"
INSTANCE_ENV = "QISKIT_IBM_INSTANCE"
CHANNEL = "ibm_quantum_platform"


ServiceFactory = Callable[[], Any]


def connect_from_environment() -> Any:
    """``QiskitRuntimeService`` from ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE`` only (never
    a saved account file, never a parameter)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise QuantumStepFailure(
            "auth",
            f"no IBM Quantum credentials: {TOKEN_ENV} is not set (on a cluster, "
            "expose the IBM Quantum Secret to the quantum step)",
        )
    from qiskit_ibm_runtime import QiskitRuntimeService

    instance = os.environ.get(INSTANCE_ENV, "").strip() or None
    return QiskitRuntimeService(channel=CHANNEL, token=token, instance=instance)


def credential_details() -> str:
    have = bool(os.environ.get(TOKEN_ENV, "").strip())
    inst = bool(os.environ.get(INSTANCE_ENV, "").strip())
    return (
        f"{TOKEN_ENV} {'set' if have else 'NOT set (runs fall back to classical)'}, "
        f"{INSTANCE_ENV} {'set' if inst else 'not set'}"
    )


class LocalTestingService:
    """Stands in for ``QiskitRuntimeService`` in local testing mode: ``backend(name)`` is a
    fake device, which qiskit-ibm-runtime's primitives and Batch/Session run locally."""

    def backend(self, name: str) -> Any:
        return fake_backend(name)


class IBMRuntimeBackend(SamplerKernelBackend):
    """Primitives V2 from qiskit-ibm-runtime in a ``Batch`` (or ``Session``)."""

    family = "ibm"

    def __init__(
        self,
        name: str,
        target: str,
        ctx: ExecutionContext,
        *,
        service_factory: ServiceFactory,
        local: bool,
        mode: str = "batch",
        **kw: Any,
    ) -> None:
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
        log.info(
            "%s: using %s (%s qubits)",
            self.name,
            getattr(device, "name", self.target),
            getattr(device, "num_qubits", "?"),
        )
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
        return {
            "name": "qiskit-ibm-runtime local testing mode (qiskit_aer)",
            "noise_model": f"from fake device {self.target}",
            "seed_simulator": self.seed,
        }


def _ibm(
    parsed: BackendName,
    ctx: ExecutionContext,
    *,
    local: bool,
    service_factory: ServiceFactory | None = None,
) -> IBMRuntimeBackend:
    if not parsed.target:
        example = "ibm-local:FakeManilaV2" if local else "ibm:ibm_brisbane"
        raise BackendError(
            f"{parsed.family!r} needs a backend name, e.g. {example!r}", field="quantum_backend"
        )
    kw = common_options(parsed, OPTIONS - {"noise"})
    mode = parsed.options.get("mode", "batch")
    if mode not in ("batch", "session"):
        raise BackendError(
            f"option mode={mode!r} must be 'batch' or 'session'", field="quantum_backend"
        )
    if local:
        fake_backend(parsed.target)  # validates the name now, at the edge
    factory = service_factory or (LocalTestingService if local else connect_from_environment)
    return IBMRuntimeBackend(
        str(parsed), parsed.target, ctx, service_factory=factory, local=local, mode=mode, **kw
    )


def create_ibm(parsed: BackendName, ctx: ExecutionContext) -> IBMRuntimeBackend:
    return _ibm(parsed, ctx, local=False)


def create_ibm_local(parsed: BackendName, ctx: ExecutionContext) -> IBMRuntimeBackend:
    return _ibm(parsed, ctx, local=True)
