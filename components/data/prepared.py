"""The prepared-data artifacts as they travel between pipeline tasks: train/test Parquet, the
fitted preprocessor (joblib) and the lineage JSON. The data step writes them
(:func:`save_prepared`); the training and registry steps read them back (:func:`load_prepared`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from components.data.split import Split


def save_prepared(
    split: Split,
    preprocessor: Any,
    lineage: dict[str, Any],
    *,
    train_path: str,
    test_path: str,
    preprocessor_path: str,
    lineage_path: str,
) -> None:
    """Write what :func:`load_prepared` reads."""
    split.train.to_parquet(train_path, index=False)
    split.test.to_parquet(test_path, index=False)
    joblib.dump(preprocessor, preprocessor_path)
    Path(lineage_path).write_text(json.dumps(lineage, indent=2, default=str))


def load_prepared(
    train_path: str, test_path: str, preprocessor_path: str, lineage_path: str
) -> tuple[Split, Any, dict[str, Any]]:
    """Read back what :func:`save_prepared` wrote (used by the training and registry steps)."""
    lineage = json.loads(Path(lineage_path).read_text())
    label = lineage["profile"]["label_column"]
    split = Split(pd.read_parquet(train_path), pd.read_parquet(test_path), label)
    return split, joblib.load(preprocessor_path), lineage
