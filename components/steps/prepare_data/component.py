"""KFP component: data prep (thin wrapper over ``components.steps.prepare_data.step``)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Markdown, Metrics, Model, Output

from components.image_refs import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def prepare_data(
    dataset: str,
    label_column: str,
    n_qubits: int,
    feature_map: str,
    reps: int,
    entanglement: str,
    bandwidth: float,
    test_size: float,
    min_samples_per_class: int,
    impute: str,
    seed: int,
    quantum_method: str,
    nystroem_landmarks: int,
    exact_max_rows: int,
    classical_max_seconds: float,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    preprocessor: Output[Model],
    data_lineage: Output[Artifact],
    data_profile: Output[Markdown],
    data_summary: Output[Metrics],
):
    """Load a CSV/Parquet file, an s3:// object or a built-in dataset; validate, split,
    scale and reduce it to ``n_qubits`` angles (preprocessing fitted on train only). Refuses
    a plan whose classical baseline is estimated over ``classical_max_seconds``."""
    from pathlib import Path

    from components.runtime import task
    from components.steps.prepare_data.step import PrepareOptions, prepare_dataset

    with task("prepare-data"):
        options = PrepareOptions(
            dataset=dataset,
            label_column=label_column,
            n_qubits=n_qubits,
            feature_map=feature_map,
            reps=reps,
            entanglement=entanglement,
            bandwidth=bandwidth,
            test_size=test_size,
            min_samples_per_class=min_samples_per_class,
            impute=impute,
            seed=seed,
            quantum_method=quantum_method,
            nystroem_landmarks=nystroem_landmarks,
            exact_max_rows=exact_max_rows,
            classical_max_seconds=classical_max_seconds,
        )
        data = prepare_dataset(
            options,
            train_path=train_data.path,
            test_path=test_data.path,
            preprocessor_path=preprocessor.path,
            lineage_path=data_lineage.path,
        )
        train_data.metadata.update(
            {"rows": len(data.split.train), "format": "parquet", "source": data.source.uri}
        )
        test_data.metadata.update(
            {"rows": len(data.split.test), "format": "parquet", "source": data.source.uri}
        )
        preprocessor.metadata.update(
            {"framework": "scikit-learn", "steps": [s for s, _ in data.preprocessor.steps]}
        )
        Path(data_profile.path).write_text(data.profile.to_markdown())
        data_summary.log_metric("rows", data.profile.n_rows)
        data_summary.log_metric("features", data.profile.n_features)
        data_summary.log_metric("train_rows", len(data.split.train))
        data_summary.log_metric("test_rows", len(data.split.test))
        data_summary.log_metric("baseline_estimate_seconds", data.baseline.seconds)
