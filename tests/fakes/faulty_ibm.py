"""Fault injection at the IBM Quantum service boundary, as a backend plugin.

Loaded through ``QUBEFLOW_BACKEND_PLUGINS=tests.fakes.faulty_ibm`` (so it also works inside
the subprocesses of a real ``kfp.local`` pipeline run), it registers the family
``ibm-faulty:<fault>``: the real ``ibm:`` backend class and code path (service -> device ->
Batch -> qiskit-ibm-runtime Sampler -> jobs, running locally on a fake device), with one
fault injected where IBM's service would produce it:

- ``invalid_token``: the service rejects the token (``InvalidAccountError``, as
  ``QiskitRuntimeService`` raises it), its message echoing the token;
- ``unavailable``: the API answers HTTP 503 every time (``RequestsApiError``, transient);
- ``flaky``: HTTP 503 on the first two connection attempts, then works;
- ``job_failure``: jobs are accepted, then fail (``RuntimeJobFailureError``);
- ``timeout``: jobs are accepted and never finish (the step's wall budget must cancel them).
"""

from __future__ import annotations

import os
from typing import Any

from components.quantum.backends import BackendFamily, BackendName, register_backend
from components.quantum.backends.qiskit.ibm import IBMRuntimeBackend, LocalTestingService
from components.quantum.backends.qiskit.options import common_options
from components.quantum.execution import ExecutionContext, RetryPolicy

FAULTS = ("invalid_token", "unavailable", "flaky", "job_failure", "timeout")
DEVICE = "FakeManilaV2"
#: Connection attempts seen by ``flaky`` services, per process.
ATTEMPTS: dict[str, int] = {}
CANCELLED: list[str] = []


class FailedJob:
    def __init__(self, job_id: str) -> None:
        self._id = job_id

    def job_id(self) -> str:
        return self._id

    def done(self) -> bool:
        return True

    def status(self) -> str:
        return "ERROR"

    def result(self) -> Any:
        from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

        raise RuntimeJobFailureError(
            f"Unable to retrieve job result. Job {self._id} failed: "
            "Error code 1517; the backend reported a hardware error."
        )

    def cancel(self) -> None:
        pass


class HangingJob(FailedJob):
    def done(self) -> bool:
        return False

    def status(self) -> str:
        return "QUEUED"

    def cancel(self) -> None:
        CANCELLED.append(self._id)


class FaultySampler:
    def __init__(self, job_cls: type[FailedJob]) -> None:
        self.job_cls = job_cls
        self.n = 0

    def run(self, pubs: Any, *, shots: int | None = None) -> FailedJob:
        self.n += 1
        return self.job_cls(f"faulty-job-{self.n}")


class FaultyService(LocalTestingService):
    def __init__(self, fault: str) -> None:
        from qiskit_ibm_runtime.accounts.exceptions import InvalidAccountError
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError

        token = os.environ.get("QISKIT_IBM_TOKEN", "")
        if fault == "invalid_token":
            raise InvalidAccountError(
                f"Unable to retrieve instances for token {token!r}. "
                "Please check that you are using a valid API token."
            )
        if fault == "unavailable" or (fault == "flaky" and ATTEMPTS.setdefault(fault, 0) < 2):
            ATTEMPTS[fault] = ATTEMPTS.get(fault, 0) + 1
            raise RequestsApiError(
                "503 Server Error: Service Unavailable for url: "
                "https://quantum.cloud.ibm.com/api/v1/backends",
                status_code=503,
            )


class FaultyIBMBackend(IBMRuntimeBackend):
    def __init__(self, fault: str, ctx: ExecutionContext, **kw: Any) -> None:
        super().__init__(
            f"ibm-faulty:{fault}",
            DEVICE,
            ctx,
            service_factory=lambda: FaultyService(fault),
            local=True,
            **kw,
        )
        self.fault = fault
        self.family, self.kind = "ibm-faulty", "hardware-emulation"

    def sampler(self, mode: Any) -> Any:
        if self.fault == "job_failure":
            return FaultySampler(FailedJob)
        if self.fault == "timeout":
            return FaultySampler(HangingJob)
        return super().sampler(mode)


def create(parsed: BackendName, ctx: ExecutionContext) -> FaultyIBMBackend:
    if parsed.target not in FAULTS:
        raise ValueError(f"unknown fault {parsed.target!r}; use one of {FAULTS}")
    # Short backoff so retry tests take fractions of a second.
    ctx.retry = RetryPolicy(attempts=ctx.retry.attempts, initial_delay_s=0.05, max_delay_s=0.2)
    ctx.poll_s = 0.05
    return FaultyIBMBackend(parsed.target, ctx, **common_options(parsed, {"shots", "seed"}))


register_backend(
    BackendFamily(
        "ibm-faulty",
        create,
        "ibm-faulty:timeout",
        "TEST ONLY: ibm: code path with injected service faults",
    )
)
