"""Plots people would rather look at than numbers: confusion matrix, ROC, kernel heatmap.

Each function writes a PNG and returns its path; :func:`html_report` embeds PNGs in one
self-contained HTML page for KFP's ``HTML`` artifact viewer.

Figures are matplotlib ``Figure`` objects drawn by the Agg canvas, without ``pyplot`` (no
global figure state, nothing to close), and matplotlib is imported on the first plot: a step
pays for it when it draws, not when it starts.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from components.training.metrics import Evaluation

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def confusion_matrix_png(ev: Evaluation, path: Path, title: str) -> Path:
    cm = np.asarray(ev.confusion_matrix)
    fig, ax = _figure(4, 3.5)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(ev.labels)), ev.labels)
    ax.set_yticks(range(len(ev.labels)), ev.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black"
        )
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def roc_png(curves: dict[str, Evaluation], path: Path, title: str = "ROC") -> Path | None:
    """ROC curves of several models on one plot (binary problems only)."""
    curves = {k: v for k, v in curves.items() if v.roc_fpr}
    if not curves:
        return None
    fig, ax = _figure(4.5, 4)
    for name, ev in curves.items():
        ax.plot(ev.roc_fpr, ev.roc_tpr, label=f"{name} (AUC {ev.metrics['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


#: Most rows/columns of a Gram matrix a heatmap shows, whatever the training set size.
HEATMAP_MAX_SIDE = 300


def kernel_heatmap_png(
    gram: np.ndarray,
    labels: np.ndarray,
    path: Path,
    title: str = "Quantum kernel (train, sorted by class)",
    max_side: int = HEATMAP_MAX_SIDE,
    seed: int = 0,
) -> Path:
    """Heatmap of ``gram`` sorted by class; above ``max_side`` rows, of a seeded random sample
    of ``max_side`` rows (sorted by class, then by row), so the image and the work to draw it
    are bounded whatever the size of the Gram matrix."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if len(rows) > max_side:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), max_side, replace=False))
    order = rows[np.argsort(labels[rows], kind="stable")]
    fig, ax = _figure(4.5, 4)
    im = ax.imshow(gram[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    return path


def html_report(title: str, images: list[Path], tables_html: str = "") -> str:
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>",
        f"<body style='font-family:sans-serif'><h2>{html.escape(title)}</h2>",
        tables_html,
    ]
    for img in images:
        data = base64.b64encode(Path(img).read_bytes()).decode()
        parts.append(
            f"<figure style='display:inline-block'><img src='data:image/png;base64,"
            f"{data}'/><figcaption>{html.escape(Path(img).stem)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
