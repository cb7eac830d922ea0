"""Training, metrics, plots and bundles on the real built-in dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.data.preprocessing import fit_preprocessor, stratified_split
from components.data.sources import load_table
from components.steps.train_classical.step import train_classical
from components.steps.train_quantum.step import run_quantum_step
from components.training.bundle import load_bundle
from components.training.metrics import METRIC_NAMES
from components.training.models import fit_classical_baseline, fit_quantum_kernel_model
from tests.step_options import baseline_options, quantum_options


def test_quantum_and_classical_models_on_the_same_split(prepared_small):
    split, pre = prepared_small
    quantum = fit_quantum_kernel_model(split, pre, seed=7)
    classical = fit_classical_baseline(split, pre, seed=7, **baseline_options())
    for trained in (quantum, classical):
        assert set(trained.evaluation.metrics) == set(METRIC_NAMES)
        assert trained.evaluation.n_test == len(split.test)
        assert trained.evaluation.metrics["roc_auc"] > 0.9  # real signal on real data
    assert quantum.gram.shape == (len(split.train), len(split.train))
    steps = list(quantum.model.named_steps)
    assert steps == ["preprocess", "quantum_kernel", "classifier"]
    # The model predicts from raw feature rows (names and all).
    raw = split.test.drop(columns=["target"]).head(3)
    assert quantum.model.predict(raw).shape == (3,)


def test_model_rejects_rows_with_missing_columns(prepared_small):
    split, pre = prepared_small
    model = fit_classical_baseline(split, pre, seed=7, **baseline_options()).model
    raw = split.test.drop(columns=["target", "mean radius"]).head(2)
    with pytest.raises(ValueError, match="mean radius"):
        model.predict(raw)


def test_multiclass_dataset_trains_and_scores():
    frame, _ = load_table("sklearn:wine")
    split = stratified_split(frame, "target", 0.3, 0)
    pre = fit_preprocessor(split, 3, (0.0, math.pi * 0.2), seed=0)
    trained = fit_quantum_kernel_model(split, pre, seed=0)
    assert len(trained.evaluation.labels) == 3
    assert np.asarray(trained.evaluation.confusion_matrix).shape == (3, 3)
    assert trained.evaluation.roc_fpr == []  # ROC curve only for binary problems
    assert 0.0 <= trained.evaluation.metrics["roc_auc"] <= 1.0


def test_bundles_hold_model_evaluation_and_plots(prepared_small, tmp_path):
    split, pre = prepared_small
    outcome = run_quantum_step(split, pre, tmp_path / "q", quantum_options(seed=7))
    assert outcome.status == "ok" and outcome.reason is None
    qb = outcome.bundle
    cb = train_classical(split, pre, tmp_path / "c", seed=7, **baseline_options())
    assert {p.name for p in qb.plots} == {"confusion_matrix.png", "roc.png", "kernel_heatmap.png"}
    assert {p.name for p in cb.plots} == {"confusion_matrix.png", "roc.png"}
    again = load_bundle(tmp_path / "q")
    assert again.info.quantum["backend"] == "statevector"
    assert again.info.quantum["calibration_hash"] == outcome.calibration["calibration_hash"]
    assert (tmp_path / "q" / "calibration.json").is_file()
    assert again.info.quantum["feature_map"]["n_qubits"] == 4
    assert again.info.evaluation.metrics == qb.info.evaluation.metrics
    raw = split.test.drop(columns=["target"]).head(4)
    np.testing.assert_array_equal(again.load_model().predict(raw), qb.load_model().predict(raw))
