"""Submit the retraining pipeline to a Kubeflow Pipelines cluster through ``kfp.Client``.

``qubeflow submit --host URL`` compiles the pipeline (or takes ``--package``), validates the
parameters once, and creates a run (or, with ``--recurring CRON``, a recurring run) in an
experiment. Auth uses the usual KFP client options, from the environment only:
``KFP_TOKEN`` (a bearer token), ``KFP_COOKIES`` (e.g. an auth-session cookie), or, inside a
cluster, the projected service-account token KFP reads from ``KF_PIPELINES_SA_TOKEN_PATH``.
Nothing secret is ever a parameter: the pods get credentials from Kubernetes Secrets.
``--service-account`` names the Kubernetes service account the run's pods use (the manifests
deploy ``qubeflow-pipeline-runner`` with only what KFP's driver and Argo's executor need; the
scheduled retraining passes it); without it KFP uses the namespace's default runner account.

The pipeline's pods must reach the MLflow tracking server, so an empty or loopback
``mlflow_tracking_uri`` (or a local file or SQLite store) is refused unless
``--allow-local-tracking`` says it is meant. The compiled package goes to a temporary
directory that is removed when the :class:`Submission` is closed (it is a context manager).
``--dry-run`` prints the exact request body ``kfp.Client`` sends (built by the same code
path), the auth options in use by name only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.errors import ConfigError, QubeflowError
from pipelines.config import PipelineConfig

DEFAULT_EXPERIMENT = "qubeflow-retraining"
TOKEN_ENV = "KFP_TOKEN"
COOKIES_ENV = "KFP_COOKIES"
#: In a cluster: a projected service-account token for audience pipelines.kubeflow.org.
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"


#: Where kfp.Client sends the run / recurring run (v2beta1 REST API, under the host).
RUNS_PATH = "/apis/v2beta1/runs"
RECURRING_RUNS_PATH = "/apis/v2beta1/recurringruns"
EXPERIMENTS_PATH = "/apis/v2beta1/experiments"
_LOCAL_HOSTS = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
#: MLflow's tracking URIs for a hosted workspace (``databricks`` or ``databricks://profile``).
_HOSTED_URIS = {"databricks", "databricks-uc"}
#: The pipeline pods' own service account in the manifests (manifests/base/pipeline-runner-rbac.yaml).
PIPELINE_SERVICE_ACCOUNT = "qubeflow-pipeline-runner"
#: A Kubernetes object name (RFC 1123 subdomain), which a service account's name must be.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_service_account(name: str | None) -> str | None:
    """The run's service account (None: the namespace's default runner account); a name
    Kubernetes would refuse is a ConfigError naming ``--service-account``."""
    if not name:
        return None
    if len(name) > 253 or not _K8S_NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a Kubernetes service account name (lower-case letters, digits, "
            "'-' and '.', at most 253 characters)",
            field="--service-account",
        )
    return name


def local_tracking_reason(uri: str) -> str | None:
    """Why the pods of a cluster run could not reach ``uri`` (empty, a loopback host, a
    local file or SQLite store), or None when it names a remote server."""
    text = uri.strip()
    if not text:
        return "is empty (the registry step would have no tracking server)"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if text in _HOSTED_URIS or scheme in _HOSTED_URIS:
        return None
    if scheme in ("", "file") or scheme.startswith("sqlite"):
        return f"{text!r} is a store on this machine's disk, not a server the pods can reach"
    host = (parts.hostname or "").lower()
    loopback = host in _LOCAL_HOSTS or host.endswith(".localhost")
    try:
        address = ipaddress.ip_address(host)
        loopback = loopback or address.is_loopback or address.is_unspecified
    except ValueError:
        pass
    if not host or loopback:
        return f"{text!r} is a loopback address: in a pod it is the pod itself"
    return None


def check_tracking_uri(uri: str, *, allow_local: bool = False) -> None:
    """ConfigError(mlflow_tracking_uri) for a URI the cluster's pods cannot reach, unless
    ``allow_local`` (``--allow-local-tracking``)."""
    reason = local_tracking_reason(uri)
    if reason and not allow_local:
        raise ConfigError(
            f"{reason}; give the tracking server's in-cluster URL, e.g. --set "
            "mlflow_tracking_uri=http://qubeflow-mlflow:5000 (or pass --allow-local-tracking "
            "if the pods really reach it)",
            field="mlflow_tracking_uri",
        )


def normalise_cron(expr: str) -> str:
    """KFP takes 6-field cron (seconds first); a 5-field expression gets ``0`` seconds."""
    fields = expr.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise ConfigError(
        f"expected a 5- or 6-field cron expression, got {expr!r}", field="--recurring"
    )


@dataclass
class Submission:
    host: str
    experiment: str
    run_name: str
    arguments: dict[str, Any]
    package_path: str
    images: dict[str, str]
    recurring: str | None = None
    namespace: str | None = None
    #: The Kubernetes service account the run's pods use (None: KFP's default runner account).
    service_account: str | None = None
    auth: list[str] = field(default_factory=list)  # which options are in use, never values
    #: The temporary directory of the compiled package (None: ``--package`` or ``out_dir``).
    workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def __enter__(self) -> Submission:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the compiled package's temporary directory (if this submission made one)."""
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def run_request(self) -> dict[str, Any]:
        """The request ``submit`` makes: method, path and the JSON body as ``kfp.Client``
        builds it (its own package reader and API models), except ``experiment_id``, which
        the KFP API assigns to the experiment (looked up by name, created if missing)."""
        import kfp_server_api
        from kfp.client.client import _extract_pipeline_yaml

        spec = _extract_pipeline_yaml(self.package_path).to_dict()
        runtime = kfp_server_api.V2beta1RuntimeConfig(parameters=self.arguments)
        experiment_id = f"<id of experiment {self.experiment!r}>"
        if self.recurring:
            path = RECURRING_RUNS_PATH
            body: Any = kfp_server_api.V2beta1RecurringRun(
                experiment_id=experiment_id,
                mode=kfp_server_api.RecurringRunMode.ENABLE,
                pipeline_spec=spec,
                runtime_config=runtime,
                display_name=self.run_name,
                trigger=kfp_server_api.V2beta1Trigger(
                    cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=self.recurring)
                ),
                max_concurrency=1,
                service_account=self.service_account,
            )
        else:
            path = RUNS_PATH
            body = kfp_server_api.V2beta1Run(
                experiment_id=experiment_id,
                display_name=self.run_name,
                pipeline_spec=spec,
                runtime_config=runtime,
                service_account=self.service_account,
            )
        return {
            "method": "POST",
            "url": self.host + path,
            "body": kfp_server_api.ApiClient().sanitize_for_serialization(body),
        }

    def to_dict(self) -> dict[str, Any]:
        """What ``--dry-run`` prints: where it goes, the auth options by name, the images,
        the experiment, and the exact request."""
        return {
            "host": self.host,
            "namespace": self.namespace,
            "service_account": self.service_account,
            "auth": self.auth,
            "images": self.images,
            "experiment": {
                "method": "GET then POST (created if missing)",
                "url": self.host + EXPERIMENTS_PATH,
                "display_name": self.experiment,
            },
            "request": self.run_request(),
        }


def prepare(
    config: PipelineConfig,
    *,
    host: str,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str = "",
    recurring: str | None = None,
    namespace: str | None = None,
    package: str | None = None,
    out_dir: str | Path | None = None,
    allow_local_tracking: bool = False,
    service_account: str | None = None,
) -> Submission:
    """Validate ``config`` and compile (unless ``package`` is given): what would be sent.
    Without ``out_dir`` the package goes to a temporary directory that the returned
    submission removes when closed (use it as a context manager)."""
    from components.image_refs import BASE_IMAGE
    from pipelines.retraining import compile_pipeline

    if not host.strip():
        raise ConfigError(
            "is empty (the KFP API endpoint, e.g. http://ml-pipeline.kubeflow:8888)", field="--host"
        )
    from components.registry.lineage import git_commit

    config = config.replace(git_commit=config.git_commit or git_commit(Path.cwd())).validate()
    check_tracking_uri(config.mlflow_tracking_uri, allow_local=allow_local_tracking)
    service_account = check_service_account(service_account)
    workdir = None
    if package:
        if not Path(package).is_file():
            raise ConfigError(f"{package!r} does not exist", field="--package")
        path = Path(package)
    elif out_dir:
        path = compile_pipeline(out_dir)
    else:
        workdir = tempfile.TemporaryDirectory(prefix="qubeflow-submit-")
        try:
            path = compile_pipeline(workdir.name)
        except BaseException:
            workdir.cleanup()
            raise
    auth = [name for name in (TOKEN_ENV, COOKIES_ENV, SA_TOKEN_ENV) if os.environ.get(name)]
    return Submission(
        host=host.rstrip("/"),
        experiment=experiment or DEFAULT_EXPERIMENT,
        run_name=run_name or f"retrain-{os.environ.get('HOSTNAME', 'manual')}",
        arguments=config.pipeline_arguments(),
        package_path=str(path),
        images={"base": BASE_IMAGE, "quantum": config.quantum_image},
        recurring=normalise_cron(recurring) if recurring else None,
        namespace=namespace or None,
        service_account=service_account,
        auth=auth,
        workdir=workdir,
    )


class SubmitError(QubeflowError):
    """The KFP API could not be reached or refused the submission."""


def submit(sub: Submission) -> dict[str, str]:
    """Create the run or recurring run; returns their ids. SubmitError (naming ``--host``)
    when the KFP API cannot be reached or answers with an error."""
    import kfp_server_api
    import urllib3

    try:
        return _submit(sub)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise SubmitError(
            f"cannot reach the KFP API at {sub.host}: {type(exc).__name__}: {exc}",
            field="--host",
        ) from exc
    except kfp_server_api.ApiException as exc:
        raise SubmitError(
            f"the KFP API at {sub.host} refused the request: HTTP {exc.status} {exc.reason}: "
            f"{(exc.body or '')[:500]}",
            field="--host",
        ) from exc


def _submit(sub: Submission) -> dict[str, str]:
    import kfp

    token, cookies = os.environ.get(TOKEN_ENV) or None, os.environ.get(COOKIES_ENV) or None
    credentials = None
    sa_token = os.environ.get(SA_TOKEN_ENV, "")
    if not token and not cookies and sa_token and Path(sa_token).is_file():
        from kfp.client import ServiceAccountTokenVolumeCredentials

        credentials = ServiceAccountTokenVolumeCredentials(path=sa_token)
    client = kfp.Client(
        host=sub.host,
        existing_token=token,
        cookies=cookies,
        credentials=credentials,
        namespace=sub.namespace,
    )
    if sub.recurring:
        experiment = client.create_experiment(sub.experiment, namespace=sub.namespace)
        job = client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=sub.run_name,
            cron_expression=sub.recurring,
            pipeline_package_path=sub.package_path,
            params=sub.arguments,
            enabled=True,
            service_account=sub.service_account,
        )
        return {"experiment_id": experiment.experiment_id, "recurring_run_id": job.recurring_run_id}
    result = client.create_run_from_pipeline_package(
        sub.package_path,
        arguments=sub.arguments,
        run_name=sub.run_name,
        experiment_name=sub.experiment,
        namespace=sub.namespace,
        service_account=sub.service_account,
    )
    return {"run_id": result.run_id}


def describe(sub: Submission) -> str:
    """The ``--dry-run`` output (JSON)."""
    return json.dumps(sub.to_dict(), indent=2, sort_keys=True)
