"""The circuits the Qiskit families run: the feature map, the compute-uncompute kernel
circuit ``U(x) U(y)^dagger`` with measurement, and how results map back to kernel values."""

from __future__ import annotations

from typing import Any

import numpy as np

from components.feature_maps import FeatureMap


def feature_map_circuit(fmap: FeatureMap) -> Any:
    """The feature map as a parameterised Qiskit circuit (parameters ``x[i]``)."""
    from qiskit.circuit import ParameterVector, QuantumCircuit
    from qiskit.circuit.library import zz_feature_map

    if fmap.kind == "zz":
        return zz_feature_map(fmap.n_qubits, reps=fmap.reps, entanglement=fmap.entanglement)
    x = ParameterVector("x", fmap.n_qubits)
    qc = QuantumCircuit(fmap.n_qubits, name="AngleEmbedding")
    for i in range(fmap.n_qubits):
        (qc.ry if fmap.rotation == "y" else qc.rx)(x[i], i)
    return qc


def compute_uncompute_circuit(fmap: FeatureMap) -> Any:
    """``U(x) U(y)^dagger`` with measurement: P(all zeros) = |<phi(y)|phi(x)>|^2."""
    from qiskit.circuit import ParameterVector

    qc = feature_map_circuit(fmap)
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


def classical_register(circuit: Any) -> str:
    return circuit.cregs[-1].name if circuit.cregs else "meas"
