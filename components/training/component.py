"""KFP component: the classical baseline (thin wrapper over ``components.training.train``)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_classical_model(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
):
    """RBF-kernel SVC with a small cross-validated grid, on the same split and features."""
    from components.data.prepare import load_prepared
    from components.runtime import task
    from components.training.train import train_classical, write_kfp_outputs

    with task("train-classical-model"):
        split, pre, _ = load_prepared(train_data.path, test_data.path, preprocessor.path,
                                      data_lineage.path)
        bundle = train_classical(split, pre, model.path, seed=seed)
        model.metadata.update({"kind": "classical", **bundle.info.evaluation.metrics})
        write_kfp_outputs(bundle, metrics, classification_metrics, report)
