"""Calibration snapshots: what device (or simulator) produced a quantum model, captured at run
time (IBM's API cannot return historical calibrations later).

Schema (``qubeflow.calibration/v1``; docs/backends.md documents it)::

    schema            "qubeflow.calibration/v1"
    captured_at       ISO-8601 UTC time the snapshot was taken
    backend           {name, family, kind, version, num_qubits, coupling_map}
                      kind: exact-simulator | shot-simulator | noisy-simulator |
                            hardware | hardware-emulation (ibm-local)
    calibration       device data (null for exact simulators, which record their identity):
                      {source, timestamp, qubits: {q: {t1_s, t2_s, frequency_hz,
                       readout_error, readout_duration_s}}, gates: {name: {"q0_q1": {error,
                       duration_s}}}}  (gates: those the transpiled circuits use)
    simulator         simulator and noise-model identity (null on hardware)
    calibration_hash  sha256 of the canonical JSON of {backend, calibration, simulator}
    execution         {shots, optimization_level, seed, circuit_depth, two_qubit_gates,
                       layout, jobs: [{job_id, circuits, shots, status, queue_seconds,
                       execution_seconds}]}
    sdk_versions      qiskit, qiskit-aer, qiskit-ibm-runtime, pennylane, ... as installed

The hash covers only what describes the device, so two runs on the same calibration share it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from typing import Any

from components.versions import installed_versions

SCHEMA = "qubeflow.calibration/v1"
#: Always recorded; each backend family adds its SDK packages (its ``BackendFamily``).
CORE_PACKAGES = ("numpy", "qubeflow")
#: Instructions that are not gates (no calibration worth recording).
_NON_GATES = {
    "measure",
    "barrier",
    "delay",
    "reset",
    "if_else",
    "for_loop",
    "switch_case",
    "while_loop",
    "box",
}


def sdk_versions() -> dict[str, str]:
    """Installed versions of every registered family's SDK, numpy, qubeflow and Python."""
    from components.quantum.backends import sdk_packages  # the registry imports this module

    packages = (*sdk_packages(), *CORE_PACKAGES)
    return {**installed_versions(*dict.fromkeys(packages)), "python": platform.python_version()}


def content_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def device_calibration(backend: Any, gates_used: set[str] | None = None) -> dict[str, Any]:
    """Per-qubit and per-gate calibration from a Qiskit ``BackendV2`` (IBM device or fake)."""
    target = backend.target
    qubits: dict[str, dict[str, float | None]] = {}
    props = list(getattr(target, "qubit_properties", None) or [])
    measure = target["measure"] if "measure" in target.operation_names else {}
    for q in range(target.num_qubits):
        qp = props[q] if q < len(props) else None
        m = measure.get((q,)) if measure else None
        qubits[str(q)] = {
            "t1_s": _num(getattr(qp, "t1", None)),
            "t2_s": _num(getattr(qp, "t2", None)),
            "frequency_hz": _num(getattr(qp, "frequency", None)),
            "readout_error": _num(getattr(m, "error", None)),
            "readout_duration_s": _num(getattr(m, "duration", None)),
        }
    names = sorted(
        (gates_used if gates_used is not None else set(target.operation_names)) - _NON_GATES
    )
    gates: dict[str, dict[str, dict[str, float | None]]] = {}
    for name in names:
        if name not in target.operation_names:
            continue
        entries = {}
        for qargs, ip in (target[name] or {}).items():
            if qargs is None or ip is None:
                continue
            entries["_".join(map(str, qargs))] = {
                "error": _num(ip.error),
                "duration_s": _num(ip.duration),
            }
        gates[name] = entries
    timestamp = None
    properties = getattr(backend, "properties", None)
    if callable(properties):
        try:
            p = properties()
            stamp = getattr(p, "last_update_date", None)
            timestamp = stamp.isoformat() if hasattr(stamp, "isoformat") else stamp
        except Exception:
            timestamp = None
    return {
        "source": getattr(backend, "name", type(backend).__name__),
        "timestamp": timestamp,
        "qubits": qubits,
        "gates": gates,
    }


def backend_identity(backend: Any, family: str, kind: str) -> dict[str, Any]:
    target = backend.target
    coupling = target.build_coupling_map()
    return {
        "name": getattr(backend, "name", type(backend).__name__),
        "family": family,
        "kind": kind,
        "version": str(getattr(backend, "backend_version", "") or ""),
        "num_qubits": int(target.num_qubits),
        "coupling_map": sorted([list(e) for e in coupling.get_edges()]) if coupling else None,
    }


def snapshot(
    *,
    backend: dict[str, Any],
    calibration: dict[str, Any] | None,
    simulator: dict[str, Any] | None,
    execution: dict[str, Any],
) -> dict[str, Any]:
    """Assemble a snapshot and hash its device part."""
    hashed = {"backend": backend, "calibration": calibration, "simulator": simulator}
    return {
        "schema": SCHEMA,
        "captured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "calibration": calibration,
        "simulator": simulator,
        "calibration_hash": content_hash(hashed),
        "execution": execution,
        "sdk_versions": sdk_versions(),
    }


def exact_simulator_snapshot(
    name: str, family: str, simulator: str, fmap: Any, **identity: Any
) -> dict[str, Any]:
    """Exact simulators have no device data: their identity and versions stand in for it."""
    return snapshot(
        backend={
            "name": name,
            "family": family,
            "kind": "exact-simulator",
            "version": "",
            "num_qubits": fmap.n_qubits,
            "coupling_map": None,
        },
        calibration=None,
        simulator={"name": simulator, "noise_model": None, "versions": sdk_versions(), **identity},
        execution={
            "shots": 0,
            "optimization_level": None,
            "seed": None,
            "circuit": "feature map U(x), untranspiled (one statevector per sample)",
            "circuit_depth": fmap.depth(),
            "two_qubit_gates": fmap.two_qubit_gates(),
            "layout": None,
            "jobs": [],
        },
    )
