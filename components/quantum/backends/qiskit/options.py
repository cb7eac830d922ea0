"""Options of the Qiskit families' names (``?shots=&optimization_level=&seed=&mode=&noise=``),
validated when the backend is built, naming the bad value."""

from __future__ import annotations

from typing import Any

from components.errors import BackendError
from components.quantum.backends.registry import BackendName

DEFAULT_SHOTS = 1024
DEFAULT_OPTIMIZATION_LEVEL = 1
#: IBM devices' usual delay between shots when the device does not report one.
DEFAULT_REP_DELAY_S = 250e-6
OPTIONS = {"shots", "noise", "optimization_level", "seed", "mode"}


def int_option(parsed: BackendName, key: str, default: int, low: int, high: int) -> int:
    raw = parsed.options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BackendError(
            f"option {key}={raw!r} in {str(parsed)!r} must be an integer from {low} to {high}",
            field="quantum_backend",
        )
    return value


def common_options(parsed: BackendName, allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(parsed.options) - allowed)
    if unknown:
        raise BackendError(
            f"unknown option(s) {unknown} in {str(parsed)!r}; allowed: {sorted(allowed)}",
            field="quantum_backend",
        )
    seed = parsed.options.get("seed")
    return {
        "shots": int_option(parsed, "shots", DEFAULT_SHOTS, 1, 1_000_000),
        "optimization_level": int_option(
            parsed, "optimization_level", DEFAULT_OPTIMIZATION_LEVEL, 0, 3
        ),
        "seed": None if seed is None else int_option(parsed, "seed", 0, 0, 2**31 - 1),
    }
