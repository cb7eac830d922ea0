"""Is the tracking server there, and does it accept this run's account? Asked by the run's
first task, before any data is read or anything trained: a wrong ``mlflow_tracking_uri`` or
rejected credentials fail the run in seconds, not after hours of training.

Plain HTTP (no MLflow import): ``GET /health`` (MLflow serves it without authentication), then,
with the account the register step will use (``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` or
``MLFLOW_TRACKING_TOKEN`` from the environment), one read of the experiments API, then one
listing of the run's experiment's artifacts through the server's artifact proxy: a missing
bucket, an unreachable or refusing S3/MinIO behind the server fails here, not at the upload
after training. Only ``http(s)://`` servers are checked; a database or file store URI has
nothing to reach.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from components.errors import RegistryError
from components.registry.client import STARTING_SERVER_WAIT_ENV, check_reachable
from components.registry.lineage import redact_uri

FIELD = "mlflow_tracking_uri"
REQUEST_TIMEOUT_S = 10.0


def _auth_header() -> dict[str, str]:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {token}"}
    return {}


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as resp:
            return resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096) if exc.fp else b""
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(
            f"the MLflow tracking server stopped answering: {getattr(exc, 'reason', exc)}",
            field=FIELD,
        ) from exc


#: What the preflight lists: a folder no run writes, so the listing is one cheap request
#: however many runs the experiment holds (an absent folder lists as empty).
PROBE_FOLDER = ".qubeflow-preflight"
PROXIED_SCHEME = "mlflow-artifacts:"


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def check_artifact_store(uri: str, headers: dict[str, str], experiment_name: str) -> str:
    """List a probe folder of the experiment's artifacts through the server's artifact proxy
    (of the server's artifact root when the experiment does not exist yet). RegistryError when
    the store behind the server fails; an experiment whose artifacts do not go through the
    proxy, a server that does not proxy, or an account that may not list, is reported as not
    checked."""
    base = uri.rstrip("/")
    query = urllib.parse.urlencode({"experiment_name": experiment_name})
    status, body = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", headers)
    path = PROBE_FOLDER
    if status == 200:
        experiment = _json(body).get("experiment", {})
        location = str(experiment.get("artifact_location", ""))
        if not location.startswith(PROXIED_SCHEME):
            return (
                f"artifacts of {experiment_name!r} go to {redact_uri(location) or '?'}, "
                "not through the server: not checked"
            )
        path = f"{experiment.get('experiment_id', '')}/{PROBE_FOLDER}"
    query = urllib.parse.urlencode({"path": path})
    status, body = _get(f"{base}/api/2.0/mlflow-artifacts/artifacts?{query}", headers)
    if status == 200:
        return "artifact store answers"
    if status == 503 or (status == 404 and b"RESOURCE_DOES_NOT_EXIST" not in body):
        return "artifacts not proxied by this server (clients write to the store): not checked"
    if status in (400, 401, 403):
        return f"artifact store: the server refused the listing (HTTP {status}): not checked"
    message = str(_json(body).get("message", ""))[:300] or body[:200].decode(errors="replace")
    raise RegistryError(
        f"{redact_uri(base)} answers, but its artifact store does not (HTTP {status}"
        + (f": {message}" if message.strip() else "")
        + "): check the server's --artifacts-destination bucket and its S3 endpoint and keys; "
        "the model could not be stored",
        field=FIELD,
    )


def check_tracking_server(uri: str, experiment_name: str = "") -> str:
    """Raise RegistryError (field ``mlflow_tracking_uri``) unless the MLflow server at ``uri``
    answers, accepts the account and reaches its artifact store; return what was checked,
    for the log."""
    if not uri.startswith(("http://", "https://")):
        return f"{uri.split(':', 1)[0]} store: no server to check"
    if os.environ.get(STARTING_SERVER_WAIT_ENV):
        # the local runner starts this server beside the pipeline; the registry step waits
        return f"MLflow at {redact_uri(uri)}: started by this run, not checked"
    base = redact_uri(uri.rstrip("/"))
    check_reachable(uri)  # /health, a few attempts (a server the local run starts: waited for)
    headers = _auth_header()
    status, body = _get(
        f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1", headers
    )
    who = "the account in MLFLOW_TRACKING_USERNAME" if headers else "anonymous requests"
    if status == 401:
        raise RegistryError(
            f"{base} rejected {who} (HTTP 401): give the run the MLflow account's Secret "
            "(mlflow_secret_name) or set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD",
            field=FIELD,
        )
    if status == 403:
        raise RegistryError(
            f"{base} accepted {who} but refuses it the experiments (HTTP 403): the account "
            "needs READ on experiments and EDIT on this run's experiment",
            field=FIELD,
        )
    if status != 200:
        raise RegistryError(
            f"{base} answered the experiments API with HTTP {status}: "
            f"{body[:200].decode(errors='replace')}",
            field=FIELD,
        )
    try:
        json.loads(body or b"{}")
    except ValueError as exc:
        raise RegistryError(
            f"{base} answered the experiments API with something other than JSON: is it an "
            "MLflow tracking server?",
            field=FIELD,
        ) from exc
    from components.registry.mlflow_names import DEFAULT_EXPERIMENT

    store = check_artifact_store(uri, headers, experiment_name or DEFAULT_EXPERIMENT)
    return f"MLflow at {base} answers ({who}); {store}"
