"""What the training steps show in the Kubeflow UI: KFP ``Metrics``, ``ClassificationMetrics``
and ``HTML`` outputs filled from a model bundle (or, after a quantum fallback, the reason)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from components.training import plots
from components.training.bundle import ModelBundle


def metrics_table_html(bundle: ModelBundle) -> str:
    rows = "".join(
        f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in bundle.info.evaluation.metrics.items()
    )
    return f"<table border='1' cellpadding='4'><tr><th>metric</th><th>value</th></tr>{rows}</table>"


def calibration_table_html(snapshot: dict[str, Any] | None) -> str:
    """The calibration snapshot's headline facts, for the step's HTML report."""
    if not snapshot:
        return "<p>No calibration snapshot (the backend was not reached).</p>"
    b, e = snapshot.get("backend", {}), snapshot.get("execution", {})
    cal = snapshot.get("calibration") or {}
    rows = {
        "backend": f"{b.get('name')} ({b.get('kind')})",
        "calibration time": cal.get("timestamp") or "n/a (exact simulator)",
        "calibration hash": snapshot.get("calibration_hash", "")[:16],
        "shots": e.get("shots"),
        "transpiled depth": e.get("circuit_depth"),
        "two-qubit gates": e.get("two_qubit_gates"),
        "jobs": len(e.get("jobs") or []),
    }
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<h3>Backend and calibration</h3><table border='1' cellpadding='4'>{body}</table>"


def write_fallback_outputs(outcome: Any, metrics: Any, report: Any) -> None:
    """KFP outputs of a quantum step that fell back: say so where users look."""
    metrics.log_metric("fallback", 1)
    reason = html.escape(outcome.reason or "")
    Path(report.path).write_text(
        plots.html_report(
            "quantum step FELL BACK to the classical model",
            [],
            f"<p><b>Reason:</b> {reason}</p><p>The registry step registers the classical baseline "
            "with <code>quantum.fallback=true</code>; it is never promoted as a quantum model.</p>"
            + calibration_table_html(outcome.calibration),
        )
    )


def write_kfp_outputs(
    bundle: ModelBundle,
    metrics: Any,
    classification: Any,
    report: Any,
    calibration: dict[str, Any] | None = None,
) -> None:
    """Fill KFP ``Metrics``, ``ClassificationMetrics`` and ``HTML`` artifacts from a bundle."""
    ev = bundle.info.evaluation
    for k, v in ev.metrics.items():
        metrics.log_metric(k, round(float(v), 6))
    metrics.log_metric("train_seconds", round(bundle.info.train_seconds, 3))
    classification.log_confusion_matrix(ev.labels, ev.confusion_matrix)
    if ev.roc_fpr:
        classification.log_roc_curve(ev.roc_fpr, ev.roc_tpr, ev.roc_thresholds)
    tables = metrics_table_html(bundle)
    if calibration is not None:
        tables += calibration_table_html(calibration)
    Path(report.path).write_text(
        plots.html_report(f"{bundle.info.kind} model", bundle.plots, tables)
    )
