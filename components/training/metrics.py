"""Classification metrics for a fitted model on the held-out split.

Binary problems score the positive class (the larger label) with ``decision_function``;
multiclass problems use macro F1 and one-vs-rest ROC AUC over softmaxed decision scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

METRIC_NAMES = ("accuracy", "balanced_accuracy", "f1", "roc_auc")
#: Most points of the stored ROC curve (KFP ClassificationMetrics, bundle JSON, MLflow, plots);
#: the ``roc_auc`` metric is always computed from every test row.
ROC_MAX_POINTS = 1001


@dataclass
class Evaluation:
    metrics: dict[str, float]
    labels: list[str]
    confusion_matrix: list[list[int]]
    roc_fpr: list[float] = field(default_factory=list)
    roc_tpr: list[float] = field(default_factory=list)
    roc_thresholds: list[float] = field(default_factory=list)
    n_test: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**data)


def _scores(model: Any, x: Any) -> np.ndarray:
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(x))
    return np.asarray(model.predict_proba(x))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def downsample_curve(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, max_points: int = ROC_MAX_POINTS
) -> tuple[np.ndarray, ...]:
    """At most ``max_points`` points of a ROC curve, spread evenly along it (by ``fpr + tpr``,
    which rises from 0 to 2 along the curve), always keeping the first and the last point. A
    subsequence of the curve, so it stays monotone and every point is a real operating point."""
    n = len(fpr)
    if n <= max_points:
        return fpr, tpr, thresholds
    along = fpr + tpr
    inner = np.searchsorted(along, np.linspace(along[0], along[-1], max_points)[1:-1])
    keep = np.unique(np.r_[0, np.clip(inner, 0, n - 1), n - 1])
    return fpr[keep], tpr[keep], thresholds[keep]


def evaluate_classifier(model: Any, x_test: Any, y_test: np.ndarray) -> Evaluation:
    """Accuracy, balanced accuracy, F1, ROC AUC, confusion matrix (and ROC curve if binary,
    at most :data:`ROC_MAX_POINTS` points of it; the AUC is computed from all rows)."""
    # imported here: METRIC_NAMES is read by light modules (the promotion policy, the CLI)
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
        roc_curve,
    )

    classes = np.asarray(model.classes_)
    y_pred = model.predict(x_test)
    scores = _scores(model, x_test)
    binary = len(classes) == 2
    metrics = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, y_pred)),
        "f1": float(
            f1_score(
                y_test,
                y_pred,
                average="binary" if binary else "macro",
                pos_label=classes[1] if binary else 1,
            )
        ),
    }
    ev = Evaluation(
        metrics=metrics,
        labels=[str(c) for c in classes],
        confusion_matrix=confusion_matrix(y_test, y_pred, labels=classes).tolist(),
        n_test=len(y_test),
    )
    if binary:
        s = scores if scores.ndim == 1 else scores[:, 1]
        positive = (np.asarray(y_test) == classes[1]).astype(int)
        metrics["roc_auc"] = float(roc_auc_score(positive, s))
        fpr, tpr, thr = downsample_curve(*roc_curve(positive, s))
        thr = np.where(np.isfinite(thr), thr, np.sign(thr) * 1e308)
        ev.roc_fpr, ev.roc_tpr, ev.roc_thresholds = fpr.tolist(), tpr.tolist(), thr.tolist()
    else:
        probs = scores if np.allclose(scores.sum(axis=1), 1.0) else _softmax(scores)
        metrics["roc_auc"] = float(roc_auc_score(y_test, probs, multi_class="ovr", labels=classes))
    return ev
