"""The train/test split as the steps pass it around: two frames and the label column's name
(no scikit-learn needed to hold or read one)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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


def train_test_sizes(n_rows: int, test_size: float) -> tuple[int, int]:
    """(train, test) rows as scikit-learn's ``train_test_split`` sizes a fractional split."""
    n_test = math.ceil(test_size * n_rows)
    return n_rows - n_test, n_test
