"""Did the quantum *task* die? The crash hook's first question, answered without importing
the registry step (pandas, scikit-learn, MLflow): in a healthy run the hook only asks it.
"""

from __future__ import annotations

#: The reason code of a fallback because the quantum task itself did not finish.
TASK_CRASHED = "task_crashed"
#: Final states of the quantum task that mean it did not finish (KFP's task states).
FAILED_STATES = ("FAILED", "ERROR")


def quantum_crash_reason(
    state: str, task_name: str, error_message: str | None, *, fallback: str
) -> str | None:
    """The fallback reason when the quantum task ended without a result (its final
    ``state`` is FAILED: the pod was OOM-killed, evicted or lost its node, or the process
    died), else None: it succeeded (its own registry step ran), was cancelled or skipped,
    or ``quantum_fallback`` is ``fail`` (then the run fails with it)."""
    if state.upper() not in FAILED_STATES or fallback != "classical":
        return None
    detail = f"; KFP: {error_message.strip()}" if error_message and error_message.strip() else ""
    return (
        f"{TASK_CRASHED}: quantum task {task_name or 'train-quantum-model'} ended {state} "
        "without a result (pod OOM-killed, evicted or node lost, or its process died; after "
        f"its retries){detail}"
    )
