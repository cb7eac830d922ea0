"""``qiskit-aer``: exact (Aer's statevector method), ideal shots (``?shots=N``) or noisy from
an IBM device's calibration (``?noise=<fake device>``, circuits transpiled to that device)."""

from __future__ import annotations

from typing import Any

import numpy as np

from components.errors import BackendError
from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.backends.exact import ExactStatevectorBackend
from components.quantum.backends.qiskit.circuits import feature_map_circuit
from components.quantum.backends.qiskit.devices import fake_backend
from components.quantum.backends.qiskit.options import OPTIONS, common_options
from components.quantum.backends.qiskit.sampler import SamplerKernelBackend
from components.quantum.backends.registry import BackendName
from components.quantum.execution import ExecutionContext


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

        return EstimatorV2.from_backend(
            self._simulator, options={"run_options": {"seed_simulator": self.seed}}
        )

    def simulator_identity(self) -> dict[str, Any]:
        return {
            "name": "qiskit_aer.AerSimulator",
            "method": "automatic",
            "noise_model": (
                f"qiskit_aer.noise.NoiseModel.from_backend({self.noise})" if self.noise else None
            ),
            "seed_simulator": self.seed,
        }


class AerExactBackend(ExactStatevectorBackend):
    """``qiskit-aer`` without shots or noise: Aer's statevector method, exact."""

    family = "qiskit-aer"
    simulator = "qiskit_aer.AerSimulator(method='statevector')"

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        from qiskit import transpile
        from qiskit_aer import AerSimulator

        x = sv.check_inputs(fmap, x)
        sim = AerSimulator(method="statevector")
        qc = feature_map_circuit(fmap)
        qc.save_statevector()
        tqc = transpile(qc, sim, optimization_level=0)
        params = list(tqc.parameters)
        cols = [p.index for p in params]
        out = np.empty((len(x), 2**fmap.n_qubits), dtype=np.complex128)
        batch = 1024
        for start in range(0, len(x), batch):
            self.ctx.clock.check_time(f"{self.name} statevectors")
            rows = x[start : start + batch]
            binds = [{p: rows[:, c].tolist() for p, c in zip(params, cols, strict=True)}]
            result = sim.run([tqc], parameter_binds=binds).result()
            for k in range(len(rows)):
                out[start + k] = np.asarray(result.get_statevector(k))
        return out


def create_aer(parsed: BackendName, ctx: ExecutionContext) -> Any:
    if parsed.target:
        raise BackendError(
            f"'qiskit-aer' takes options, not a target: use 'qiskit-aer?noise={parsed.target}'",
            field="quantum_backend",
        )
    kw = common_options(parsed, OPTIONS - {"mode"})
    noise = parsed.options.get("noise")
    if noise is not None:
        fake_backend(noise)  # validates the name now, at the edge
    if noise is None and "shots" not in parsed.options:
        unused = sorted(set(parsed.options) - {"seed"})
        if unused:
            raise BackendError(
                f"option(s) {unused} need shots: exact 'qiskit-aer' has none; "
                "add ?shots=N or ?noise=<fake backend>",
                field="quantum_backend",
            )
        return AerExactBackend("qiskit-aer", ctx)
    return AerShotBackend(str(parsed), ctx, noise, **kw)
