"""Quantum backends behind one interface, chosen by name.

A backend name is ``family[:target][?key=value&...]``, e.g. ``statevector``,
``pennylane:default.qubit``, ``qiskit-aer?noise=FakeManilaV2``, ``ibm:ibm_brisbane``.
Families register a factory with :func:`register_backend`; :func:`get_backend` parses the
name and builds the backend; :func:`list_backends` says which are usable here and why not.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

import numpy as np

from components.errors import BackendError
from components.quantum import statevector as sv
from components.quantum.feature_maps import FeatureMap
from components.versions import installed_versions


@dataclass(frozen=True)
class BackendName:
    family: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.family + (f":{self.target}" if self.target else "")
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text


def parse_backend_name(name: str) -> BackendName:
    if not isinstance(name, str) or not name.strip():
        raise BackendError("is empty; use e.g. 'statevector'", field="quantum_backend")
    head, _, query = name.strip().partition("?")
    family, _, target = head.partition(":")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise BackendError(f"cannot parse options {query!r} in {name!r}",
                           field="quantum_backend") from exc
    return BackendName(family.strip().lower(), target.strip(), options)


@runtime_checkable
class QuantumBackend(Protocol):
    """What every backend provides to the kernel and feature transformers."""

    name: str
    #: True when results are exact amplitudes (no shot noise): such backends also provide
    #: ``statevectors(fmap, x)``, which lets callers cache reference states.
    exact: bool

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Fidelity kernel between rows of ``x`` and ``y`` (Gram of ``x`` when ``y`` is None)."""
        ...

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        """Projected features: per-qubit <X>, <Y>, <Z>, shape (N, 3 * n_qubits)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Identity, versions and (for devices) calibration, for lineage."""
        ...


class StatevectorBackend:
    """The exact default: batched NumPy statevectors, kernel by one tiled matrix product."""

    exact = True

    def __init__(self, tile_bytes: int = sv.DEFAULT_TILE_BYTES) -> None:
        self.name = "statevector"
        self.tile_bytes = tile_bytes

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        return sv.statevectors(fmap, x)

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        sx = self.statevectors(fmap, x)
        sy = None if y is None else self.statevectors(fmap, y)
        what = "train Gram" if y is None else "kernel vs. reference"
        return sv.fidelity_kernel(sx, sy, tile_bytes=self.tile_bytes,
                                  progress=sv.ProgressLogger(f"{self.name} {what}"))

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        return sv.pauli_expectations(self.statevectors(fmap, x), fmap.n_qubits)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "kind": "exact-simulator",
            "simulator": "qubeflow.statevector (NumPy, complex128)",
            "shots": None,
            "noise_model": None,
            "sdk_versions": {**installed_versions("numpy", "qubeflow"),
                             "python": platform.python_version()},
        }


BackendFactory = Callable[[BackendName], QuantumBackend]
#: Availability check: returns None when usable, else the reason it is not.
AvailabilityCheck = Callable[[], str | None]


@dataclass(frozen=True)
class BackendFamily:
    family: str
    factory: BackendFactory
    example: str
    description: str
    available: AvailabilityCheck = lambda: None


_FAMILIES: dict[str, BackendFamily] = {}


def register_backend(family: BackendFamily) -> None:
    _FAMILIES[family.family] = family


def get_backend(name: str) -> QuantumBackend:
    """Build the backend named ``name``; BackendError names the value when it cannot."""
    parsed = parse_backend_name(name)
    fam = _FAMILIES.get(parsed.family)
    if fam is None:
        raise BackendError(f"unknown backend {name!r}; known families: "
                           f"{sorted(_FAMILIES)} (run 'qubeflow backends')",
                           field="quantum_backend")
    reason = fam.available()
    if reason:
        raise BackendError(f"backend {name!r} is not usable here: {reason}",
                           field="quantum_backend")
    return fam.factory(parsed)


@dataclass(frozen=True)
class BackendStatus:
    family: str
    example: str
    usable: bool
    reason: str
    description: str


def list_backends() -> list[BackendStatus]:
    out = []
    for fam in _FAMILIES.values():
        reason = fam.available()
        out.append(BackendStatus(fam.family, fam.example, reason is None, reason or "",
                                 fam.description))
    return out


def _statevector_factory(parsed: BackendName) -> QuantumBackend:
    if parsed.target or parsed.options:
        raise BackendError(f"'statevector' takes no target or options, got {str(parsed)!r}",
                           field="quantum_backend")
    return StatevectorBackend()


register_backend(BackendFamily(
    "statevector", _statevector_factory, "statevector",
    "exact batched NumPy statevector simulator (default)"))
