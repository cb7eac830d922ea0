"""Each KFP component's Python function called directly (``.python_func``) with real KFP
artifact objects, chained the way the pipeline chains them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp import dsl
from mlflow import MlflowClient

from components.errors import DataValidationError
from components.steps.check_policy.component import check_promotion_policy
from components.steps.prepare_data.component import prepare_data
from components.steps.register_model.component import register_model
from components.steps.train_classical.component import train_classical_model
from components.steps.train_quantum.component import train_quantum_model


def _art(cls, root: Path, name: str):
    return cls(name=name, uri=str(root / name), metadata={})


def _policy(
    root: Path, text: str = "thresholds: {roc_auc: 0.5}\nquantum: {min_lift: {}}\n", mode: str = ""
):
    """The check-promotion-policy step's output for a policy file holding ``text``."""
    path = root / "policy.yaml"
    path.write_text(text)
    out = _art(dsl.Artifact, root, "policy")
    check_promotion_policy.python_func(
        promotion_policy=str(path),
        promotion_mode=mode,
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",  # a store: no server to check
        experiment_name="",
        quantum_image="ghcr.io/qubeflow/qubeflow-base:test",
        policy=out,
    )
    return out


def test_policy_component_normalises_and_rejects_a_bad_policy(tmp_path):
    out = _policy(tmp_path, mode="dry_run")
    data = json.loads(Path(out.path).read_text())
    assert data["mode"] == "dry_run" and data["thresholds"] == {"roc_auc": 0.5}
    assert out.metadata["policy_hash"] and out.metadata["mode"] == "dry_run"
    from components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"thresholds\.roc_auc: must be in"):
        _policy(tmp_path, "thresholds: {roc_auc: 9}\n")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    outs = {
        n: _art(c, root, n)
        for n, c in [
            ("train_data", dsl.Dataset),
            ("test_data", dsl.Dataset),
            ("preprocessor", dsl.Model),
            ("data_lineage", dsl.Artifact),
            ("data_profile", dsl.Markdown),
            ("data_summary", dsl.Metrics),
        ]
    }
    prepare_data.python_func(
        dataset="sklearn:breast_cancer",
        label_column="target",
        n_qubits=4,
        feature_map="zz",
        reps=2,
        entanglement="linear",
        bandwidth=0.1,
        test_size=0.25,
        min_samples_per_class=10,
        impute="none",
        seed=3,
        quantum_method="auto",
        nystroem_landmarks=64,
        exact_max_rows=5000,
        classical_max_seconds=3600.0,
        **outs,
    )
    return root, outs


def test_prepare_data_writes_its_artifacts(prepared):
    _, outs = prepared
    assert outs["train_data"].metadata["rows"] == 426
    summary = outs["data_summary"].metadata
    assert 0 < summary.pop("baseline_estimate_seconds") < 5  # 426 rows: an SVC grid, ~0.6 s
    assert summary == {"rows": 569, "features": 30, "train_rows": 426, "test_rows": 143}
    assert "## Data profile" in Path(outs["data_profile"].path).read_text()
    lineage = json.loads(Path(outs["data_lineage"].path).read_text())
    assert lineage["source"]["uri"] == "sklearn:breast_cancer"


def test_prepare_data_fails_clearly(tmp_path):
    outs = {
        n: _art(c, tmp_path, n)
        for n, c in [
            ("train_data", dsl.Dataset),
            ("test_data", dsl.Dataset),
            ("preprocessor", dsl.Model),
            ("data_lineage", dsl.Artifact),
            ("data_profile", dsl.Markdown),
            ("data_summary", dsl.Metrics),
        ]
    }
    with pytest.raises(DataValidationError, match="column 'label'"):
        prepare_data.python_func(
            dataset="sklearn:breast_cancer",
            label_column="label",
            n_qubits=4,
            feature_map="zz",
            reps=2,
            entanglement="linear",
            bandwidth=0.1,
            test_size=0.25,
            min_samples_per_class=10,
            impute="none",
            seed=3,
            quantum_method="auto",
            nystroem_landmarks=64,
            exact_max_rows=5000,
            classical_max_seconds=3600.0,
            **outs,
        )
    assert not Path(outs["train_data"].path).exists()


def _train_outputs(root: Path, prefix: str):
    return {
        "model": _art(dsl.Model, root, f"{prefix}-model"),
        "metrics": _art(dsl.Metrics, root, f"{prefix}-metrics"),
        "classification_metrics": _art(dsl.ClassificationMetrics, root, f"{prefix}-cm"),
        "report": _art(dsl.HTML, root, f"{prefix}-report"),
    }


GUARDS = {
    "quantum_fallback": "classical",
    "quantum_max_shots": 0,
    "quantum_max_circuits": 0,
    "quantum_max_seconds": 0.0,
    "quantum_max_retries": 0,
    "quantum_max_memory_mb": 0.0,
    "quantum_method": "auto",
    "nystroem_landmarks": 64,
    "exact_max_rows": 5000,
}
SIZES = {"exact_max_rows": 5000, "nystroem_landmarks": 64}


def _no_fanout(root: Path):
    """The assemble step's output when the kernel was not fanned out."""
    from components.quantum.tiles import save_kernel

    art = _art(dsl.Artifact, root, "no-fanout-kernel")
    save_kernel(art.path, None, 1)
    return art


@pytest.fixture(scope="module")
def guards(prepared):
    """The quantum step's guard parameters, and the kernel input of a run without fan-out."""
    return {**GUARDS, "precomputed_kernel": _no_fanout(prepared[0])}


@pytest.fixture(scope="module")
def trained(prepared, guards):
    root, outs = prepared
    data = {k: outs[k] for k in ("train_data", "test_data", "preprocessor", "data_lineage")}
    classical = _train_outputs(root, "classical")
    train_classical_model.python_func(**data, seed=3, **SIZES, **classical)
    quantum = _train_outputs(root, "quantum")
    train_quantum_model.python_func(
        **data,
        feature_map="zz",
        reps=2,
        entanglement="linear",
        quantum_backend="statevector",
        seed=3,
        **guards,
        **quantum,
    )
    return data, classical, quantum


def test_training_components_fill_kfp_ui_outputs(trained):
    _, classical, quantum = trained
    for outs, kind in ((classical, "classical"), (quantum, "quantum")):
        assert outs["model"].metadata["kind"] == kind
        assert 0.9 < outs["metrics"].metadata["roc_auc"] <= 1.0
        cm = outs["classification_metrics"].metadata
        assert len(cm["confusionMatrix"]["rows"]) == 2 and cm["confidenceMetrics"]
        html = Path(outs["report"].path).read_text()
        assert html.count("data:image/png;base64") >= 2
    assert "kernel_heatmap" in Path(quantum["report"].path).read_text()


def test_register_component_publishes_and_returns_summary(trained, tmp_path, sqlite_tracking_uri):
    data, classical, quantum = trained
    decision = _art(dsl.Markdown, tmp_path, "decision")
    out = register_model.python_func(
        **data,
        classical_model=classical["model"],
        quantum_model=quantum["model"],
        mlflow_tracking_uri=sqlite_tracking_uri,
        registered_model_name="component-test",
        experiment_name="component-test",
        quantum_enabled=True,
        quantum_backend="statevector",
        quantum_image="example.org/q:1",
        promotion_policy=_policy(tmp_path),
        git_commit="deadbeef",
        kfp_job_name="job",
        kfp_job_id="1",
        kfp_task_name="register-model",
        decision=decision,
    )
    summary = json.loads(out)
    assert summary["decision"] == "promote" and summary["model_version"] == "1"
    assert set(summary["metrics"]) == {"quantum", "classical"}
    assert "PROMOTED" in Path(decision.path).read_text()
    run = MlflowClient(sqlite_tracking_uri).get_run(summary["run_id"])
    assert run.data.params["quantum_image"] == "example.org/q:1"
    assert run.data.tags["git.commit"] == "deadbeef"
    assert "mlflow_tracking_uri" not in run.data.params


def test_quantum_component_falls_back_and_register_says_why(
    trained, guards, tmp_path, monkeypatch, sqlite_tracking_uri
):
    """No IBM credentials: the step succeeds, says why, and the classical model is registered
    with the fallback tags (never promoted)."""
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    data, classical, _ = trained
    quantum = _train_outputs(tmp_path, "fallback")
    train_quantum_model.python_func(
        **data,
        feature_map="zz",
        reps=2,
        entanglement="linear",
        quantum_backend="ibm:ibm_brisbane",
        seed=3,
        **guards,
        **quantum,
    )
    meta = quantum["model"].metadata
    assert meta["fallback"] is True and meta["fallback_reason"].startswith("auth: ")
    assert quantum["metrics"].metadata["fallback"] == 1
    assert "FELL BACK" in Path(quantum["report"].path).read_text()
    out = register_model.python_func(
        **data,
        classical_model=classical["model"],
        quantum_model=quantum["model"],
        mlflow_tracking_uri=sqlite_tracking_uri,
        registered_model_name="fallback-test",
        experiment_name="component-test",
        quantum_enabled=True,
        quantum_backend="ibm:ibm_brisbane",
        quantum_image="example.org/q:1",
        promotion_policy=_policy(tmp_path),
        git_commit="deadbeef",
        kfp_job_name="job",
        kfp_job_id="2",
        kfp_task_name="register-model",
        decision=_art(dsl.Markdown, tmp_path, "decision"),
    )
    summary = json.loads(out)
    assert summary["fallback"] is True and "QISKIT_IBM_TOKEN" in summary["fallback_reason"]
    assert summary["decision"] == "reject" and set(summary["metrics"]) == {"classical"}
    mv = MlflowClient(sqlite_tracking_uri).get_model_version(
        "fallback-test", summary["model_version"]
    )
    assert mv.tags["quantum.fallback"] == "true"
    assert mv.tags["model.kind"] == "classical"
    run = MlflowClient(sqlite_tracking_uri).get_run(summary["run_id"])
    assert run.data.tags["quantum.fallback_reason"].startswith("auth: no IBM Quantum credentials")
    assert run.data.params["quantum_fallback"] == "classical"


def test_fan_out_components_plan_compute_assemble_and_train_on_the_result(trained, tmp_path):
    """The three fan-out components chained by hand, as ParallelFor runs them."""
    import numpy as np

    from components.quantum.tiles import load_kernel
    from components.steps.kernel_tiles.component import (
        assemble_kernel,
        compute_kernel_tile,
        plan_kernel_tiles,
    )

    data, _, _ = trained
    settings = {
        **GUARDS,
        "feature_map": "zz",
        "reps": 2,
        "entanglement": "linear",
        "quantum_backend": "statevector",
        "seed": 3,
        "quantum_method": "nystroem",
    }
    settings.pop("precomputed_kernel", None)
    route, tiles = plan_kernel_tiles.python_func(
        data_lineage=data["data_lineage"],
        quantum_enabled=True,
        **settings,
        kernel_fanout_min_seconds=0.0,
        kernel_tile_rows=200,
    )
    assert route == "fanout"
    assert [t["part"] for t in tiles] == ["train", "train", "train", "test"]
    assert {t["method"] for t in tiles} == {"nystroem"} and {t["landmarks"] for t in tiles} == {64}
    blocks = []
    for i, tile in enumerate(tiles):
        block = _art(dsl.Artifact, tmp_path, f"block-{i}")
        compute_kernel_tile.python_func(
            **data,
            tile=tile,
            feature_map="zz",
            reps=2,
            entanglement="linear",
            quantum_backend="statevector",
            seed=3,
            block=block,
        )
        blocks.append(block)
    kernel = _art(dsl.Artifact, tmp_path, "kernel")
    assemble_kernel.python_func(blocks=blocks, data_lineage=data["data_lineage"], kernel=kernel)
    assert kernel.metadata == {"fanout": True, "tiles": 4}
    train, test = load_kernel(kernel.path)
    assert train.shape == (426, 64) and test.shape == (143, 64)  # rows x m, never N x N
    fanned, single = _train_outputs(tmp_path, "fanned"), _train_outputs(tmp_path, "single")
    quantum_args = {k: v for k, v in settings.items() if k not in ("kernel_fanout_min_seconds",)}
    train_quantum_model.python_func(**data, precomputed_kernel=kernel, **quantum_args, **fanned)
    train_quantum_model.python_func(
        **data, precomputed_kernel=_no_fanout(tmp_path), **quantum_args, **single
    )
    assert fanned["model"].metadata["method"] == "nystroem"
    for name in ("roc_auc", "accuracy"):
        assert np.isclose(fanned["metrics"].metadata[name], single["metrics"].metadata[name])

    # Not worth it (estimated time below the threshold), fidelity, or shot-based: the quantum
    # step does the work itself, no tile task; quantum step off: the classical route.
    def plan(enabled=True, kernel_fanout_min_seconds=0.0, **changes):
        return tuple(
            plan_kernel_tiles.python_func(
                data_lineage=data["data_lineage"],
                quantum_enabled=enabled,
                **{**settings, **changes},
                kernel_fanout_min_seconds=kernel_fanout_min_seconds,
                kernel_tile_rows=200,
            )
        )

    assert plan(kernel_fanout_min_seconds=3600.0) == ("single", [])
    assert plan(quantum_method="fidelity") == ("single", [])
    assert plan(quantum_backend="qiskit-aer?shots=10") == ("single", [])
    assert plan(enabled=False) == ("classical", [])
