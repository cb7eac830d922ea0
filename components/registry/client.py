"""The MLflow registry client the gate uses: fail-fast HTTP settings, reachability check, and
the few reads every registry operation needs (champion, version tags, existence)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from components.errors import RegistryError
from components.registry import lineage
from components.registry import mlflow_names as names

T = TypeVar("T")

#: MLflow retries a failing HTTP call 7 times with exponential backoff (minutes when the
#: server is down). The gate must fail in seconds and undo, so unless the user set them:
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def registry_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (fails fast; see :data:`HTTP_DEFAULTS`)."""
    from mlflow import MlflowClient

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    check_reachable(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


#: Seconds a client waits for a tracking server that is still starting (set by the local
#: runner, which starts its own server beside the pipeline; unset: fail fast).
STARTING_SERVER_WAIT_ENV = "QUBEFLOW_TRACKING_STARTUP_WAIT_S"


def check_reachable(tracking_uri: str, attempts: int = 3, timeout_s: float = 5.0) -> None:
    """Fail fast (seconds, not MLflow's minutes of HTTP retries) when an HTTP tracking server
    does not answer ``/health``; other stores (``sqlite:``, ``file:``) need no check. A server
    the local runner is still starting is waited for, up to $QUBEFLOW_TRACKING_STARTUP_WAIT_S."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    starting = float(os.environ.get(STARTING_SERVER_WAIT_ENV, "0") or 0)
    if starting > 0:  # one attempt every 0.2 s until the deadline, then the usual ones
        attempts += int(starting / 0.2)
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2 if starting > 0 else 0.5 * (attempt + 1))
    raise RegistryError(
        f"cannot reach the MLflow tracking server at "
        f"{lineage.redact_uri(tracking_uri)} ({last}); nothing was written",
        field="mlflow_tracking_uri",
    )


def is_not_found(exc: Exception) -> bool:
    """An MLflow error meaning "no such model / version / alias" (stores word it apart)."""
    text = str(exc).lower()
    return (
        "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
        or "not found" in text
        or "does not exist" in text
    )


def is_already_exists(exc: Exception) -> bool:
    return (
        "RESOURCE_ALREADY_EXISTS" in str(getattr(exc, "error_code", ""))
        or "already exists" in str(exc).lower()
    )


def or_none_if_not_found(call: Callable[..., T], *args: Any) -> T | None:
    """``call(*args)``, or None when MLflow answers that the thing does not exist (any other
    error propagates). The one place "not found" is handled for reads and deletes."""
    from mlflow.exceptions import MlflowException

    try:
        return call(*args)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise


def delete_if_present(call: Callable[..., Any], *args: Any) -> bool:
    """Run a registry delete; False (not an error) when it was already gone."""
    return or_none_if_not_found(lambda: call(*args) or True) is not None


def alias_version(client: Any, name: str, alias: str) -> str | None:
    mv = or_none_if_not_found(client.get_model_version_by_alias, name, alias)
    return None if mv is None else str(mv.version)


def current_champion(client: Any, name: str) -> str | None:
    return alias_version(client, name, names.ALIAS_CHAMPION)


def registered_model_exists(client: Any, name: str) -> bool:
    return or_none_if_not_found(client.get_registered_model, name) is not None


def version_tags(client: Any, name: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(name, str(version)).tags)
