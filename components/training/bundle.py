"""A trained model as it travels between pipeline tasks: one directory holding

- ``model.joblib``: the complete inference pipeline (raw rows -> prediction);
- ``bundle.json``: kind, evaluation, chosen hyper-parameters, timings, feature schema and,
  for quantum models, the backend description (lineage);
- ``plots/*.png``: confusion matrix, ROC, kernel heatmap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from components.training.metrics import Evaluation

if TYPE_CHECKING:
    from components.data.split import Split
    from components.training.models import TrainedModel

MODEL_FILE = "model.joblib"
INFO_FILE = "bundle.json"
PLOTS_DIR = "plots"


@dataclass
class BundleInfo:
    kind: str
    evaluation: Evaluation
    params: dict[str, Any]
    train_seconds: float
    feature_columns: list[str]
    label_column: str
    quantum: dict[str, Any] = field(default_factory=dict)
    #: Shot-based quantum models: measured vs. exact kernel (components.quantum.agreement).
    agreement: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evaluation"] = self.evaluation.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleInfo:
        data = dict(data)
        data["evaluation"] = Evaluation.from_dict(data["evaluation"])
        return cls(**data)


@dataclass
class ModelBundle:
    path: Path
    info: BundleInfo

    @property
    def plots(self) -> list[Path]:
        return sorted((self.path / PLOTS_DIR).glob("*.png"))

    def load_model(self) -> Any:
        return joblib.load(self.path / MODEL_FILE)


def save_bundle(path: str | Path, model: Any, info: BundleInfo) -> ModelBundle:
    root = Path(path)
    (root / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, root / MODEL_FILE)
    (root / INFO_FILE).write_text(json.dumps(info.to_dict(), indent=2, sort_keys=True))
    return ModelBundle(root, info)


def load_bundle(path: str | Path) -> ModelBundle:
    root = Path(path)
    info_path = root / INFO_FILE
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a model bundle (no {INFO_FILE})")
    return ModelBundle(root, BundleInfo.from_dict(json.loads(info_path.read_text())))


def save_trained(
    trained: TrainedModel, split: Split, out_dir: str | Path, quantum: dict[str, Any] | None = None
) -> ModelBundle:
    """Save a trained model as a bundle with its plots (confusion matrix, ROC, kernel)."""
    from components.training import plots

    info = BundleInfo(
        kind=trained.kind,
        evaluation=trained.evaluation,
        params=trained.params,
        train_seconds=trained.train_seconds,
        feature_columns=split.feature_columns,
        label_column=split.label_column,
        quantum=quantum or {},
        agreement=dict(trained.agreement),
    )
    bundle = save_bundle(out_dir, trained.model, info)
    pdir = bundle.path / PLOTS_DIR
    title = f"{trained.kind} model"
    plots.confusion_matrix_png(trained.evaluation, pdir / "confusion_matrix.png", title)
    plots.roc_png({trained.kind: trained.evaluation}, pdir / "roc.png", f"ROC: {title}")
    if trained.gram is not None and trained.y_train is not None:
        plots.kernel_heatmap_png(trained.gram, trained.y_train, pdir / "kernel_heatmap.png")
    return bundle
