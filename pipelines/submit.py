"""Submit the retraining pipeline to a Kubeflow Pipelines cluster through ``kfp.Client``.

``qubeflow submit --host URL`` compiles the pipeline (or takes ``--package``), validates the
parameters once, and creates a run (or, with ``--recurring CRON``, a recurring run) in an
experiment. Auth uses the usual KFP client options, from the environment only:
``KFP_TOKEN`` (a bearer token), ``KFP_COOKIES`` (e.g. an auth-session cookie), or, inside a
cluster, the projected service-account token KFP reads from ``KF_PIPELINES_SA_TOKEN_PATH``.
Nothing secret is ever a parameter: the pods get credentials from Kubernetes Secrets.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.errors import ConfigError
from pipelines.config import PipelineConfig

DEFAULT_EXPERIMENT = "qubeflow-retraining"
TOKEN_ENV = "KFP_TOKEN"
COOKIES_ENV = "KFP_COOKIES"
#: In a cluster: a projected service-account token for audience pipelines.kubeflow.org.
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"


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
    auth: list[str] = field(default_factory=list)  # which options are in use, never values

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "experiment": self.experiment,
            "run_name": self.run_name,
            "recurring": self.recurring,
            "namespace": self.namespace,
            "package": self.package_path,
            "images": self.images,
            "auth": self.auth,
            "arguments": self.arguments,
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
) -> Submission:
    """Validate ``config`` and compile (unless ``package`` is given): what would be sent."""
    from components.image_refs import BASE_IMAGE
    from pipelines.retraining import compile_pipeline

    if not host.strip():
        raise ConfigError(
            "is empty (the KFP API endpoint, e.g. http://ml-pipeline.kubeflow:8888)", field="--host"
        )
    from components.registry.lineage import git_commit

    config = config.replace(git_commit=config.git_commit or git_commit(Path.cwd())).validate()
    if package:
        if not Path(package).is_file():
            raise ConfigError(f"{package!r} does not exist", field="--package")
        path = Path(package)
    else:
        path = compile_pipeline(out_dir or tempfile.mkdtemp(prefix="qubeflow-submit-"))
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
        auth=auth,
    )


def submit(sub: Submission) -> dict[str, str]:
    """Create the run or recurring run; returns their ids."""
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
        )
        return {"experiment_id": experiment.experiment_id, "recurring_run_id": job.recurring_run_id}
    result = client.create_run_from_pipeline_package(
        sub.package_path,
        arguments=sub.arguments,
        run_name=sub.run_name,
        experiment_name=sub.experiment,
        namespace=sub.namespace,
    )
    return {"run_id": result.run_id}


def describe(sub: Submission) -> str:
    return json.dumps(sub.to_dict(), indent=2, sort_keys=True)
