"""The training steps: fit a model, evaluate it, draw its plots and save it as a bundle.

``train_classical`` and ``train_quantum`` are what the KFP training components call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.data.preprocessing import Split
from components.training import plots
from components.training.bundle import PLOTS_DIR, BundleInfo, ModelBundle, save_bundle
from components.training.models import (
    TrainedModel,
    fit_classical_baseline,
    fit_quantum_kernel_model,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantumOptions:
    feature_map: str = "zz"
    reps: int = 2
    entanglement: str = "linear"
    backend: str = "statevector"
    seed: int = 42


def _save(trained: TrainedModel, split: Split, out_dir: str | Path,
          quantum: dict[str, Any] | None = None) -> ModelBundle:
    info = BundleInfo(kind=trained.kind, evaluation=trained.evaluation, params=trained.params,
                      train_seconds=trained.train_seconds,
                      feature_columns=split.feature_columns, label_column=split.label_column,
                      quantum=quantum or {})
    bundle = save_bundle(out_dir, trained.model, info)
    pdir = bundle.path / PLOTS_DIR
    title = f"{trained.kind} model"
    plots.confusion_matrix_png(trained.evaluation, pdir / "confusion_matrix.png", title)
    plots.roc_png({trained.kind: trained.evaluation}, pdir / "roc.png", f"ROC: {title}")
    if trained.gram is not None and trained.y_train is not None:
        plots.kernel_heatmap_png(trained.gram, trained.y_train, pdir / "kernel_heatmap.png")
    return bundle


def train_classical(split: Split, preprocessor: Any, out_dir: str | Path, *,
                    seed: int = 42) -> ModelBundle:
    return _save(fit_classical_baseline(split, preprocessor, seed=seed), split, out_dir)


def train_quantum(split: Split, preprocessor: Any, out_dir: str | Path,
                  options: QuantumOptions) -> ModelBundle:
    trained = fit_quantum_kernel_model(
        split, preprocessor, feature_map=options.feature_map, reps=options.reps,
        entanglement=options.entanglement, backend=options.backend, seed=options.seed)
    kernel = trained.model.named_steps["quantum_kernel"]
    quantum = {"backend": kernel.backend_instance().describe(),
               "feature_map": kernel.feature_map_for(kernel.n_features_in_).to_dict()}
    return _save(trained, split, out_dir, quantum)


def metrics_table_html(bundle: ModelBundle) -> str:
    rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>"
                   for k, v in bundle.info.evaluation.metrics.items())
    return f"<table border='1' cellpadding='4'><tr><th>metric</th><th>value</th></tr>{rows}</table>"


def write_kfp_outputs(bundle: ModelBundle, metrics: Any, classification: Any, report: Any) -> None:
    """Fill KFP ``Metrics``, ``ClassificationMetrics`` and ``HTML`` artifacts from a bundle."""
    ev = bundle.info.evaluation
    for k, v in ev.metrics.items():
        metrics.log_metric(k, round(float(v), 6))
    metrics.log_metric("train_seconds", round(bundle.info.train_seconds, 3))
    classification.log_confusion_matrix(ev.labels, ev.confusion_matrix)
    if ev.roc_fpr:
        classification.log_roc_curve(ev.roc_fpr, ev.roc_tpr, ev.roc_thresholds)
    Path(report.path).write_text(plots.html_report(f"{bundle.info.kind} model", bundle.plots,
                                                   metrics_table_html(bundle)))
