"""The Qiskit families: ``qiskit-aer`` (:mod:`.aer`), ``ibm`` and ``ibm-local``
(:mod:`.ibm`), sharing the Sampler kernel (:mod:`.sampler`), the circuits (:mod:`.circuits`),
the fake devices (:mod:`.devices`) and the name options (:mod:`.options`). Qiskit is imported
only when one of them is used; its exceptions are classified by name (:func:`classify`).
"""

from __future__ import annotations

from components.feature_maps import MAX_QUBITS
from components.quantum.backends.registry import (
    BackendFamily,
    BackendName,
    lazy_call,
    lazy_factory,
    register_backend,
    requires,
)
from components.quantum.failures import QuantumStepFailure, exception_names, http_failure

SDK_PACKAGES = ("qiskit", "qiskit-aer", "qiskit-ibm-runtime")
EXTRA = "qiskit"
_NETWORK_ERRORS = {
    "IBMBackendApiError",
    "IBMBackendApiProtocolError",
    "RequestsApiError",
    "IBMRuntimeError",
    "IBMBackendError",
}


def classify(exc: BaseException) -> QuantumStepFailure | None:
    """qiskit / qiskit-aer / qiskit-ibm-runtime exceptions as failure reasons."""
    names = exception_names(exc)
    text = f"{type(exc).__name__}: {exc}"
    if names & {"AccountNotFoundError", "InvalidAccountError", "IBMNotAuthorizedError"}:
        return QuantumStepFailure("auth", text)
    if names & {"RuntimeJobTimeoutError", "RuntimeJobMaxTimeoutError"}:
        return QuantumStepFailure("timeout", text)
    if names & {"TranspilerError", "CircuitTooWideForTarget"}:
        return QuantumStepFailure("transpile", text)
    if names & {"RuntimeJobFailureError", "RuntimeInvalidStateError", "AerError"}:
        return QuantumStepFailure("job_failed", text)
    if names & _NETWORK_ERRORS:
        # an HTTP status decides: 401/403 auth, 5xx/429 transient; another code is an error
        failure = http_failure(exc, text)
        if failure is not None:
            return failure
        if getattr(exc, "status_code", None) or getattr(exc, "status", None):
            return QuantumStepFailure("error", text)
        return QuantumStepFailure("unavailable", text, transient=True)
    if "QiskitError" in names and "qubits" in str(exc).lower():
        return QuantumStepFailure("transpile", text)  # e.g. more qubits than the device has
    return None


def aer_is_exact(name: BackendName) -> bool:
    """``qiskit-aer`` without shots or noise runs Aer's statevector method."""
    return not ({"shots", "noise"} & set(name.options))


_SHARED = dict(classify=classify, sdk_packages=SDK_PACKAGES, extra=EXTRA)

register_backend(
    BackendFamily(
        "qiskit-aer",
        lazy_factory(f"{__name__}.aer", "create_aer"),
        "qiskit-aer?noise=FakeManilaV2",
        "Qiskit Aer: exact, ideal shots (?shots=N) or noisy from an IBM device's calibration "
        "(?noise=<fake backend>)",
        requires("qiskit", "qiskit_aer", "qiskit_ibm_runtime"),
        lazy_call(f"{__name__}.devices", "fake_backend_details"),
        is_exact=aer_is_exact,
        max_qubits=MAX_QUBITS,
        **_SHARED,
    )
)
register_backend(
    BackendFamily(
        "ibm",
        lazy_factory(f"{__name__}.ibm", "create_ibm"),
        "ibm:ibm_brisbane",
        "IBM Quantum hardware via qiskit-ibm-runtime (Batch mode, Sampler/Estimator V2); token "
        "from QISKIT_IBM_TOKEN",
        requires("qiskit", "qiskit_ibm_runtime"),
        lazy_call(f"{__name__}.ibm", "credential_details"),
        **_SHARED,
    )
)
register_backend(
    BackendFamily(
        "ibm-local",
        lazy_factory(f"{__name__}.ibm", "create_ibm_local"),
        "ibm-local:FakeManilaV2",
        "the ibm: code path in qiskit-ibm-runtime local testing mode on a fake device",
        requires("qiskit", "qiskit_aer", "qiskit_ibm_runtime"),
        lazy_call(f"{__name__}.devices", "fake_backend_details"),
        **_SHARED,
    )
)
