"""Why a quantum step failed, in words a pipeline can act on.

Every failure of the quantum step is turned into a :class:`QuantumStepFailure` with a short
``reason`` code (what the MLflow tag ``quantum.fallback_reason`` starts with) and a
``transient`` flag (only transient failures are retried):

=============  =========  ================================================================
reason         transient  typical cause
=============  =========  ================================================================
auth           no         no IBM Quantum credentials, invalid token, not authorised
unavailable    yes        backend offline/under maintenance, network error, HTTP 5xx/429
timeout        no         the step's wall-clock budget ran out (a job is cancelled)
budget         no         the work needs more shots/circuits than the budget allows
transpile      no         the circuit does not fit the device (qubits, basis, layout)
job_failed     no         the backend ran the job and reported an error
error          no         anything else (a bug or an unexpected library error)
=============  =========  ================================================================

Messages are scrubbed of secret values (:func:`redact_secrets`) before they are logged or
written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from components.errors import BackendError

REASONS = ("auth", "unavailable", "timeout", "budget", "transpile", "job_failed", "error")
#: Environment variables whose values must never appear in logs, tags or artifacts.
SECRET_ENV_VARS = (
    "QISKIT_IBM_TOKEN",
    "QISKIT_IBM_INSTANCE",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "KFP_TOKEN",
)
_MIN_SECRET_LEN = 4


def redact_secrets(text: str) -> str:
    """``text`` with the value of every secret environment variable replaced by ``***``."""
    for var in SECRET_ENV_VARS:
        value = os.environ.get(var, "")
        if len(value) >= _MIN_SECRET_LEN:
            text = text.replace(value, "***")
    return text


class QuantumStepFailure(BackendError):
    """The quantum step could not produce a result; ``reason`` is one of :data:`REASONS`."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        transient: bool = False,
        field: str | None = "quantum_backend",
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        self.reason = reason
        self.transient = transient
        super().__init__(redact_secrets(message), field=field)

    @property
    def summary(self) -> str:
        """``reason: message`` (what ``quantum.fallback_reason`` holds)."""
        return f"{self.reason}: {self.message}"


_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


#: Family classifiers (each backend family registers its SDK's exceptions, see
#: :class:`components.quantum.backends.registry.BackendFamily`), tried before the generic rules.
_CLASSIFIERS: list[Callable[[BaseException], QuantumStepFailure | None]] = []


def register_classifier(fn: Callable[[BaseException], QuantumStepFailure | None]) -> None:
    if fn not in _CLASSIFIERS:
        _CLASSIFIERS.append(fn)


def exception_names(exc: BaseException) -> set[str]:
    """The class names of ``exc``'s type and its bases (SDKs are matched by name, so their
    packages need not be importable to classify)."""
    return {c.__name__ for c in type(exc).__mro__}


def http_failure(exc: BaseException, text: str) -> QuantumStepFailure | None:
    """``auth`` for HTTP 401/403, ``unavailable`` (transient) for 408/429/5xx, else None."""
    code = _status_code(exc)
    if code in (401, 403):
        return QuantumStepFailure("auth", text)
    if code in _TRANSIENT_HTTP:
        return QuantumStepFailure("unavailable", text, transient=True)
    return None


def classify(exc: BaseException) -> QuantumStepFailure:
    """Map an exception from a backend SDK (or our own code) to a :class:`QuantumStepFailure`:
    the families' classifiers first, then generic network, timeout and HTTP rules."""
    if isinstance(exc, QuantumStepFailure):
        return exc
    for fn in _CLASSIFIERS:
        failure = fn(exc)
        if failure is not None:
            return failure
    names = exception_names(exc)
    text = f"{type(exc).__name__}: {exc}"
    failure = http_failure(exc, text)
    if failure is not None:
        return failure
    if "TimeoutError" in names:
        return QuantumStepFailure("timeout", text)
    if names & {"ConnectionError", "ConnectTimeout", "ReadTimeout"}:
        return QuantumStepFailure("unavailable", text, transient=True)
    return QuantumStepFailure("error", text)
