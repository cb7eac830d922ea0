"""How a backend runs remote or long work: within a budget, retrying only transient failures,
waiting on jobs with progress and a deadline.

:class:`ExecutionContext` travels from the quantum step to the backend it builds: the running
:class:`~components.quantum.budget.BudgetClock`, the :class:`RetryPolicy` and the seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from components.quantum.budget import UNLIMITED, BudgetClock
from components.quantum.failures import QuantumStepFailure, classify, redact_secrets

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How often a long wait on a job logs where it is.
PROGRESS_EVERY_S = 10.0
#: Job states before a device (or simulator) starts executing it.
QUEUED_STATES = ("INITIALIZING", "QUEUED", "VALIDATING")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts (1 = no retry) and exponential backoff between them, for transient errors."""

    attempts: int = 3
    initial_delay_s: float = 2.0
    max_delay_s: float = 60.0


@dataclass
class ExecutionContext:
    clock: BudgetClock = field(default_factory=UNLIMITED.start)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    seed: int | None = None
    #: Seconds between job-status polls.
    poll_s: float = 0.5


def call_with_retries(fn: Callable[[], T], ctx: ExecutionContext, what: str) -> T:
    """``fn()``, retried with exponential backoff while it fails with a *transient* error
    (see :mod:`components.quantum.failures`) and time is left; other errors, and the last
    transient one, are raised as :class:`QuantumStepFailure`."""

    def transient(exc: BaseException) -> bool:
        return classify(exc).transient

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d/%d): %s; retrying in %.1f s",
            what,
            state.attempt_number,
            ctx.retry.attempts,
            redact_secrets(str(exc)),
            state.next_action.sleep if state.next_action else 0.0,
        )

    def out_of_time(state: RetryCallState) -> bool:
        left = ctx.clock.remaining()
        return left is not None and left <= 0

    retrying = Retrying(
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(ctx.retry.attempts) | out_of_time,
        wait=wait_exponential(multiplier=ctx.retry.initial_delay_s, max=ctx.retry.max_delay_s),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except QuantumStepFailure:
        raise
    except Exception as exc:
        failure = classify(exc)
        raise QuantumStepFailure(
            failure.reason, f"{what}: {failure.message}", transient=failure.transient
        ) from exc


def wait_for_job(job: Any, ctx: ExecutionContext, what: str) -> Any:
    """Wait for a primitive job within the time budget, then return its result.

    On timeout the job is cancelled (so it stops costing QPU time) and ``timeout`` raised.
    """
    started = last_report = time.monotonic()
    running_since: float | None = None
    while not job.done():
        now = time.monotonic()
        status = _status_name(job)  # every poll (done() asks the service anyway)
        if status == "RUNNING" and running_since is None:
            running_since = now
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            log.info(
                "%s: job %s %s", what, job.job_id(), _wait_text(status, started, running_since, now)
            )
        left = ctx.clock.remaining()
        if left is not None and left <= 0:
            try:
                job.cancel()
                log.warning("%s: cancelled job %s (time budget exhausted)", what, job.job_id())
            except Exception as exc:
                log.warning("%s: could not cancel job %s: %s", what, job.job_id(), exc)
            ctx.clock.check_time(f"{what} (job {job.job_id()})")
        time.sleep(ctx.poll_s if left is None else max(0.01, min(ctx.poll_s, left)))
    return job.result()


def _wait_text(status: str, started: float, running_since: float | None, now: float) -> str:
    """``QUEUED, queued 30 s`` / ``RUNNING, queued 12 s, running 18 s`` (to within one poll)."""
    if running_since is None:
        return (
            f"{status}, {'queued' if status in QUEUED_STATES else 'waiting'} {now - started:.0f} s"
        )
    return f"{status}, queued {running_since - started:.0f} s, running {now - running_since:.0f} s"


def _status_name(job: Any) -> str:
    try:
        status = job.status()
    except Exception:
        return "status unknown"
    return str(getattr(status, "name", status))


def job_record(job: Any, circuits: int, shots: int) -> dict[str, Any]:
    """Job id, status, queue and execution time (from the job's metrics when it has them)."""
    record: dict[str, Any] = {
        "job_id": str(job.job_id()),
        "circuits": circuits,
        "shots": shots,
        "status": None,
        "queue_seconds": None,
        "execution_seconds": None,
        "created": None,
    }
    try:
        status = job.status()
        record["status"] = getattr(status, "name", str(status))
    except Exception:
        pass
    metrics = getattr(job, "metrics", None)
    if callable(metrics):
        try:
            stamps = (metrics() or {}).get("timestamps", {}) or {}
        except Exception:
            stamps = {}
        created, running, finished = (
            _parse(stamps.get(k)) for k in ("created", "running", "finished")
        )
        record["created"] = stamps.get("created")
        if created and running:
            record["queue_seconds"] = round((running - created).total_seconds(), 3)
        if running and finished:
            record["execution_seconds"] = round((finished - running).total_seconds(), 3)
    return record


def _parse(stamp: Any) -> Any:
    from datetime import datetime

    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
