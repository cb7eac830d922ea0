"""KFP component: the quantum step (thin wrapper over ``components.training.train``).

Its container image is a pipeline parameter, so the backend family's image can be swapped
without recompiling.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.images import QUANTUM_IMAGE


@dsl.component(base_image=QUANTUM_IMAGE, install_kfp_package=False)
def train_quantum_model(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    feature_map: str,
    reps: int,
    entanglement: str,
    quantum_backend: str,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
):
    """SVC on the fidelity quantum kernel of a feature map evaluated on ``quantum_backend``."""
    from components.data.prepare import load_prepared
    from components.runtime import task
    from components.training.train import QuantumOptions, train_quantum, write_kfp_outputs

    with task("train-quantum-model"):
        split, pre, _ = load_prepared(train_data.path, test_data.path, preprocessor.path,
                                      data_lineage.path)
        options = QuantumOptions(feature_map=feature_map, reps=reps, entanglement=entanglement,
                                 backend=quantum_backend, seed=seed)
        bundle = train_quantum(split, pre, model.path, options)
        model.metadata.update({"kind": "quantum", "backend": quantum_backend,
                               **bundle.info.evaluation.metrics})
        write_kfp_outputs(bundle, metrics, classification_metrics, report)
