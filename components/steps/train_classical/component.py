"""KFP component: the classical baseline (thin wrapper over ``components.steps.train_classical.step``)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image_refs import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_classical_model(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    seed: int,
    exact_max_rows: int,
    nystroem_landmarks: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
):
    """The classical baseline on the same split and features: an RBF SVC with a small CV grid
    up to ``exact_max_rows`` train rows, Nyström-RBF features with a linear model above."""
    from components.data.prepared import load_prepared
    from components.runtime import task
    from components.steps.outputs import write_kfp_outputs
    from components.steps.train_classical.step import train_classical

    with task("train-classical-model"):
        split, pre, _ = load_prepared(
            train_data.path, test_data.path, preprocessor.path, data_lineage.path
        )
        bundle = train_classical(
            split,
            pre,
            model.path,
            seed=seed,
            exact_max_rows=exact_max_rows,
            landmarks=nystroem_landmarks,
        )
        model.metadata.update({"kind": "classical", **bundle.info.evaluation.metrics})
        write_kfp_outputs(bundle, metrics, classification_metrics, report)
