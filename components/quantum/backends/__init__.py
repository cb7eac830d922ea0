"""Quantum backends behind one interface, chosen by name (see :mod:`.registry`).

Importing this package registers the built-in families, one folder each: ``statevector``
(the exact default), ``pennylane``, ``qiskit`` (``qiskit-aer``, ``ibm``, ``ibm-local``).
More families plug in without forking: ``QUBEFLOW_BACKEND_PLUGINS=pkg.module[,other]`` names
modules that call :func:`register_backend` when imported.
"""

from components.quantum.backends import (  # noqa: F401 (importing registers the families)
    pennylane,
    qiskit,
    registry,
    statevector,
)
from components.quantum.backends.exact import ExactStatevectorBackend
from components.quantum.backends.registry import (
    PLUGINS_ENV,
    BackendFamily,
    BackendName,
    BackendStatus,
    QuantumBackend,
    families,
    get_backend,
    image_extras,
    is_exact_backend,
    list_backends,
    parse_backend_name,
    register_backend,
    sdk_packages,
)
from components.quantum.backends.statevector import StatevectorBackend

__all__ = [
    "PLUGINS_ENV",
    "BackendFamily",
    "BackendName",
    "BackendStatus",
    "ExactStatevectorBackend",
    "QuantumBackend",
    "StatevectorBackend",
    "families",
    "get_backend",
    "image_extras",
    "is_exact_backend",
    "list_backends",
    "parse_backend_name",
    "register_backend",
    "sdk_packages",
]
