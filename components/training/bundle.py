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
from typing import Any

import joblib

from components.training.metrics import Evaluation

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
