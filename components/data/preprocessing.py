"""Train/test split and the fitted preprocessing that turns raw feature rows into angles.

The preprocessor is a scikit-learn ``Pipeline`` fitted on the train split only:
optional imputation -> standard scaling -> PCA down to ``n_qubits`` components (when there
are more features than qubits) -> min-max rescaling into the feature map's angle range,
clipped so out-of-range rows at inference still land inside it. It takes the raw feature
columns by name, so the same object is the first stage of the registered model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler


@dataclass
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    label_column: str

    @property
    def feature_columns(self) -> list[str]:
        return [c for c in self.train.columns if c != self.label_column]

    def xy(self, part: str) -> tuple[pd.DataFrame, np.ndarray]:
        frame = self.train if part == "train" else self.test
        return frame[self.feature_columns], frame[self.label_column].to_numpy()


def stratified_split(frame: pd.DataFrame, label_column: str, test_size: float, seed: int) -> Split:
    """Stratified split with a fixed seed; inf values become NaN (imputed later if asked).

    The split is drawn on row positions and each part is taken from ``frame`` once, so the
    two parts together are the only copy made (no whole-table copy or cast before splitting);
    features are then made float64 and cleaned column by column, in place, where needed.
    """
    frame = frame.rename(columns=str)  # a lazy copy (copy-on-write): no data is copied
    features = [c for c in frame.columns if c != label_column]
    train_rows, test_rows = train_test_split(
        np.arange(len(frame)),
        test_size=test_size,
        random_state=seed,
        stratify=frame[label_column].to_numpy(),
    )
    parts = []
    for rows in (train_rows, test_rows):
        part = frame.take(rows).reset_index(drop=True)
        for c in features:
            values = part[c].to_numpy(dtype="float64", na_value=np.nan)
            infinite = np.isinf(values)
            if part[c].dtype != np.float64 or infinite.any():
                part[c] = np.where(infinite, np.nan, values)
        parts.append(part)
    return Split(parts[0], parts[1], label_column)


def build_preprocessor(
    n_features: int,
    n_qubits: int,
    angle_range: tuple[float, float],
    impute: str = "none",
    seed: int = 0,
) -> Pipeline:
    """An unfitted preprocessing pipeline from raw features to ``n_qubits`` angles."""
    steps: list[tuple[str, object]] = []
    if impute != "none":
        steps.append(("impute", SimpleImputer(strategy=impute)))
    steps.append(("scale", StandardScaler()))
    if n_features > n_qubits:
        steps.append(("reduce", PCA(n_components=n_qubits, random_state=seed)))
    steps.append(("angles", MinMaxScaler(feature_range=angle_range, clip=True)))
    return Pipeline(steps)


def fit_preprocessor(
    split: Split,
    n_qubits: int,
    angle_range: tuple[float, float],
    impute: str = "none",
    seed: int = 0,
) -> Pipeline:
    """Fit the preprocessor on the train split only (no test leakage)."""
    x_train, _ = split.xy("train")
    pre = build_preprocessor(x_train.shape[1], n_qubits, angle_range, impute, seed)
    pre.fit(x_train)
    return pre
