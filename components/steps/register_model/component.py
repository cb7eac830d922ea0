"""KFP components: log, register and gate the candidate in MLflow (thin wrappers over
:mod:`components.steps.register_model.step`).

``register_model`` runs after the quantum step (or without it); ``register_after_quantum_crash``
runs after the quantum *task* whatever its outcome (``.ignore_upstream_failure()``), and
registers the classical baseline only when that task failed (pod OOM-killed, evicted, node
lost): KFP then skips ``register_model``, whose quantum input was never written.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output, PipelineTaskFinalStatus

from components.image_refs import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    classical_model: Input[Model],
    promotion_policy: Input[Artifact],
    mlflow_tracking_uri: str,
    registered_model_name: str,
    experiment_name: str,
    quantum_enabled: bool,
    quantum_backend: str,
    quantum_image: str,
    git_commit: str,
    kfp_job_name: str,
    kfp_job_id: str,
    kfp_task_name: str,
    decision: Output[Markdown],
    quantum_model: Input[Model] = None,
) -> str:
    """Publish one MLflow run with lineage, register the candidate the policy chooses, and
    let the gate decide (aliases move only in mode ``enabled``). The decision's rule table is
    the ``decision`` Markdown output. Returns the run summary as JSON."""
    import json
    from pathlib import Path

    from components.runtime import task
    from components.steps.register_model.step import RegisterOptions, registry_params
    from components.steps.register_model.step import register_model as register

    with task("register-model"):
        policy_json = Path(promotion_policy.path).read_text()
        options = RegisterOptions(
            mlflow_tracking_uri=mlflow_tracking_uri,
            registered_model_name=registered_model_name,
            experiment_name=experiment_name,
            quantum_enabled=quantum_enabled,
            quantum_backend=quantum_backend,
            policy_json=policy_json,
            git_commit=git_commit,
            kfp_job_name=kfp_job_name,
            kfp_job_id=kfp_job_id,
            kfp_task_name=kfp_task_name,
        )
        params = registry_params(data_lineage.path, options, quantum_image=quantum_image)
        result = register(
            options,
            train_path=train_data.path,
            test_path=test_data.path,
            preprocessor_path=preprocessor.path,
            lineage_path=data_lineage.path,
            baseline_dir=classical_model.path,
            quantum_dir=quantum_model.path if quantum_model is not None else None,
            params=params,
        )
        Path(decision.path).write_text(result.decision.to_markdown())
        decision.metadata.update(
            {
                "outcome": result.decision.outcome,
                "mode": result.decision.mode,
                "applied": result.decision.applied,
                "model_version": result.version,
            }
        )
        return json.dumps(result.to_dict())


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_after_quantum_crash(
    quantum_task: PipelineTaskFinalStatus,
    mlflow_tracking_uri: str,
    registered_model_name: str,
    experiment_name: str,
    quantum_enabled: bool,
    quantum_backend: str,
    quantum_image: str,
    quantum_fallback: str,
    git_commit: str,
    kfp_job_name: str,
    kfp_job_id: str,
    kfp_task_name: str,
    decision: Output[Markdown],
    # optional only because KFP requires it of a task that runs after a failed upstream task
    train_data: Input[Dataset] = None,
    test_data: Input[Dataset] = None,
    preprocessor: Input[Model] = None,
    data_lineage: Input[Artifact] = None,
    classical_model: Input[Model] = None,
    promotion_policy: Input[Artifact] = None,
) -> str:
    """When the quantum task failed (its pod died), register the classical baseline tagged
    ``quantum.fallback=true`` with reason ``task_crashed: ...``, through the same gate;
    otherwise do nothing. Returns the run summary as JSON, or "" when nothing was needed."""
    import json
    from pathlib import Path

    from components.runtime import task
    from components.steps.register_model.crash import quantum_crash_reason

    with task("register-after-quantum-crash") as log:
        reason = quantum_crash_reason(
            quantum_task.state,
            quantum_task.pipeline_task_name,
            quantum_task.error_message,
            fallback=quantum_fallback,
        )
        if reason is None:
            log.info(
                "quantum task %s ended %s (quantum_fallback=%s): nothing to register here",
                quantum_task.pipeline_task_name,
                quantum_task.state,
                quantum_fallback,
            )
            Path(decision.path).write_text(
                f"Quantum task ended {quantum_task.state}: no crash fallback.\n"
            )
            return ""
        log.warning("%s", reason)
        from components.errors import ConfigError
        from components.steps.register_model.step import RegisterOptions, registry_params
        from components.steps.register_model.step import register_model as register

        inputs = {
            "train_data": train_data,
            "test_data": test_data,
            "preprocessor": preprocessor,
            "data_lineage": data_lineage,
            "classical_model": classical_model,
            "promotion_policy": promotion_policy,
        }
        missing = sorted(k for k, v in inputs.items() if v is None)
        if missing:
            raise ConfigError(f"inputs {missing} were not produced", field="classical_model")
        options = RegisterOptions(
            mlflow_tracking_uri=mlflow_tracking_uri,
            registered_model_name=registered_model_name,
            experiment_name=experiment_name,
            quantum_enabled=quantum_enabled,
            quantum_backend=quantum_backend,
            policy_json=Path(promotion_policy.path).read_text(),
            git_commit=git_commit,
            kfp_job_name=kfp_job_name,
            kfp_job_id=kfp_job_id,
            kfp_task_name=kfp_task_name,
        )
        result = register(
            options,
            train_path=train_data.path,
            test_path=test_data.path,
            preprocessor_path=preprocessor.path,
            lineage_path=data_lineage.path,
            baseline_dir=classical_model.path,
            quantum_dir=None,
            params=registry_params(data_lineage.path, options, quantum_image=quantum_image),
            crash_reason=reason,
        )
        Path(decision.path).write_text(result.decision.to_markdown())
        decision.metadata.update(
            {
                "outcome": result.decision.outcome,
                "mode": result.decision.mode,
                "applied": result.decision.applied,
                "model_version": result.version,
                "fallback_reason": reason,
            }
        )
        return json.dumps(result.to_dict())
