"""KFP component: the quantum step (thin wrapper over
``components.steps.train_quantum.step.run_quantum_step``).

Its container image is a pipeline parameter, so the backend family's image can be swapped
without recompiling. When the backend fails, times out or is over budget, the step still
succeeds (unless ``quantum_fallback="fail"``): its ``model`` output then carries the failure
reason and the calibration snapshot, and the registry step registers the classical baseline
with ``quantum.fallback=true``.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image_refs import QUANTUM_IMAGE


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
    quantum_fallback: str,
    quantum_max_shots: int,
    quantum_max_circuits: int,
    quantum_max_seconds: float,
    quantum_max_retries: int,
    quantum_max_memory_mb: float,
    quantum_method: str,
    nystroem_landmarks: int,
    exact_max_rows: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    precomputed_kernel: Input[Artifact] = None,
):
    """The quantum model (``quantum_method``: fidelity-kernel SVC, Nyström or projected
    features with a linear head; ``auto`` picks by data size, backend and budget) on
    ``quantum_backend``, within the budget; falls back to the classical path (and says why)
    when it cannot."""
    params = dict(locals())  # the pipeline parameters this step received, by name
    from components.data.prepared import load_prepared
    from components.quantum.tiles import load_kernel
    from components.runtime import task
    from components.steps.outputs import write_fallback_outputs, write_kfp_outputs
    from components.steps.train_quantum.step import (
        OPTION_PARAMETERS,
        quantum_options,
        run_quantum_step,
    )

    with task("train-quantum-model"):
        split, pre, _ = load_prepared(
            train_data.path, test_data.path, preprocessor.path, data_lineage.path
        )
        options = quantum_options(**{k: params[k] for k in OPTION_PARAMETERS})
        outcome = run_quantum_step(
            split,
            pre,
            model.path,
            options,
            precomputed=load_kernel(precomputed_kernel.path if precomputed_kernel else None),
        )
        method = outcome.method or {}
        model.metadata.update(
            {
                "kind": "quantum",
                "backend": quantum_backend,
                "method": method.get("method", ""),
                "method_reason": method.get("reason", ""),
                "fallback": outcome.fallback,
                "fallback_reason": outcome.reason or "",
                "calibration_hash": (outcome.calibration or {}).get("calibration_hash", ""),
            }
        )
        if outcome.bundle is not None:
            model.metadata.update(outcome.bundle.info.evaluation.metrics)
            write_kfp_outputs(
                outcome.bundle, metrics, classification_metrics, report, outcome.calibration
            )
        else:
            write_fallback_outputs(outcome, metrics, report)
