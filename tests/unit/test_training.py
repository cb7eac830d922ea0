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
    x_test, y_test = split.xy("test")
    for trained in (quantum, classical):
        ev = trained.evaluation
        assert set(ev.metrics) == set(METRIC_NAMES)
        assert ev.n_test == len(split.test) == 143
        assert ev.labels == ["0", "1"]
        cm = np.asarray(ev.confusion_matrix)
        assert cm.shape == (2, 2) and cm.sum() == ev.n_test
        assert cm.sum(axis=1).tolist() == np.bincount(y_test).tolist()  # rows: true labels
        # The model predicts from raw feature rows (names and all), one 0/1 label per row,
        # and the reported metrics are those of these predictions.
        predicted = trained.model.predict(x_test)
        assert predicted.shape == (len(split.test),) and set(predicted) == {0, 1}
        assert ev.metrics["accuracy"] == pytest.approx(np.mean(predicted == y_test))
        assert ev.metrics["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
        assert ev.roc_fpr[0] == 0.0 and ev.roc_tpr[-1] == 1.0  # a full binary ROC curve
    # Real signal on the real Wisconsin split (4 qubits, 426 train / 143 test rows): about
    # 0.99 each; the thresholds leave room for library updates, not for a broken model.
    assert classical.evaluation.metrics["roc_auc"] > 0.95
    assert classical.evaluation.metrics["balanced_accuracy"] > 0.9
    assert quantum.evaluation.metrics["roc_auc"] > 0.9
    assert quantum.evaluation.metrics["balanced_accuracy"] > 0.85
    assert quantum.gram.shape == (len(split.train), len(split.train))
    np.testing.assert_allclose(np.diag(quantum.gram), 1.0, atol=1e-9)  # fidelity kernel
    np.testing.assert_allclose(quantum.gram, quantum.gram.T, atol=1e-12)
    assert list(quantum.model.named_steps) == ["preprocess", "quantum_kernel", "classifier"]


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
    ev = trained.evaluation
    assert ev.labels == ["0", "1", "2"]
    cm = np.asarray(ev.confusion_matrix)
    assert cm.shape == (3, 3) and cm.sum() == ev.n_test == len(split.test)
    assert ev.roc_fpr == []  # ROC curve only for binary problems
    x_test, y_test = split.xy("test")
    predicted = trained.model.predict(x_test)
    assert predicted.shape == (len(split.test),) and set(predicted) == {0, 1, 2}
    assert ev.metrics["accuracy"] == pytest.approx(np.mean(predicted == y_test))
    # one-vs-rest ROC AUC (macro) about 0.99, accuracy about 0.93 on 54 test rows
    assert ev.metrics["roc_auc"] > 0.9 and ev.metrics["accuracy"] > 0.8


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
    raw = split.test.drop(columns=["target"])
    predicted = again.load_model().predict(raw)
    np.testing.assert_array_equal(predicted, qb.load_model().predict(raw))
    assert predicted.shape == (len(split.test),) and set(predicted) <= {0, 1}
    classical = load_bundle(tmp_path / "c")
    assert classical.info.kind == "classical" and classical.info.quantum == {}
    assert classical.info.evaluation.metrics == cb.info.evaluation.metrics
    assert classical.info.feature_columns == split.feature_columns
    np.testing.assert_array_equal(classical.load_model().predict(raw), cb.load_model().predict(raw))
