"""KFP component: log, register and gate the candidate in MLflow
(thin wrapper over ``components.registry.register``)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    classical_model: Input[Model],
    mlflow_tracking_uri: str,
    registered_model_name: str,
    experiment_name: str,
    quantum_enabled: bool,
    quantum_backend: str,
    quantum_image: str,
    promotion_metric: str,
    promotion_threshold: float,
    max_regression: float,
    git_commit: str,
    kfp_job_name: str,
    kfp_job_id: str,
    kfp_task_name: str,
    decision: Output[Markdown],
    quantum_model: Input[Model] = None,
) -> str:
    """Publish one MLflow run with lineage, register the candidate (the quantum model when
    present), set ``challenger`` and move ``champion`` only if the gate passes. Returns the
    run summary as JSON."""
    import json
    from pathlib import Path

    from components.registry.register import RegisterOptions
    from components.registry.register import register_model as register
    from components.runtime import task

    with task("register-model"):
        options = RegisterOptions(
            mlflow_tracking_uri=mlflow_tracking_uri, registered_model_name=registered_model_name,
            experiment_name=experiment_name, quantum_enabled=quantum_enabled,
            quantum_backend=quantum_backend, promotion_metric=promotion_metric,
            promotion_threshold=promotion_threshold, max_regression=max_regression,
            git_commit=git_commit, kfp_job_name=kfp_job_name, kfp_job_id=kfp_job_id,
            kfp_task_name=kfp_task_name)
        data_options = json.loads(Path(data_lineage.path).read_text())["options"]
        params = {**data_options, "quantum_enabled": quantum_enabled,
                  "quantum_backend": quantum_backend, "quantum_image": quantum_image,
                  "registered_model_name": registered_model_name,
                  "experiment_name": experiment_name, "promotion_metric": promotion_metric,
                  "promotion_threshold": promotion_threshold, "max_regression": max_regression}
        result = register(
            options, train_path=train_data.path, test_path=test_data.path,
            preprocessor_path=preprocessor.path, lineage_path=data_lineage.path,
            baseline_dir=classical_model.path,
            quantum_dir=quantum_model.path if quantum_model is not None else None,
            params=params)
        Path(decision.path).write_text(result.decision.to_markdown())
        decision.metadata.update({"outcome": result.decision.outcome,
                                  "model_version": result.version})
        return json.dumps(result.to_dict())
