"""The registry step: read the prepared data and the trained bundles, publish to MLflow,
and return the summary the CLI prints (and ``--json`` emits).

:func:`~components.steps.register_model.crash.quantum_crash_reason` and ``crash_reason`` cover the run whose quantum *task* died
(pod OOM-killed, evicted, node lost) rather than its backend: the classical baseline is
registered, tagged ``quantum.fallback=true`` with reason ``task_crashed: ...``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from components.data.prepared import load_prepared
from components.data.sources import DatasetSource
from components.data.validation import DataProfile
from components.errors import ConfigError
from components.registry import lineage
from components.registry import mlflow_names as names
from components.registry.policy import PromotionPolicy, parse_policy
from components.registry.publish import PublishRequest, PublishResult, publish
from components.training.bundle import load_bundle
from components.training.quantum_outcome import load_outcome


@dataclass(frozen=True)
class RegisterOptions:
    mlflow_tracking_uri: str
    registered_model_name: str = names.DEFAULT_MODEL_NAME
    experiment_name: str = names.DEFAULT_EXPERIMENT
    quantum_enabled: bool = True
    quantum_backend: str = "statevector"
    #: The validated policy (normalised JSON from the check-promotion-policy step).
    policy_json: str = "{}"
    git_commit: str = ""
    kfp_job_name: str = ""
    kfp_job_id: str = ""
    kfp_task_name: str = ""

    def tracking_uri(self) -> str:
        uri = self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri:
            raise ConfigError(
                "is empty and MLFLOW_TRACKING_URI is not set", field="mlflow_tracking_uri"
            )
        return uri

    def policy(self) -> PromotionPolicy:
        import json

        return parse_policy(json.loads(self.policy_json), origin="policy artifact")


def register_model(
    options: RegisterOptions,
    *,
    train_path: str,
    test_path: str,
    preprocessor_path: str,
    lineage_path: str,
    baseline_dir: str,
    quantum_dir: str | None,
    params: dict[str, Any],
    crash_reason: str | None = None,
) -> PublishResult:
    """Publish the run; the candidate is chosen by the policy from the quantum model (when the
    step ran and did not fall back) and the classical baseline. ``crash_reason``: the quantum
    task died (no ``quantum_dir``): the baseline is registered as a fallback with that
    reason."""
    if not options.registered_model_name.strip():
        raise ConfigError("is empty", field="registered_model_name")
    policy = options.policy()
    tracking_uri = options.tracking_uri()
    split, _, data_lineage = load_prepared(train_path, test_path, preprocessor_path, lineage_path)
    baseline = load_bundle(baseline_dir)
    outcome = load_outcome(quantum_dir) if quantum_dir else None
    quantum = outcome.bundle if outcome is not None else None
    if outcome is not None:
        params = {**params, **outcome.settings}
    profile = DataProfile(**data_lineage["profile"])
    lineage_tags = {names.TAG_GIT_COMMIT: options.git_commit or lineage.git_commit()}
    for tag, value in (
        (names.TAG_KFP_JOB_NAME, options.kfp_job_name),
        (names.TAG_KFP_JOB_ID, options.kfp_job_id),
        (names.TAG_KFP_TASK, options.kfp_task_name),
    ):
        if value:
            lineage_tags[tag] = value
    if outcome is not None and outcome.method:
        lineage_tags[names.TAG_QUANTUM_METHOD] = str(outcome.method["method"])
        lineage_tags[names.TAG_QUANTUM_METHOD_REASON] = str(outcome.method["reason"])[:4900]
        if outcome.method.get("landmarks"):
            lineage_tags[names.TAG_QUANTUM_LANDMARKS] = str(outcome.method["landmarks"])
    req = PublishRequest(
        model_name=options.registered_model_name.strip(),
        baseline=baseline,
        quantum=quantum,
        quantum_enabled=options.quantum_enabled,
        quantum_backend=options.quantum_backend,
        dataset=DatasetSource(**data_lineage["source"]),
        train=split.train,
        test=split.test,
        label_column=split.label_column,
        policy=policy,
        params=params,
        lineage_tags=lineage_tags,
        profile_markdown=profile.to_markdown(),
        experiment=options.experiment_name or names.DEFAULT_EXPERIMENT,
        fallback=bool(outcome and outcome.fallback) or crash_reason is not None,
        fallback_reason=outcome.reason if outcome is not None else crash_reason,
        calibration=outcome.calibration if outcome is not None else None,
    )
    return publish(req, tracking_uri)


def registry_params(
    lineage_path: str,
    options: RegisterOptions,
    *,
    quantum_image: str,
) -> dict[str, Any]:
    """The run's MLflow params: the data step's options and the registry step's settings."""
    import json
    from pathlib import Path

    policy = options.policy()
    return {
        **json.loads(Path(lineage_path).read_text())["options"],
        "quantum_enabled": options.quantum_enabled,
        "quantum_backend": options.quantum_backend,
        "quantum_image": quantum_image,
        "registered_model_name": options.registered_model_name,
        "experiment_name": options.experiment_name,
        "promotion_policy_hash": policy.hash,
        "promotion_mode": policy.mode,
    }
