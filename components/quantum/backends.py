"""Quantum backends behind one interface, chosen by name.

A backend name is ``family[:target][?key=value&...]``, e.g. ``statevector``,
``pennylane:default.qubit``, ``qiskit-aer?noise=FakeManilaV2``, ``ibm:ibm_brisbane``.
Families register a factory with :func:`register_backend`; :func:`get_backend` parses the
name and builds the backend; :func:`list_backends` says which are usable here and why not.

Families: ``statevector`` (here), ``pennylane`` (:mod:`.pennylane_backend`), ``qiskit-aer``,
``ibm`` and ``ibm-local`` (:mod:`.qiskit_backends`). The optional SDKs are imported only when
their family is used.

More families plug in without forking: ``QUBEFLOW_BACKEND_PLUGINS=pkg.module[,other]`` names
modules that call :func:`register_backend` when imported (the test suite uses this to inject
faults at the IBM service boundary inside real pipeline runs).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

import numpy as np

from components.errors import BackendError
from components.feature_maps import FeatureMap
from components.quantum import statevector as sv
from components.quantum.budget import WorkEstimate
from components.quantum.calibration import exact_simulator_snapshot
from components.quantum.execution import ExecutionContext


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

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """What ``kernel`` on ``n_x`` (by ``n_y``) rows costs, before anything runs."""
        ...

    def prepare(self, fmap: FeatureMap) -> None:
        """Connect and compile what ``kernel`` will run; raise if it cannot run at all."""
        ...

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        """Calibration snapshot (see :mod:`.calibration`) including what has run so far."""
        ...


class ExactStatevectorBackend:
    """Base for exact backends: subclasses give ``statevectors``; the kernel is one tiled
    matrix product of them, the projected features come from the same states."""

    exact = True
    family = ""
    simulator = ""

    def __init__(self, name: str, ctx: ExecutionContext | None = None,
                 tile_bytes: int = sv.DEFAULT_TILE_BYTES) -> None:
        self.name = name
        self.ctx = ctx or ExecutionContext()
        self.tile_bytes = tile_bytes

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        what = f"{self.name} {'train Gram' if y is None else 'kernel vs. reference'}"
        self.ctx.clock.check_time(what)
        sx = self.statevectors(fmap, x)
        sy = None if y is None else self.statevectors(fmap, y)
        return sv.fidelity_kernel(sx, sy, tile_bytes=self.tile_bytes,
                                  progress=self._progress(what))

    def _progress(self, what: str) -> sv.ProgressFn:
        logger = sv.ProgressLogger(what)

        def report(done: int, total: int) -> None:
            logger(done, total)
            self.ctx.clock.check_time(what)
        return report

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        return sv.pauli_expectations(self.statevectors(fmap, x), fmap.n_qubits)

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """One state preparation per new row (the reference rows' states are cached)."""
        return WorkEstimate(circuits=n_x, shots_per_circuit=0, jobs=0)

    def prepare(self, fmap: FeatureMap) -> None:
        """Nothing to connect or compile for an in-process simulator."""

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        return exact_simulator_snapshot(self.name, self.family, self.simulator, fmap)


class StatevectorBackend(ExactStatevectorBackend):
    """The exact default: batched NumPy statevectors, kernel by one tiled matrix product."""

    family = "statevector"
    simulator = "qubeflow.statevector (NumPy, complex128)"

    def __init__(self, ctx: ExecutionContext | None = None,
                 tile_bytes: int = sv.DEFAULT_TILE_BYTES, precision: str = "complex128") -> None:
        super().__init__("statevector" if precision == "complex128"
                         else f"statevector?precision={precision}", ctx, tile_bytes)
        self.precision = precision
        self.simulator = f"qubeflow.statevector (NumPy, {precision})"

    def statevectors(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        return sv.statevectors(fmap, x, self.precision)


BackendFactory = Callable[[BackendName, ExecutionContext], QuantumBackend]
#: Availability check: returns None when usable, else the reason it is not.
AvailabilityCheck = Callable[[], str | None]


@dataclass(frozen=True)
class BackendFamily:
    family: str
    factory: BackendFactory
    example: str
    description: str
    available: AvailabilityCheck = lambda: None
    #: Extra facts for ``qubeflow backends`` (installed devices, credentials present, ...).
    details: Callable[[], str] | None = None


_FAMILIES: dict[str, BackendFamily] = {}
PLUGINS_ENV = "QUBEFLOW_BACKEND_PLUGINS"
_loaded_plugins: set[str] = set()


def register_backend(family: BackendFamily) -> None:
    _FAMILIES[family.family] = family


def _load_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        if module in _loaded_plugins:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BackendError(f"cannot import backend plugin {module!r}: {exc}",
                               field=PLUGINS_ENV) from exc
        _loaded_plugins.add(module)


def get_backend(name: str, ctx: ExecutionContext | None = None) -> QuantumBackend:
    """Build the backend named ``name``; BackendError names the value when it cannot."""
    parsed = parse_backend_name(name)
    _load_plugins()
    fam = _FAMILIES.get(parsed.family)
    if fam is None:
        raise BackendError(f"unknown backend {name!r}; known families: "
                           f"{sorted(_FAMILIES)} (run 'qubeflow backends')",
                           field="quantum_backend")
    reason = fam.available()
    if reason:
        raise BackendError(f"backend {name!r} is not usable here: {reason}",
                           field="quantum_backend")
    return fam.factory(parsed, ctx or ExecutionContext())


@dataclass(frozen=True)
class BackendStatus:
    family: str
    example: str
    usable: bool
    reason: str
    description: str
    details: str = ""


def is_exact_backend(name: str) -> bool:
    """Whether ``name`` is an exact (statevector) backend, without building it."""
    parsed = parse_backend_name(name)
    if parsed.family in ("statevector", "pennylane"):
        return True
    return parsed.family == "qiskit-aer" and not ({"shots", "noise"} & set(parsed.options))


def list_backends() -> list[BackendStatus]:
    _load_plugins()
    out = []
    for fam in _FAMILIES.values():
        reason = fam.available()
        details = ""
        if reason is None and fam.details is not None:
            try:
                details = fam.details()
            except Exception as exc:
                details = f"(could not list: {exc})"
        out.append(BackendStatus(fam.family, fam.example, reason is None, reason or "",
                                 fam.description, details))
    return out


def lazy_call(module: str, function: str) -> Callable[[], str]:
    return lambda: getattr(importlib.import_module(module), function)()


def requires(*modules: str) -> AvailabilityCheck:
    """Availability check: every module importable (found without importing it)."""
    def check() -> str | None:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            return (f"{', '.join(missing)} not installed (pip install 'qubeflow[...]' or use "
                    "the backend family's image)")
        return None
    return check


def lazy_factory(module: str, function: str) -> BackendFactory:
    """A factory living in ``module`` that is imported only when the family is used."""
    def factory(parsed: BackendName, ctx: ExecutionContext) -> QuantumBackend:
        return getattr(importlib.import_module(module), function)(parsed, ctx)
    return factory


def _statevector_factory(parsed: BackendName, ctx: ExecutionContext) -> QuantumBackend:
    extra = set(parsed.options) - {"precision", "tile_mb"}
    if parsed.target or extra:
        raise BackendError(f"'statevector' takes only ?precision=complex128|complex64 and "
                           f"?tile_mb=N, got {str(parsed)!r}", field="quantum_backend")
    precision = parsed.options.get("precision", "complex128")
    if precision not in sv.PRECISIONS:
        raise BackendError(f"precision={precision!r} must be one of {list(sv.PRECISIONS)}",
                           field="quantum_backend")
    tile_mb = parsed.options.get("tile_mb", str(sv.DEFAULT_TILE_BYTES // 2**20))
    if not tile_mb.isdigit() or int(tile_mb) < 1:
        raise BackendError(f"tile_mb={tile_mb!r} must be a positive integer (MiB)",
                           field="quantum_backend")
    return StatevectorBackend(ctx, tile_bytes=int(tile_mb) * 2**20, precision=precision)


register_backend(BackendFamily(
    "statevector", _statevector_factory, "statevector",
    "exact batched NumPy statevector simulator (default); ?precision=complex64 (kernel "
    "within ~1e-6, half the memory), ?tile_mb=N (kernel working memory, default 256)"))
register_backend(BackendFamily(
    "pennylane", lazy_factory("components.quantum.pennylane_backend", "create"),
    "pennylane:default.qubit",
    "any installed PennyLane device by name; broadcast batches, exact states",
    requires("pennylane"), lazy_call("components.quantum.pennylane_backend", "details")))
register_backend(BackendFamily(
    "qiskit-aer", lazy_factory("components.quantum.qiskit_backends", "create_aer"),
    "qiskit-aer?noise=FakeManilaV2",
    "Qiskit Aer: exact, ideal shots (?shots=N) or noisy from an IBM device's calibration "
    "(?noise=<fake backend>)", requires("qiskit", "qiskit_aer", "qiskit_ibm_runtime"),
    lazy_call("components.quantum.qiskit_backends", "fake_backend_details")))
register_backend(BackendFamily(
    "ibm", lazy_factory("components.quantum.qiskit_backends", "create_ibm"),
    "ibm:ibm_brisbane",
    "IBM Quantum hardware via qiskit-ibm-runtime (Batch mode, Sampler/Estimator V2); token "
    "from QISKIT_IBM_TOKEN", requires("qiskit", "qiskit_ibm_runtime"),
    lazy_call("components.quantum.qiskit_backends", "credential_details")))
register_backend(BackendFamily(
    "ibm-local", lazy_factory("components.quantum.qiskit_backends", "create_ibm_local"),
    "ibm-local:FakeManilaV2",
    "the ibm: code path in qiskit-ibm-runtime local testing mode on a fake device",
    requires("qiskit", "qiskit_aer", "qiskit_ibm_runtime"),
    lazy_call("components.quantum.qiskit_backends", "fake_backend_details")))
