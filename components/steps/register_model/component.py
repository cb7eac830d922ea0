"""KFP component: log, register and gate the candidate in MLflow (thin wrapper over
:mod:`components.steps.register_model.step`)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

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
    from components.steps.register_model.step import RegisterOptions
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
        policy = options.policy()
        data_options = json.loads(Path(data_lineage.path).read_text())["options"]
        params = {
            **data_options,
            "quantum_enabled": quantum_enabled,
            "quantum_backend": quantum_backend,
            "quantum_image": quantum_image,
            "registered_model_name": registered_model_name,
            "experiment_name": experiment_name,
            "promotion_policy_hash": policy.hash,
            "promotion_mode": policy.mode,
        }
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
