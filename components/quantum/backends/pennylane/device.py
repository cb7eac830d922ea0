"""``pennylane:<device>``: the same feature-map circuits on any installed PennyLane device.

The circuit is one QNode returning ``qml.state()``, called once per batch of rows with
parameter broadcasting (no per-sample Python loop). Qubit ``i`` of the feature map is wire
``n - 1 - i``, so PennyLane's big-endian state equals Qiskit's (and the exact engine's)
little-endian statevector element by element. Kernel and projected features then come from
those states exactly as in the default backend.

Devices are exact (analytic) here; a device that cannot return states (e.g. a sampling-only
hardware plugin) is rejected with the reason.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np

from components.errors import BackendError
from components.feature_maps import FeatureMap
from components.quantum.backends.exact import ExactStatevectorBackend
from components.quantum.backends.registry import BackendName
from components.quantum.execution import ExecutionContext
from components.quantum.statevector import check_inputs

#: Rows per broadcast call (bounds the device's working memory).
BATCH_ROWS = 4096
_STATE_DEVICES_HINT = "default.qubit, lightning.qubit"


def installed_devices() -> list[str]:
    """Device names registered by installed PennyLane plugins (entry points)."""
    return sorted({e.name for e in importlib.metadata.entry_points(group="pennylane.plugins")})


def details() -> str:
    return "installed devices: " + ", ".join(installed_devices())


def apply_feature_map(qml: Any, fmap: FeatureMap, x: Any) -> None:
    """The feature map as PennyLane operations (``x[..., q]`` broadcasts over a batch)."""
    n = fmap.n_qubits

    def wire(q: int) -> int:
        return n - 1 - q

    if fmap.kind == "angle":
        gate = qml.RY if fmap.rotation == "y" else qml.RX
        for q in range(n):
            gate(x[..., q], wires=wire(q))
        return
    for _ in range(fmap.reps):
        for q in range(n):
            qml.Hadamard(wires=wire(q))
            qml.PhaseShift(2.0 * x[..., q], wires=wire(q))
        for i, j in fmap.pairs:
            qml.CNOT(wires=[wire(i), wire(j)])
            qml.PhaseShift(2.0 * (np.pi - x[..., i]) * (np.pi - x[..., j]), wires=wire(j))
            qml.CNOT(wires=[wire(i), wire(j)])


class PennyLaneBackend(ExactStatevectorBackend):
    family = "pennylane"

    def __init__(self, device_name: str, ctx: ExecutionContext | None = None) -> None:
        super().__init__(f"pennylane:{device_name}", ctx)
        self.device_name = device_name
        self.simulator = f"PennyLane {device_name}"
        self._qnodes: dict[FeatureMap, Any] = {}

    def _qnode(self, fmap: FeatureMap) -> Any:
        import pennylane as qml

        if fmap not in self._qnodes:
            try:
                device = qml.device(self.device_name, wires=fmap.n_qubits)
            except Exception as exc:
                raise BackendError(
                    f"PennyLane device {self.device_name!r} could not be created: {exc}",
                    field="quantum_backend",
                ) from exc

            def circuit(x: Any) -> Any:
                apply_feature_map(qml, fmap, x)
                return qml.state()

            self._qnodes[fmap] = qml.QNode(circuit, device)
        return self._qnodes[fmap]

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        x = check_inputs(fmap, x)
        qnode = self._qnode(fmap)
        out = np.empty((x.shape[0], 2**fmap.n_qubits), dtype=np.complex128)
        for start in range(0, x.shape[0], BATCH_ROWS):
            self.ctx.clock.check_time(f"{self.name} statevectors")
            batch = x[start : start + BATCH_ROWS]
            states = np.asarray(qnode(batch), dtype=np.complex128)
            if states.size != out.shape[1] * len(batch):
                raise BackendError(
                    f"PennyLane device {self.device_name!r} does not return "
                    f"statevectors (got shape {states.shape}); use a state-vector "
                    f"device such as {_STATE_DEVICES_HINT}",
                    field="quantum_backend",
                )
            out[start : start + len(batch)] = states.reshape(len(batch), -1)
        return out

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        from components.quantum.calibration import exact_simulator_snapshot

        return exact_simulator_snapshot(
            self.name,
            self.family,
            self.simulator,
            fmap,
            device=self.device_name,
            wire_order="qubit i -> wire n-1-i",
        )


def create(parsed: BackendName, ctx: ExecutionContext) -> PennyLaneBackend:
    device = parsed.target or "default.qubit"
    if parsed.options:
        raise BackendError(
            f"'pennylane:<device>' takes no options, got {str(parsed)!r}", field="quantum_backend"
        )
    devices = installed_devices()
    if device not in devices:
        raise BackendError(
            f"PennyLane device {device!r} is not installed; installed: "
            f"{devices} (state-vector devices: {_STATE_DEVICES_HINT})",
            field="quantum_backend",
        )
    return PennyLaneBackend(device, ctx)
