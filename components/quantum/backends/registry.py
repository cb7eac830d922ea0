"""The backend interface and the registry of backend families, chosen by name.

A backend name is ``family[:target][?key=value&...]``, e.g. ``statevector``,
``pennylane:default.qubit``, ``qiskit-aer?noise=FakeManilaV2``, ``ibm:ibm_brisbane``.
Each family registers, in one :class:`BackendFamily`, everything the rest of Qubeflow needs to
know about it: its factory, whether a name is exact (statevectors, so the kernel may fan out)
or shot-based, how its SDK's exceptions map to failure reasons, the SDK packages recorded in
lineage, and the pip extra (= container image) it needs. Nothing else names a family.
:func:`get_backend` parses a name and builds the backend; :func:`list_backends` says which
families are usable here and why not.

The built-in families live one per folder beside this module (``statevector/``,
``pennylane/``, ``qiskit/``); their SDKs are imported only when the family is used.

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

from components.errors import BackendError, ConfigError
from components.feature_maps import MAX_QUBITS, FeatureMap
from components.quantum.budget import WorkEstimate
from components.quantum.execution import ExecutionContext
from components.quantum.failures import QuantumStepFailure, register_classifier


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
        raise BackendError(
            f"cannot parse options {query!r} in {name!r}", field="quantum_backend"
        ) from exc
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

    def estimate_features(self, fmap: FeatureMap, n_rows: int) -> WorkEstimate:
        """What ``expectations`` on ``n_rows`` rows costs, before anything runs."""
        ...

    def prepare(self, fmap: FeatureMap) -> None:
        """Connect and compile what ``kernel`` will run; raise if it cannot run at all."""
        ...

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        """Calibration snapshot (see :mod:`.calibration`) including what has run so far."""
        ...


BackendFactory = Callable[[BackendName, ExecutionContext], QuantumBackend]
#: Availability check: returns None when usable, else the reason it is not.
AvailabilityCheck = Callable[[], str | None]


#: Maps an SDK exception to a failure reason, or None when it is not the family's.
FailureClassifier = Callable[[BaseException], QuantumStepFailure | None]


def never_exact(name: BackendName) -> bool:
    return False


def always_exact(name: BackendName) -> bool:
    return True


@dataclass(frozen=True)
class BackendFamily:
    """One backend family and every fact about it that other modules use."""

    family: str
    factory: BackendFactory
    example: str
    description: str
    available: AvailabilityCheck = lambda: None
    #: Extra facts for ``qubeflow backends`` (installed devices, credentials present, ...).
    details: Callable[[], str] | None = None
    #: Whether a parsed name is an exact (statevector) backend: only those fan the kernel out.
    is_exact: Callable[[BackendName], bool] = never_exact
    #: The family's SDK exceptions as failure reasons (generic HTTP/network ones are built in).
    classify: FailureClassifier | None = None
    #: Distributions recorded in calibration snapshots and MLflow lineage.
    sdk_packages: tuple[str, ...] = ()
    #: The pyproject extra the family needs; also names its image
    #: (``qubeflow-quantum-<extra>``). Empty: the base image has everything.
    extra: str = ""
    #: Widest register the family simulates (dense statevector families: ``MAX_QUBITS``);
    #: None: the feature map's ceiling, a device's own size checked by the backend.
    max_qubits: int | None = None


_FAMILIES: dict[str, BackendFamily] = {}
PLUGINS_ENV = "QUBEFLOW_BACKEND_PLUGINS"
_loaded_plugins: set[str] = set()


def register_backend(family: BackendFamily) -> None:
    _FAMILIES[family.family] = family
    if family.classify is not None:
        register_classifier(family.classify)


def families() -> list[BackendFamily]:
    """Every registered family (plugins included)."""
    _load_plugins()
    return list(_FAMILIES.values())


def sdk_packages() -> tuple[str, ...]:
    """The SDK distributions of every registered family, in registration order."""
    return tuple(dict.fromkeys(p for fam in families() for p in fam.sdk_packages))


def image_extras() -> tuple[str, ...]:
    """The pip extras (one quantum image each) the registered families need."""
    return tuple(dict.fromkeys(fam.extra for fam in families() if fam.extra))


def _load_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        if module in _loaded_plugins:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BackendError(
                f"cannot import backend plugin {module!r}: {exc}", field=PLUGINS_ENV
            ) from exc
        _loaded_plugins.add(module)


def get_backend(name: str, ctx: ExecutionContext | None = None) -> QuantumBackend:
    """Build the backend named ``name``; BackendError names the value when it cannot."""
    parsed = parse_backend_name(name)
    _load_plugins()
    fam = _FAMILIES.get(parsed.family)
    if fam is None:
        raise BackendError(
            f"unknown backend {name!r}; known families: "
            f"{sorted(_FAMILIES)} (run 'qubeflow backends')",
            field="quantum_backend",
        )
    reason = fam.available()
    if reason:
        raise BackendError(
            f"backend {name!r} is not usable here: {reason}", field="quantum_backend"
        )
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
    """Whether ``name`` is an exact (statevector) backend, without building it (the family's
    own registration says; an unknown family is an error naming the value)."""
    parsed = parse_backend_name(name)
    _load_plugins()
    fam = _FAMILIES.get(parsed.family)
    if fam is None:
        raise BackendError(
            f"unknown backend {name!r}; known families: {sorted(_FAMILIES)}",
            field="quantum_backend",
        )
    return fam.is_exact(parsed)


def check_width(name: str, fmap: FeatureMap) -> None:
    """ConfigError(n_qubits) when the register is wider than the family ``name`` simulates,
    suggesting the ``mps`` engine for wide registers."""
    parsed = parse_backend_name(name)
    _load_plugins()
    fam = _FAMILIES.get(parsed.family)
    if fam is not None and fam.max_qubits is not None and fmap.n_qubits > fam.max_qubits:
        if fam.max_qubits == MAX_QUBITS:
            fmap.check_dense_width(name)
        raise ConfigError(
            f"{fmap.n_qubits} qubits is above {fam.max_qubits}, the widest register "
            f"{name!r} simulates",
            field="n_qubits",
        )


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
        out.append(
            BackendStatus(
                fam.family, fam.example, reason is None, reason or "", fam.description, details
            )
        )
    return out


def lazy_call(module: str, function: str) -> Callable[[], str]:
    return lambda: getattr(importlib.import_module(module), function)()


def requires(*modules: str) -> AvailabilityCheck:
    """Availability check: every module importable (found without importing it)."""

    def check() -> str | None:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            return (
                f"{', '.join(missing)} not installed (pip install 'qubeflow[...]' or use "
                "the backend family's image)"
            )
        return None

    return check


def lazy_factory(module: str, function: str) -> BackendFactory:
    """A factory living in ``module`` that is imported only when the family is used."""

    def factory(parsed: BackendName, ctx: ExecutionContext) -> QuantumBackend:
        return getattr(importlib.import_module(module), function)(parsed, ctx)

    return factory
