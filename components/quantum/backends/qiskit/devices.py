"""IBM fake devices from ``qiskit_ibm_runtime.fake_provider`` (offline calibration data):
looked up by class name (``FakeManilaV2``) or device name (``fake_manila``)."""

from __future__ import annotations

from typing import Any

from components.errors import BackendError


def fake_backend_names() -> list[str]:
    import qiskit_ibm_runtime.fake_provider as fp

    return sorted(
        n
        for n in dir(fp)
        if n.startswith("Fake") and not n.startswith(("FakeProvider", "FakeFractional"))
    )


def fake_backend_details() -> str:
    names = fake_backend_names()
    return (
        f"{len(names)} fake devices (qiskit_ibm_runtime.fake_provider), e.g. FakeManilaV2 "
        "(5 qubits), FakeBrisbane (127)"
    )


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
    raise BackendError(
        f"unknown fake backend {name!r}; available: "
        f"{', '.join(fake_backend_names()[:12])}, ... "
        "(qiskit_ibm_runtime.fake_provider)",
        field="quantum_backend",
    )
