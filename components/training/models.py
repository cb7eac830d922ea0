"""Training: the quantum model (by method) and the classical baseline on the same split.

Every trainer returns a :class:`TrainedModel` whose ``model`` is a complete inference
pipeline from raw feature rows (preprocessing, [quantum features,] classifier), evaluated on
the held-out split through exactly that object, so what is registered is what was measured.

Both sides scale the same way, so the comparison stays like for like:

=====================  ==========================================  =========================
train rows             quantum (``quantum_method``)                classical baseline
=====================  ==========================================  =========================
<= ``exact_max_rows``  ``fidelity``: SVC on the exact Gram         RBF SVC, CV grid
> ``exact_max_rows``   ``nystroem``: linear model on Nyström        linear model on Nyström
                       features of the fidelity kernel              features of the RBF kernel
any                    ``projected``: ⟨X⟩,⟨Y⟩,⟨Z⟩ features, then   (same head as the
                       the baseline's head on them                  baseline at that size)
=====================  ==========================================  =========================

The linear model is a logistic regression whose ``C`` is chosen by the same 3-fold CV on a
stratified sample of at most ``CV_MAX_ROWS`` rows, then refitted on every row.
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

from components.data.split import Split
from components.data.validation import CV_FOLDS
from components.training.grids import (
    CLASSICAL_GRID,
    CV_MAX_ROWS,
    CV_SCORING,
    LINEAR_C_GRID,
    QUANTUM_C_GRID,
)
from components.training.metrics import Evaluation, evaluate_classifier

if TYPE_CHECKING:
    from components.quantum.backends import QuantumBackend

log = logging.getLogger(__name__)


#: What a registered quantum model predicts with when it was trained on a shot-based backend:
#: the exact dense simulation up to ``MAX_QUBITS`` qubits, the exact MPS engine above.
SERVING_BACKEND = "statevector"
SERVING_BACKEND_WIDE = "mps"


def serving_backend(n_qubits: int) -> str:
    """The exact backend a model trained on a shot-based backend serves with (width-aware)."""
    from components.feature_maps import MAX_QUBITS

    return SERVING_BACKEND if n_qubits <= MAX_QUBITS else SERVING_BACKEND_WIDE


@dataclass
class TrainedModel:
    kind: str  # "quantum" | "classical"
    model: Pipeline
    evaluation: Evaluation
    params: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    gram: np.ndarray | None = None  # train Gram matrix (quantum only), for the heatmap
    y_train: np.ndarray | None = None
    #: Shot-based backends only: the measured kernel (or features) against the exact
    #: simulation the model serves with (``components.quantum.agreement``).
    agreement: dict[str, float] = field(default_factory=dict)


def _cv(seed: int) -> StratifiedKFold:
    return StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)


def fit_quantum_kernel_model(
    split: Split,
    preprocessor: Pipeline,
    *,
    feature_map: str = "zz",
    reps: int = 2,
    entanglement: str = "linear",
    rotation: str = "y",
    backend: str = "statevector",
    seed: int = 0,
    backend_instance: QuantumBackend | None = None,
    precomputed: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainedModel:
    """Quantum-kernel SVC: Gram once, small CV grid over C on it, then the full pipeline.

    ``backend_instance`` (built by the caller with its budget) evaluates the train Gram and
    the test kernel. A shot-based backend cannot serve predictions (it would call a device or a
    noisy simulator per request), so the returned model then predicts with the exact
    ``serving_backend(n_qubits)`` simulation of the same feature map; ``params["serving_backend"]`` says
    which backend the registered model uses. ``precomputed`` = (train Gram, test kernel), e.g.
    assembled from tiles computed by parallel pipeline tasks, replaces both evaluations.
    """
    from components.quantum.transformers import QuantumKernelTransformer

    t0 = time.perf_counter()
    x_train, y_train = split.xy("train")
    angles = preprocessor.transform(x_train)
    kernel = QuantumKernelTransformer(
        feature_map=feature_map,
        reps=reps,
        entanglement=entanglement,
        rotation=rotation,
        backend=backend,
    )
    kernel.bind_backend(backend_instance)
    log.info(
        "quantum kernel: %d train rows, %d qubits, backend %s",
        len(angles),
        angles.shape[1],
        backend,
    )
    if precomputed is None:
        gram = kernel.fit_transform(angles)
    else:
        gram = kernel.fit(angles) and precomputed[0]
        if gram.shape != (len(angles), len(angles)):
            raise ValueError(
                f"precomputed Gram has shape {gram.shape}, expected {(len(angles), len(angles))}"
            )
    grid = GridSearchCV(
        SVC(kernel="precomputed", random_state=seed),
        {"C": list(QUANTUM_C_GRID)},
        cv=_cv(seed),
        scoring=CV_SCORING,
    )
    grid.fit(gram, y_train)
    model = Pipeline(
        [
            ("preprocess", preprocessor),
            ("quantum_kernel", kernel),
            ("classifier", grid.best_estimator_),
        ]
    )
    x_test, y_test = split.xy("test")
    # model[:-1] then model[-1] is exactly model.predict/decision_function, with the test
    # kernel evaluated once (on a device, every evaluation costs circuits).
    test_kernel = model[:-1].transform(x_test) if precomputed is None else precomputed[1]
    evaluation = evaluate_classifier(model[-1], test_kernel, y_test)
    seconds = time.perf_counter() - t0
    log.info(
        "quantum model: C=%s, test %s, %.2f s",
        grid.best_params_["C"],
        {k: round(v, 4) for k, v in evaluation.metrics.items()},
        seconds,
    )
    kernel.bind_backend(None)
    serving, agreement = backend, {}
    if backend_instance is not None and not backend_instance.exact:
        from components.quantum.agreement import gram_agreement

        serving = serving_backend(angles.shape[1])
        kernel.set_params(backend=serving)
        fmap = kernel.feature_map_for(angles.shape[1])
        from components.quantum.backends import get_backend

        exact = get_backend(serving)
        agreement = gram_agreement(gram, angles, lambda r: exact.kernel(fmap, r), seed=seed)
        log.info("device kernel vs. exact %s: %s", serving, _rounded(agreement))
    return TrainedModel(
        "quantum",
        model,
        evaluation,
        params={
            "C": grid.best_params_["C"],
            "cv_score": float(grid.best_score_),
            "serving_backend": serving,
        },
        train_seconds=seconds,
        gram=gram,
        y_train=np.asarray(y_train),
        agreement=agreement,
    )


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in values.items()}


def fit_linear_head(features: np.ndarray, y: np.ndarray, *, seed: int) -> tuple[Any, dict]:
    """Standardised logistic regression on (Nyström or projected) features: C by 3-fold CV
    on a stratified sample of at most ``CV_MAX_ROWS`` rows, then one fit on every row.

    The features are standardised first (raw Nyström features are badly scaled: L-BFGS then
    needs hundreds of iterations and CV drifts to the grid's edge), and the CV's many small
    fits run on one BLAS thread (two threads spin against each other on a busy machine); the
    final fit on all rows keeps BLAS's threads."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def head(c: float = 1.0) -> Pipeline:
        return Pipeline(
            [("scale", StandardScaler()), ("logistic", LogisticRegression(max_iter=2000, C=c))]
        )

    y = np.asarray(y)
    sample = np.arange(len(y))
    if len(y) > CV_MAX_ROWS:
        from sklearn.model_selection import train_test_split

        sample, _ = train_test_split(sample, train_size=CV_MAX_ROWS, stratify=y, random_state=seed)
    grid = GridSearchCV(
        head(), {"logistic__C": list(LINEAR_C_GRID)}, cv=_cv(seed), scoring=CV_SCORING, refit=False
    )
    with threadpool_limits(1, user_api="blas"):
        grid.fit(features[sample], y[sample])
    best_c = grid.best_params_["logistic__C"]
    return head(best_c).fit(features, y), {
        "C": best_c,
        "cv_score": float(grid.best_score_),
        "cv_rows": len(sample),
    }


def fit_rbf_svc_grid(x: np.ndarray, y: Any, *, seed: int) -> GridSearchCV:
    """The baseline's RBF SVC with its CV grid over C and gamma, fitted."""
    grid = GridSearchCV(
        SVC(kernel="rbf", random_state=seed), CLASSICAL_GRID, cv=_cv(seed), scoring=CV_SCORING
    )
    return grid.fit(x, y)


def rbf_scale_gamma(x: np.ndarray) -> float:
    """scikit-learn's ``gamma="scale"``: 1 / (n_features · Var(X))."""
    var = float(np.asarray(x, dtype=np.float64).var())
    return 1.0 / (x.shape[1] * var) if var > 0 else 1.0


def fit_classical_baseline(
    split: Split, preprocessor: Pipeline, *, seed: int, exact_max_rows: int, landmarks: int
) -> TrainedModel:
    """The classical baseline on the same split and preprocessed features: an RBF SVC with a
    small CV grid up to ``exact_max_rows`` train rows, above it the same linear model as the
    quantum Nyström method on Nyström features of the RBF kernel (O(N·m), never N×N)."""
    t0 = time.perf_counter()
    x_train, y_train = split.xy("train")
    angles = preprocessor.transform(x_train)
    if len(angles) <= exact_max_rows:
        grid = fit_rbf_svc_grid(angles, y_train, seed=seed)
        model = Pipeline([("preprocess", preprocessor), ("classifier", grid.best_estimator_)])
        params = {**grid.best_params_, "cv_score": float(grid.best_score_), "method": "svc"}
    else:
        from sklearn.kernel_approximation import Nystroem

        m = min(landmarks, len(angles))
        gamma = rbf_scale_gamma(angles)
        features = Nystroem(kernel="rbf", gamma=gamma, n_components=m, random_state=seed)
        phi = features.fit_transform(angles)
        head, head_params = fit_linear_head(phi, np.asarray(y_train), seed=seed)
        model = Pipeline(
            [("preprocess", preprocessor), ("rbf_features", features), ("classifier", head)]
        )
        params = {**head_params, "gamma": gamma, "landmarks": m, "method": "nystroem"}
    x_test, y_test = split.xy("test")
    evaluation = evaluate_classifier(model, x_test, y_test)
    seconds = time.perf_counter() - t0
    log.info(
        "classical baseline (%s): %s, test %s, %.2f s",
        params["method"],
        params,
        {k: round(v, 4) for k, v in evaluation.metrics.items()},
        seconds,
    )
    return TrainedModel("classical", model, evaluation, params=params, train_seconds=seconds)


def fit_quantum_model(
    split: Split,
    preprocessor: Pipeline,
    *,
    method: str,
    landmarks: int,
    exact_max_rows: int,
    feature_map: str,
    reps: int,
    entanglement: str,
    backend: str,
    seed: int,
    backend_instance: QuantumBackend | None = None,
    precomputed: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainedModel:
    """The quantum model for a resolved ``method`` (``fidelity``, ``nystroem``, ``projected``).

    ``precomputed`` (train, test) comes from the pipeline's fan-out: the Gram and test kernel
    (fidelity), ``K(X, landmarks)`` blocks (nystroem) or the projected features (projected)."""
    fmap_kw = dict(feature_map=feature_map, reps=reps, entanglement=entanglement, backend=backend)
    if method == "fidelity":
        trained = fit_quantum_kernel_model(
            split,
            preprocessor,
            seed=seed,
            backend_instance=backend_instance,
            precomputed=precomputed,
            **fmap_kw,
        )
    elif method in ("nystroem", "projected"):
        trained = _fit_feature_model(
            split,
            preprocessor,
            method=method,
            landmarks=landmarks,
            exact_max_rows=exact_max_rows,
            seed=seed,
            backend_instance=backend_instance,
            precomputed=precomputed,
            **fmap_kw,
        )
    else:
        raise ValueError(f"unknown quantum method {method!r}")
    trained.params["method"] = method
    return trained


def _fit_feature_model(
    split: Split,
    preprocessor: Pipeline,
    *,
    method: str,
    landmarks: int,
    exact_max_rows: int,
    feature_map: str,
    reps: int,
    entanglement: str,
    backend: str,
    seed: int,
    backend_instance: QuantumBackend | None,
    precomputed: tuple[np.ndarray, np.ndarray] | None,
) -> TrainedModel:
    """Quantum features (Nyström or projected) then a classical head, as one pipeline."""
    from components.quantum.transformers import (
        NystroemQuantumFeatures,
        ProjectedQuantumFeatures,
    )

    t0 = time.perf_counter()
    x_train, y_train = split.xy("train")
    y_train = np.asarray(y_train)
    angles = preprocessor.transform(x_train)
    kw = dict(feature_map=feature_map, reps=reps, entanglement=entanglement, backend=backend)
    if method == "nystroem":
        quantum = NystroemQuantumFeatures(n_landmarks=landmarks, random_state=seed, **kw)
    else:
        quantum = ProjectedQuantumFeatures(**kw)
    quantum.bind_backend(backend_instance)
    log.info(
        "quantum %s features: %d train rows, %d qubits, backend %s%s",
        method,
        len(angles),
        angles.shape[1],
        backend,
        f", {landmarks} landmarks" if method == "nystroem" else "",
    )
    shot_based = backend_instance is not None and not backend_instance.exact
    k_mm = None
    if method == "nystroem":
        k_mm = quantum.fit_landmarks(angles, y_train)
    else:
        quantum.fit(angles, y_train)

    def featurize(rows: np.ndarray, block: np.ndarray | None) -> np.ndarray:
        if block is None:
            return quantum.transform(rows)
        return quantum.features_from_kernel(block) if method == "nystroem" else block

    phi = featurize(angles, None if precomputed is None else precomputed[0])
    if method == "nystroem" or len(angles) > exact_max_rows:
        head, params = fit_linear_head(phi, y_train, seed=seed)
        steps = [("classifier", head)]
    else:  # projected features on small data: the baseline's own SVC grid
        grid = fit_rbf_svc_grid(phi, y_train, seed=seed)
        steps = [("classifier", grid.best_estimator_)]
        params = {**grid.best_params_, "cv_score": float(grid.best_score_)}
    model = Pipeline([("preprocess", preprocessor), ("quantum_features", quantum), *steps])
    x_test, y_test = split.xy("test")
    test_phi = featurize(
        preprocessor.transform(x_test), None if precomputed is None else precomputed[1]
    )
    evaluation = evaluate_classifier(model[-1], test_phi, y_test)
    seconds = time.perf_counter() - t0
    if method == "nystroem":
        params.update(
            landmarks=len(quantum.landmarks_),
            nystroem_rank=int(quantum.weights_.shape[1]),
            nystroem_kept_trace=round(float(quantum.kept_trace_), 6),
        )
    log.info(
        "quantum %s model: %s, test %s, %.2f s",
        method,
        params,
        {k: round(v, 4) for k, v in evaluation.metrics.items()},
        seconds,
    )
    quantum.bind_backend(None)
    serving, agreement = backend, {}
    if shot_based:
        serving = serving_backend(angles.shape[1])
        quantum.set_params(backend=serving)
        agreement = _feature_agreement(quantum, serving, angles, phi, k_mm, seed=seed)
        log.info("device %s vs. exact %s: %s", method, serving, _rounded(agreement))
    params["serving_backend"] = serving
    return TrainedModel(
        "quantum", model, evaluation, params=params, train_seconds=seconds, agreement=agreement
    )


def _feature_agreement(
    quantum: Any,
    serving: str,
    angles: np.ndarray,
    phi: np.ndarray,
    k_mm: np.ndarray | None,
    *,
    seed: int,
) -> dict[str, float]:
    """Nyström: the measured landmark kernel against the exact one; projected: the measured
    train features against the exact expectation values (no extra circuits either way)."""
    from components.quantum.agreement import feature_agreement, gram_agreement

    fmap = quantum.feature_map_for(angles.shape[1])
    from components.quantum.backends import get_backend

    exact = get_backend(serving)
    if k_mm is not None:
        return gram_agreement(k_mm, quantum.landmarks_, lambda r: exact.kernel(fmap, r), seed=seed)
    return feature_agreement(phi, angles, lambda r: exact.expectations(fmap, r), seed=seed)
