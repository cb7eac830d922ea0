"""``pennylane:<device>``: the feature-map circuits on any installed PennyLane device
(:mod:`.device`; PennyLane is imported only when the family is used)."""

from __future__ import annotations

from components.feature_maps import MAX_QUBITS
from components.quantum.backends.registry import (
    BackendFamily,
    always_exact,
    lazy_call,
    lazy_factory,
    register_backend,
    requires,
)

register_backend(
    BackendFamily(
        "pennylane",
        lazy_factory(f"{__name__}.device", "create"),
        "pennylane:default.qubit",
        "any installed PennyLane device by name; broadcast batches, exact states",
        requires("pennylane"),
        lazy_call(f"{__name__}.device", "details"),
        is_exact=always_exact,
        sdk_packages=("pennylane", "pennylane-lightning"),
        extra="pennylane",
        max_qubits=MAX_QUBITS,
    )
)
