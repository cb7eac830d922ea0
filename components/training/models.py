"""Training: an SVC on the quantum fidelity kernel, and the classical baseline on the same split.

Both return a :class:`TrainedModel` whose ``model`` is a complete inference pipeline from
raw feature rows (preprocessing, [quantum kernel,] classifier), evaluated on the held-out
split through exactly that object, so what is registered is what was measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from components.data.preprocessing import Split
from components.data.validation import CV_FOLDS
from components.training.metrics import Evaluation, evaluate_classifier

if TYPE_CHECKING:
    from components.quantum.backends import QuantumBackend

log = logging.getLogger(__name__)

QUANTUM_C_GRID = (0.1, 1.0, 10.0, 100.0)
CLASSICAL_GRID = {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.1, 1.0]}
CV_SCORING = "balanced_accuracy"
#: What a registered quantum model predicts with when it was trained on a shot-based backend.
SERVING_BACKEND = "statevector"


@dataclass
class TrainedModel:
    kind: str  # "quantum" | "classical"
    model: Pipeline
    evaluation: Evaluation
    params: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    gram: np.ndarray | None = None  # train Gram matrix (quantum only), for the heatmap
    y_train: np.ndarray | None = None


def _cv(seed: int) -> StratifiedKFold:
    return StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)


def fit_quantum_kernel_model(split: Split, preprocessor: Pipeline, *, feature_map: str = "zz",
                             reps: int = 2, entanglement: str = "linear", rotation: str = "y",
                             backend: str = "statevector", seed: int = 0,
                             backend_instance: QuantumBackend | None = None,
                             precomputed: tuple[np.ndarray, np.ndarray] | None = None,
                             ) -> TrainedModel:
    """Quantum-kernel SVC: Gram once, small CV grid over C on it, then the full pipeline.

    ``backend_instance`` (built by the caller with its budget) evaluates the train Gram and
    the test kernel. A shot-based backend cannot serve predictions (it would call a device or a
    noisy simulator per request), so the returned model then predicts with the exact
    ``SERVING_BACKEND`` simulation of the same feature map; ``params["serving_backend"]`` says
    which backend the registered model uses. ``precomputed`` = (train Gram, test kernel), e.g.
    assembled from tiles computed by parallel pipeline tasks, replaces both evaluations.
    """
    from components.quantum.transformers import QuantumKernelTransformer

    t0 = time.perf_counter()
    x_train, y_train = split.xy("train")
    angles = preprocessor.transform(x_train)
    kernel = QuantumKernelTransformer(feature_map=feature_map, reps=reps,
                                      entanglement=entanglement, rotation=rotation,
                                      backend=backend)
    kernel.bind_backend(backend_instance)
    log.info("quantum kernel: %d train rows, %d qubits, backend %s", len(angles),
             angles.shape[1], backend)
    if precomputed is None:
        gram = kernel.fit_transform(angles)
    else:
        gram = kernel.fit(angles) and precomputed[0]
        if gram.shape != (len(angles), len(angles)):
            raise ValueError(f"precomputed Gram has shape {gram.shape}, expected "
                             f"{(len(angles), len(angles))}")
    grid = GridSearchCV(SVC(kernel="precomputed", random_state=seed), {"C": list(QUANTUM_C_GRID)},
                        cv=_cv(seed), scoring=CV_SCORING)
    grid.fit(gram, y_train)
    model = Pipeline([("preprocess", preprocessor), ("quantum_kernel", kernel),
                      ("classifier", grid.best_estimator_)])
    x_test, y_test = split.xy("test")
    # model[:-1] then model[-1] is exactly model.predict/decision_function, with the test
    # kernel evaluated once (on a device, every evaluation costs circuits).
    test_kernel = model[:-1].transform(x_test) if precomputed is None else precomputed[1]
    evaluation = evaluate_classifier(model[-1], test_kernel, y_test)
    seconds = time.perf_counter() - t0
    log.info("quantum model: C=%s, test %s, %.2f s", grid.best_params_["C"],
             {k: round(v, 4) for k, v in evaluation.metrics.items()}, seconds)
    kernel.bind_backend(None)
    serving = backend
    if backend_instance is not None and not backend_instance.exact:
        serving = SERVING_BACKEND
        kernel.set_params(backend=serving)
    return TrainedModel("quantum", model, evaluation,
                        params={"C": grid.best_params_["C"], "cv_score": float(grid.best_score_),
                                "serving_backend": serving},
                        train_seconds=seconds, gram=gram, y_train=np.asarray(y_train))


def fit_classical_baseline(split: Split, preprocessor: Pipeline, *, seed: int = 0) -> TrainedModel:
    """RBF-kernel SVC with a small CV grid, on the same split and the same preprocessed features."""
    t0 = time.perf_counter()
    x_train, y_train = split.xy("train")
    grid = GridSearchCV(SVC(kernel="rbf", random_state=seed), CLASSICAL_GRID, cv=_cv(seed),
                        scoring=CV_SCORING)
    grid.fit(preprocessor.transform(x_train), y_train)
    model = Pipeline([("preprocess", preprocessor), ("classifier", grid.best_estimator_)])
    x_test, y_test = split.xy("test")
    evaluation = evaluate_classifier(model, x_test, y_test)
    seconds = time.perf_counter() - t0
    log.info("classical baseline: %s, test %s, %.2f s", grid.best_params_,
             {k: round(v, 4) for k, v in evaluation.metrics.items()}, seconds)
    return TrainedModel("classical", model, evaluation,
                        params={**grid.best_params_, "cv_score": float(grid.best_score_)},
                        train_seconds=seconds)
