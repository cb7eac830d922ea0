"""scikit-learn estimators for quantum feature maps.

- :class:`FidelityKernel`: ``evaluate(x, y=None)`` gives the fidelity kernel matrix, usable
  directly with ``SVC(kernel="precomputed")``.
- :class:`QuantumKernelTransformer`: ``fit(X)`` remembers the reference rows, ``transform(X)``
  returns ``K(X, reference)``. So ``Pipeline([..., ("kernel", QuantumKernelTransformer()),
  ("svc", SVC(kernel="precomputed"))])`` fits on the train Gram and predicts on the
  test-vs-train kernel, and the whole pipeline pickles as one model.
- :class:`NystroemQuantumFeatures`: ``fit(X, y)`` picks ``n_landmarks`` stratified landmark
  rows and the landmark kernel's inverse square root; ``transform(X)`` returns the Nyström
  features ``K(X, landmarks) K_mm^(-1/2)`` for a linear model — O(m) work per row at serving.
- :class:`ProjectedQuantumFeatures`: per-qubit <X>, <Y>, <Z> of the feature-map state, for
  linear models.

On exact backends rows are streamed in chunks of bounded memory (``methods.chunk_rows``),
with progress (done/total, rate, ETA) logged every few seconds.

Parameters are plain strings and numbers (scikit-learn convention: ``clone``/``get_params``
work, and the fitted model serialises without custom types).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from components.feature_maps import FeatureMap
from components.quantum import nystroem
from components.quantum.backends import QuantumBackend, get_backend
from components.quantum.methods import chunk_rows
from components.quantum.statevector import ProgressLogger, fidelity_kernel


def _streams(backend: QuantumBackend) -> bool:
    """Exact backends whose reference rows' states can be cached and the other rows streamed:
    dense ones through ``statevectors``, others (``mps``) through their own
    ``reference_states`` / ``kernel_against``."""
    return bool(getattr(backend, "exact", False)) and (
        hasattr(backend, "statevectors") or hasattr(backend, "kernel_against")
    )


def rows_per_chunk(backend: QuantumBackend, fmap: FeatureMap) -> int:
    """Rows streamed at once: the backend's own choice, else one chunk of dense states."""
    own = getattr(backend, "chunk_rows", None)
    return own(fmap) if own is not None else chunk_rows(fmap.n_qubits)


def reference_states(backend: QuantumBackend, fmap: FeatureMap, y: np.ndarray) -> Any:
    """The reference rows' states in the backend's own form (dense arrays or MPS)."""
    own = getattr(backend, "reference_states", None)
    return own(fmap, y) if own is not None else backend.statevectors(fmap, y)


def kernel_against(
    backend: QuantumBackend,
    fmap: FeatureMap,
    x: np.ndarray,
    reference: Any,
    what: str,
    dtype: Any = np.float64,
) -> np.ndarray:
    """``K(x, reference)`` streamed: the backend's own ``kernel_against`` when it has one
    (states that are not dense vectors), else :func:`streamed_kernel`."""
    own = getattr(backend, "kernel_against", None)
    if own is not None:
        return own(fmap, x, reference, what=what, dtype=dtype)
    return streamed_kernel(backend, fmap, x, reference, what, dtype)


def streamed_kernel(
    backend: QuantumBackend,
    fmap: FeatureMap,
    x: np.ndarray,
    ref_states: np.ndarray,
    what: str,
    dtype: Any = np.float64,
) -> np.ndarray:
    """``K(x, ref)`` on an exact backend, ``x``'s states built chunk by chunk (memory: one
    chunk of states, never all of them)."""
    out = np.empty((len(x), len(ref_states)), dtype=dtype)
    step = chunk_rows(fmap.n_qubits)
    progress = ProgressLogger(what)
    for start in range(0, len(x), step):
        stop = min(len(x), start + step)
        out[start:stop] = fidelity_kernel(backend.statevectors(fmap, x[start:stop]), ref_states)
        progress(stop, len(x))
    return out


def streamed_expectations(
    backend: QuantumBackend, fmap: FeatureMap, x: np.ndarray, what: str
) -> np.ndarray:
    """Projected features on an exact backend, chunk by chunk."""
    out = np.empty((len(x), 3 * fmap.n_qubits), dtype=np.float64)
    step = rows_per_chunk(backend, fmap)
    progress = ProgressLogger(what)
    for start in range(0, len(x), step):
        stop = min(len(x), start + step)
        out[start:stop] = backend.expectations(fmap, x[start:stop])
        progress(stop, len(x))
    return out


class _FeatureMapParams(BaseEstimator):
    """Shared parameters: which feature map, on which backend."""

    def __init__(
        self,
        feature_map: str = "zz",
        reps: int = 2,
        entanglement: str = "linear",
        rotation: str = "y",
        backend: str = "statevector",
    ) -> None:
        self.feature_map = feature_map
        self.reps = reps
        self.entanglement = entanglement
        self.rotation = rotation
        self.backend = backend

    def feature_map_for(self, n_qubits: int) -> FeatureMap:
        return FeatureMap(
            kind=self.feature_map,
            n_qubits=int(n_qubits),
            reps=int(self.reps),
            entanglement=self.entanglement,
            rotation=self.rotation,
        )

    def backend_instance(self) -> QuantumBackend:
        """The backend bound with :meth:`bind_backend` (same name), else a new one by name."""
        bound = getattr(self, "_bound_backend", None)
        if bound is not None and bound[0] == self.backend:
            return bound[1]
        return get_backend(self.backend)

    def bind_backend(self, backend: QuantumBackend | None) -> None:
        """Use this backend instance (with its budget and job records) while it matches
        ``self.backend``. Not part of the fitted state: dropped when pickled."""
        self._bound_backend = None if backend is None else (self.backend, backend)

    def cached_reference_states(
        self, backend: QuantumBackend, fmap: FeatureMap, rows: np.ndarray
    ) -> np.ndarray:
        """The states of the fitted reference rows (train rows or landmarks), computed once
        per backend and feature map; a runtime cache, not fitted state."""
        key = (self.backend, fmap)
        cached = getattr(self, "_reference_states", None)
        if cached is None or cached[0] != key:
            cached = (key, reference_states(backend, fmap, rows))
            self._reference_states = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for runtime_only in ("_reference_states", "_bound_backend"):
            state.pop(runtime_only, None)  # caches and live connections, not fitted state
        return state


class FidelityKernel(_FeatureMapParams):
    """The fidelity quantum kernel ``|<phi(x)|phi(y)>|^2`` for a feature map on a backend."""

    def evaluate(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        x = check_array(x, dtype=np.float64)
        fmap = self.feature_map_for(x.shape[1])
        yy = None if y is None else check_array(y, dtype=np.float64)
        return self.backend_instance().kernel(fmap, x, yy)

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        return self.evaluate(x, y)


class QuantumKernelTransformer(TransformerMixin, _FeatureMapParams):
    """Maps rows to their fidelity-kernel values against the rows seen in ``fit``."""

    def fit(self, X: Any, y: Any = None) -> QuantumKernelTransformer:
        x = validate_data(self, X, dtype=np.float64, reset=True)
        self.feature_map_for(x.shape[1])  # validates parameters early
        self.reference_ = np.array(x, copy=True)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        self.fit(X, y)
        return self._kernel(self.reference_, None)

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "reference_")
        x = validate_data(self, X, dtype=np.float64, reset=False)
        return self._kernel(x, self.reference_)

    def _kernel(self, x: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
        fmap = self.feature_map_for(self.n_features_in_)
        backend = self.backend_instance()
        if ref is None:
            return backend.kernel(fmap, x, None)
        if _streams(backend):
            states = self.cached_reference_states(backend, fmap, self.reference_)
            return kernel_against(backend, fmap, x, states, "quantum kernel vs. train")
        return backend.kernel(fmap, x, ref)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


class ProjectedQuantumFeatures(TransformerMixin, _FeatureMapParams):
    """Per-qubit expectation values <X>, <Y>, <Z> of the feature-map state (3 per qubit)."""

    def fit(self, X: Any, y: Any = None) -> ProjectedQuantumFeatures:
        x = validate_data(self, X, dtype=np.float64, reset=True)
        self.feature_map_for(x.shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        x = validate_data(self, X, dtype=np.float64, reset=False)
        backend = self.backend_instance()
        fmap = self.feature_map_for(x.shape[1])
        if _streams(backend):
            return streamed_expectations(backend, fmap, x, "projected features")
        return backend.expectations(fmap, x)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.array(
            [f"q{q}_{p}" for q in range(self.n_features_in_) for p in "XYZ"], dtype=object
        )


class NystroemQuantumFeatures(TransformerMixin, _FeatureMapParams):
    """Nyström features of the fidelity kernel: ``Φ(X) = K(X, L) K_mm^(-1/2)`` with ``L`` the
    ``n_landmarks`` landmark rows chosen in ``fit`` (seeded, stratified by ``y``).

    ``Φ Φᵀ`` approximates the full fidelity Gram (exactly when every row is a landmark), so a
    linear model on ``Φ`` approximates the kernel machine at O(N·m) cost. Only the landmarks
    and the m×r normalisation are fitted state: serving one row costs m kernel entries.
    """

    def __init__(
        self,
        feature_map: str = "zz",
        reps: int = 2,
        entanglement: str = "linear",
        rotation: str = "y",
        backend: str = "statevector",
        n_landmarks: int = 256,
        random_state: int = 0,
    ) -> None:
        super().__init__(feature_map, reps, entanglement, rotation, backend)
        self.n_landmarks = n_landmarks
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> NystroemQuantumFeatures:
        self.fit_landmarks(X, y)
        return self

    def fit_landmarks(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit``, returning the landmark kernel ``K_mm`` it was fitted from (on a
        shot-based backend, the measured one: compared with the exact one for lineage)."""
        x = validate_data(self, X, dtype=np.float64, reset=True)
        fmap = self.feature_map_for(x.shape[1])
        index = nystroem.select_landmarks(
            len(x),
            min(int(self.n_landmarks), len(x)),
            y=None if y is None else np.asarray(y),
            seed=int(self.random_state),
        )
        self.landmarks_ = np.array(x[index], copy=True)
        self.landmark_index_ = index
        k_mm = self.backend_instance().kernel(fmap, self.landmarks_, None)
        self.weights_, self.kept_trace_ = nystroem.normalization(k_mm)
        return k_mm

    def landmark_kernel(self, X: Any) -> np.ndarray:
        """``K(X, landmarks)`` (N × m), streamed on exact backends."""
        check_is_fitted(self, "landmarks_")
        x = validate_data(self, X, dtype=np.float64, reset=False)
        fmap = self.feature_map_for(x.shape[1])
        backend = self.backend_instance()
        if not _streams(backend):
            return backend.kernel(fmap, x, self.landmarks_)
        states = self.cached_reference_states(backend, fmap, self.landmarks_)
        return kernel_against(
            backend, fmap, x, states, "Nystroem kernel vs. landmarks", dtype=np.float32
        )

    def features_from_kernel(self, k_nm: np.ndarray) -> np.ndarray:
        """Nyström features from a precomputed ``K(X, landmarks)`` (e.g. kernel tiles)."""
        check_is_fitted(self, "weights_")
        if k_nm.ndim != 2 or k_nm.shape[1] != len(self.landmarks_):
            raise ValueError(
                f"expected a kernel with {len(self.landmarks_)} landmark "
                f"columns, got shape {k_nm.shape}"
            )
        return nystroem.features(k_nm, self.weights_)

    def transform(self, X: Any) -> np.ndarray:
        return self.features_from_kernel(self.landmark_kernel(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "weights_")
        return np.array([f"nystroem{i}" for i in range(self.weights_.shape[1])], dtype=object)
