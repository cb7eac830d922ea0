"""A backend whose use kills the process it runs in, as a backend plugin.

Loaded through ``QUBEFLOW_BACKEND_PLUGINS=tests.fakes.crashing_backend`` (so it also works
inside the subprocesses of a real ``kfp.local`` pipeline run), it registers the family
``crash:<signal>``: building it is harmless (the CLI validates the name), but the moment the
quantum step prepares it, the step's own process dies of the signal (``kill`` with SIGKILL,
what the kernel's out-of-memory killer sends; exit status 137 in a container) — a real
process death, no exception for the step to catch and fall back from. It is a shot-based
family (not exact), so the route-planning task never builds it.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from components.quantum.backends import BackendFamily, BackendName, register_backend
from components.quantum.execution import ExecutionContext

#: A file the backend appends its process id to right before it kills that process.
MARKER_ENV = "QUBEFLOW_CRASH_MARKER"
SIGNALS = {"oom": signal.SIGKILL, "sigkill": signal.SIGKILL, "sigsegv": signal.SIGSEGV}


class CrashingBackend:
    exact = False
    kind = "simulator"

    def __init__(self, name: str, sig: signal.Signals) -> None:
        self.name, self.sig = name, sig

    def prepare(self, fmap: Any) -> None:
        marker = os.environ.get(MARKER_ENV)
        if marker:  # say which process is about to die (the test checks it is gone)
            with open(marker, "a") as fh:
                fh.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), self.sig)  # the process ends here

    def _unreachable(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the crashing backend is never used past prepare()")

    kernel = expectations = estimate = estimate_features = snapshot = _unreachable


def create(parsed: BackendName, ctx: ExecutionContext) -> CrashingBackend:
    target = parsed.target or "oom"
    if target not in SIGNALS:
        raise ValueError(f"unknown crash {target!r}; use one of {sorted(SIGNALS)}")
    return CrashingBackend(str(parsed), SIGNALS[target])


register_backend(
    BackendFamily(
        "crash",
        create,
        "crash:oom",
        "TEST ONLY: the quantum step's process is killed (SIGKILL) when it prepares the backend",
    )
)
