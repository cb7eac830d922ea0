"""Quantum backends behind one interface, chosen by name (see :mod:`.registry`).

Importing this package registers the built-in families: every sub-package here is one family
folder (``statevector``, the exact default; ``pennylane``; ``qiskit`` with ``qiskit-aer``,
``ibm``, ``ibm-local``) whose ``__init__`` calls :func:`register_backend` without importing its
SDK. Adding a family is adding a folder. More families plug in without forking:
``QUBEFLOW_BACKEND_PLUGINS=pkg.module[,other]`` names modules that register when imported.
"""

import importlib
import pkgutil

from components.quantum.backends.exact import ExactStatevectorBackend
from components.quantum.backends.registry import (
    PLUGINS_ENV,
    BackendFamily,
    BackendName,
    BackendStatus,
    QuantumBackend,
    check_width,
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

for _family in pkgutil.iter_modules(__path__):
    if _family.ispkg:
        importlib.import_module(f"{__name__}.{_family.name}")

__all__ = [
    "PLUGINS_ENV",
    "BackendFamily",
    "BackendName",
    "BackendStatus",
    "ExactStatevectorBackend",
    "QuantumBackend",
    "StatevectorBackend",
    "check_width",
    "families",
    "get_backend",
    "image_extras",
    "is_exact_backend",
    "list_backends",
    "parse_backend_name",
    "register_backend",
    "sdk_packages",
]
