"""scikit-learn estimators for quantum feature maps.

- :class:`FidelityKernel`: ``evaluate(x, y=None)`` gives the fidelity kernel matrix, usable
  directly with ``SVC(kernel="precomputed")``.
- :class:`QuantumKernelTransformer`: ``fit(X)`` remembers the reference rows, ``transform(X)``
  returns ``K(X, reference)``. So ``Pipeline([..., ("kernel", QuantumKernelTransformer()),
  ("svc", SVC(kernel="precomputed"))])`` fits on the train Gram and predicts on the
  test-vs-train kernel, and the whole pipeline pickles as one model.
- :class:`ProjectedQuantumFeatures`: per-qubit <X>, <Y>, <Z> of the feature-map state, for
  linear models.

Parameters are plain strings and numbers (scikit-learn convention: ``clone``/``get_params``
work, and the fitted model serialises without custom types).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from components.feature_maps import FeatureMap
from components.quantum.backends import QuantumBackend, get_backend


class _FeatureMapParams(BaseEstimator):
    """Shared parameters: which feature map, on which backend."""

    def __init__(self, feature_map: str = "zz", reps: int = 2, entanglement: str = "linear",
                 rotation: str = "y", backend: str = "statevector") -> None:
        self.feature_map = feature_map
        self.reps = reps
        self.entanglement = entanglement
        self.rotation = rotation
        self.backend = backend

    def feature_map_for(self, n_qubits: int) -> FeatureMap:
        return FeatureMap(kind=self.feature_map, n_qubits=int(n_qubits), reps=int(self.reps),
                          entanglement=self.entanglement, rotation=self.rotation)

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
        if getattr(backend, "exact", False) and hasattr(backend, "statevectors"):
            from components.quantum.statevector import fidelity_kernel

            cache_key = (self.backend, fmap)
            cached = getattr(self, "_reference_states", None)
            if cached is None or cached[0] != cache_key:
                cached = (cache_key, backend.statevectors(fmap, self.reference_))
                self._reference_states = cached
            return fidelity_kernel(backend.statevectors(fmap, x), cached[1])
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
        return self.backend_instance().expectations(self.feature_map_for(x.shape[1]), x)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.array([f"q{q}_{p}" for q in range(self.n_features_in_) for p in "XYZ"],
                        dtype=object)
