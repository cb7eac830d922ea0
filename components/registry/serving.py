"""The registered model as it is served: one MLflow model with the ``sklearn`` flavour (skops
format, a fixed list of trusted types) whose ``python_function`` flavour loads through this
module, so a request chooses what it gets back with the ``output`` param:

=========  ================================================================================
``label``  (default) the predicted labels, as ``model.predict`` gives them
``proba``  one column ``proba_<class>`` per class (in ``classes_`` order)
``all``    ``label`` and the ``proba_<class>`` columns
=========  ================================================================================

``mlflow.pyfunc.load_model(uri).predict(df)`` gives labels, as before;
``predict(df, params={"output": "all"})`` gives a DataFrame. The signature declares the param
(string, default ``label``), so MLflow's scoring server, ``mlflow models serve`` and MLServer's
MLflow runtime (KServe) pass it through; the input schema is enforced as for any pyfunc.

Probabilities come from the classifier's ``predict_proba`` when it has one (the logistic heads).
An SVC (fidelity kernel, small-data baseline) has none: its decision values are mapped to
probabilities by Platt scaling (a sigmoid, Platt's smoothed targets) fitted at registration on
the held-out split the gate's metrics were measured on; the two coefficients per class are
stored in the MLmodel's metadata (``qubeflow.serving``), the skops file stays the model that
was measured. The sigmoid is increasing, so it leaves the labels and the ROC AUC as measured.

This module is imported from the model's own ``code/`` directory when the model is loaded
(``code_paths``), so it imports only what the served model needs (MLflow, skops, NumPy,
pandas, SciPy) and nothing else of the project at import time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

#: Types beyond skops' defaults (sklearn estimators, NumPy arrays) it may load from a registered
#: model.
#: The loader uses this list, not the one written in the MLmodel, so a model cannot widen it.
SKOPS_TRUSTED_TYPES = [
    # a NumPy dtype object (SimpleImputer keeps the dtype it was fitted on): data, not code
    "numpy.dtype",
    "components.quantum.transformers.QuantumKernelTransformer",
    "components.quantum.transformers.ProjectedQuantumFeatures",
    "components.quantum.transformers.NystroemQuantumFeatures",
]
#: What a served model imports of this project, relative to the ``components`` package: this
#: module, the quantum transformers and what they import. Nothing of the steps, the gate or
#: the training code goes into a model's ``code/`` (fewer files to upload and to trust).
SERVED_CODE = (
    "__init__.py",
    "errors.py",
    "feature_maps.py",
    "versions.py",
    "quantum",
    "registry/__init__.py",
    "registry/serving.py",
)
#: The pyfunc param that selects the output, its values and its default.
OUTPUT_PARAM = "output"
OUTPUT_LABEL, OUTPUT_PROBA, OUTPUT_ALL = "label", "proba", "all"
OUTPUTS = (OUTPUT_LABEL, OUTPUT_PROBA, OUTPUT_ALL)
PARAMS_EXAMPLE = {OUTPUT_PARAM: OUTPUT_LABEL}  # infer_signature(..., params=) takes defaults
LABEL_COLUMN = "label"
PROBA_PREFIX = "proba_"
#: Key of this module's entry in the MLmodel's ``metadata``.
METADATA_KEY = "qubeflow.serving"
#: At most this many held-out rows fit the Platt sigmoid (the decision values cost a kernel row
#: each; a few thousand rows pin two coefficients down).
CALIBRATION_MAX_ROWS = 2000


def proba_column(cls: Any) -> str:
    return f"{PROBA_PREFIX}{cls}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _final_estimator(model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def _head_and_features(model: Any, x: Any) -> tuple[Any, Any]:
    """The final estimator and its input: a Pipeline's transforms run once, so labels and
    probabilities of one request share one (quantum) feature evaluation."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[-1], model[:-1].transform(x)
    return model, x


def fit_platt(decision: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` with ``P(positive | f) = 1 / (1 + exp(-(a f + b)))``, fitted by
    log-loss on Platt's smoothed targets (no infinite slope on separable data)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    f = np.asarray(decision, dtype=float).ravel()
    pos = np.asarray(positive, dtype=bool).ravel()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Platt scaling needs held-out rows of both classes")
    target = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * f + ab[1]
        d = expit(z) - target
        return float(np.sum(np.logaddexp(0.0, z) - target * z)), np.array([d @ f, d.sum()])

    start = np.array([0.0, np.log((n_pos + 1.0) / (n_neg + 1.0))])
    res = minimize(loss, start, jac=True, method="BFGS")
    return float(res.x[0]), float(res.x[1])


def serving_metadata(model: Any, x_holdout: Any, y_holdout: Any) -> dict[str, Any]:
    """What the served model needs beside the skops file: its classes and how it gives
    probabilities (``predict_proba``, or Platt coefficients fitted on the held-out rows)."""
    classes = [_plain(c) for c in np.asarray(model.classes_)]
    meta: dict[str, Any] = {"classes": classes, "outputs": list(OUTPUTS)}
    head = _final_estimator(model)
    if hasattr(head, "predict_proba"):
        meta["probabilities"] = {"method": "predict_proba"}
        return meta
    if not hasattr(model, "decision_function"):
        raise ValueError(f"{type(head).__name__} has neither predict_proba nor decision_function")
    x = x_holdout[:CALIBRATION_MAX_ROWS]  # rows, of a DataFrame or an array
    y = np.asarray(y_holdout)[:CALIBRATION_MAX_ROWS]
    scores = np.asarray(model.decision_function(x), dtype=float)
    columns = [scores] if scores.ndim == 1 else [scores[:, j] for j in range(scores.shape[1])]
    positives = [y == classes[1]] if scores.ndim == 1 else [y == c for c in classes]
    coef = [fit_platt(f, p) for f, p in zip(columns, positives, strict=True)]
    meta["probabilities"] = {
        "method": "platt",
        "fitted_on": "held-out split",
        "rows": len(y),
        "a": [a for a, _ in coef],
        "b": [b for _, b in coef],
    }
    return meta


class ServedClassifier:
    """What ``PyFuncModel.predict`` calls: the estimator, and the output param applied."""

    def __init__(self, estimator: Any, meta: dict[str, Any] | None = None) -> None:
        self.estimator = estimator
        self.meta = meta or {}
        self.classes = np.asarray(estimator.classes_)

    def get_raw_model(self) -> Any:
        return self.estimator

    def probabilities(self, head: Any, features: Any) -> np.ndarray:
        if hasattr(head, "predict_proba"):
            return np.asarray(head.predict_proba(features), dtype=float)
        platt = self.meta.get("probabilities", {})
        if platt.get("method") != "platt":
            from mlflow.exceptions import MlflowException

            raise MlflowException.invalid_parameter_value(
                f"this model gives no probabilities ({type(head).__name__} has no predict_proba "
                "and the model was registered without a calibration); use output=label"
            )
        from scipy.special import expit

        scores = np.asarray(head.decision_function(features), dtype=float)
        a, b = np.asarray(platt["a"]), np.asarray(platt["b"])
        if scores.ndim == 1:
            p1 = expit(a[0] * scores + b[0])
            return np.column_stack([1.0 - p1, p1])
        p = expit(scores * a + b)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd
        from mlflow.exceptions import MlflowException

        output = (params or {}).get(OUTPUT_PARAM) or OUTPUT_LABEL
        if output not in OUTPUTS:
            raise MlflowException.invalid_parameter_value(
                f"param {OUTPUT_PARAM}={output!r} is not one of {', '.join(OUTPUTS)}"
            )
        if output == OUTPUT_LABEL:
            return self.estimator.predict(data)
        head, features = _head_and_features(self.estimator, data)
        proba = self.probabilities(head, features)
        frame = pd.DataFrame(proba, columns=[proba_column(c) for c in self.classes])
        if output == OUTPUT_ALL:
            frame.insert(0, LABEL_COLUMN, head.predict(features))
        return frame


def _load_pyfunc(path: str) -> ServedClassifier:
    """The ``python_function`` loader (``loader_module`` of the MLmodel): the skops file with
    :data:`SKOPS_TRUSTED_TYPES` only; any other serialization is refused."""
    import skops.io
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    model_dir = path if os.path.isdir(path) else os.path.dirname(path)
    mlmodel = Model.load(os.path.join(model_dir, "MLmodel"))
    conf = mlmodel.flavors.get("sklearn", {})
    if conf.get("serialization_format") != "skops":
        raise MlflowException(
            f"refusing to load {model_dir}: serialization "
            f"{conf.get('serialization_format')!r}, only skops is loaded"
        )
    estimator = skops.io.load(
        os.path.join(model_dir, conf["pickled_model"]), trusted=SKOPS_TRUSTED_TYPES
    )
    return ServedClassifier(estimator, (mlmodel.metadata or {}).get(METADATA_KEY))


def stage_served_code(dest: str | Path) -> str:
    """Copy :data:`SERVED_CODE` into ``dest/components`` and return that path: the
    ``code_paths`` entry of a logged model."""
    package = Path(__file__).resolve().parents[1]
    target = Path(dest) / package.name
    for rel in SERVED_CODE:
        src, out = package / rel, target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, out)
    return str(target)


def save_model(path: str, mlflow_model: Any, sk_model: Any, **kwargs: Any) -> None:
    """The flavour function ``mlflow.models.Model.log`` calls: ``mlflow.sklearn.save_model``
    (sklearn flavour, skops), then the ``python_function`` flavour loads through this module."""
    import mlflow.sklearn

    kwargs.setdefault("serialization_format", "skops")
    kwargs.setdefault("skops_trusted_types", SKOPS_TRUSTED_TYPES)
    mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
    mlflow_model.flavors["python_function"]["loader_module"] = __name__
    mlflow_model.save(os.path.join(path, "MLmodel"))


def log_model(sk_model: Any, *, name: str, **kwargs: Any) -> Any:
    """Log ``sk_model`` as the served model (see the module docstring); ``kwargs`` are
    ``mlflow.sklearn.log_model``'s (signature, input_example, pip_requirements, code_paths,
    metadata, ...). Returns the ``ModelInfo``."""
    import sys

    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=sys.modules[__name__],
        flavor_name="sklearn",
        sk_model=sk_model,
        **kwargs,
    )
