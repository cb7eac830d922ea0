"""The real pipeline, through KFP's local runner, against a real ``mlflow server`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from components.errors import ConfigError
from components.registry import mlflow_names as names
from pipelines.config import PipelineConfig
from pipelines.local import PipelineRunError, run_locally
from tests.support import QUANTUM_CANDIDATE_POLICY as QUANTUM_CANDIDATE


def _config(server, name: str, **changes) -> PipelineConfig:
    return PipelineConfig(
        mlflow_tracking_uri=server.uri,
        registered_model_name=name,
        experiment_name=f"exp-{name}",
        **changes,
    )


def test_default_pipeline_registers_a_champion_that_serves_raw_rows(mlflow_server, tmp_path):
    name = "e2e-default"
    result = run_locally(
        _config(mlflow_server, name, promotion_policy=QUANTUM_CANDIDATE), state_dir=tmp_path
    )
    s = result.summary
    assert s["decision"] == "promote" and s["model_version"] == "1"
    assert s["candidate_kind"] == "quantum" and s["gate_applied"] == "true"
    assert s["metrics"]["quantum"]["roc_auc"] > 0.95
    assert s["metrics"]["classical"]["roc_auc"] > 0.95

    client = MlflowClient(mlflow_server.uri)
    champion = client.get_model_version_by_alias(name, names.ALIAS_CHAMPION)
    assert champion.version == "1"
    tags = champion.tags  # what a reader scans; the rest of the lineage is on the run
    assert tags[names.TAG_QUANTUM_BACKEND] == "statevector"
    assert tags[names.TAG_MODEL_KIND] == "quantum" and tags[names.TAG_GATE_DECISION] == "promote"
    assert len(tags[names.TAG_QUANTUM_CALIBRATION_HASH]) == 64
    assert tags[names.TAG_QUANTUM_METHOD] == "fidelity"
    assert names.TAG_QUANTUM_LIFT_PREFIX + "roc_auc" in tags and len(tags) <= 10
    run = client.get_run(s["run_id"])
    rt = run.data.tags
    assert rt[names.TAG_QUANTUM_ENABLED] == "true" and rt[names.TAG_QUANTUM_FALLBACK] == "false"
    assert rt[names.TAG_QUANTUM_BACKEND_KIND] == "exact-simulator"
    assert rt[names.TAG_KFP_JOB_NAME].startswith("qubeflow-retraining-")
    assert rt[names.TAG_GIT_COMMIT] not in ("", "unknown")
    assert run.data.params["dataset"] == "sklearn:breast_cancer"
    assert run.data.tags[names.TAG_KFP_TASK] == "register-model"  # the default route
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "breast_cancer-train",
        "breast_cancer-test",
    }

    # A fresh process loads the champion and predicts from raw feature rows.
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).sample(8, random_state=0)
    rows = tmp_path / "rows.json"
    raw.to_json(rows, orient="split")
    code = (
        "import sys, json, mlflow, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/{name}@champion'); "
        f"x = pd.read_json({str(rows)!r}, orient='split'); "
        "print(json.dumps([int(v) for v in m.predict(x)]))"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
        check=True,
    )
    predictions = json.loads(out.stdout.strip().splitlines()[-1])
    truth = load_breast_cancer(as_frame=True).frame.loc[raw.index, "target"].to_numpy()
    assert len(predictions) == 8 and np.mean(np.array(predictions) == truth) >= 0.75


def test_quantum_disabled_skips_the_quantum_step(mlflow_server, tmp_path):
    name = "e2e-classical"
    result = run_locally(_config(mlflow_server, name, quantum_enabled=False), state_dir=tmp_path)
    assert set(result.summary["metrics"]) == {"classical"}
    client = MlflowClient(mlflow_server.uri)
    mv = client.get_model_version(name, result.summary["model_version"])
    assert client.get_run(mv.run_id).data.tags[names.TAG_QUANTUM_ENABLED] == "false"
    assert mv.tags[names.TAG_QUANTUM_BACKEND] == "none"
    assert mv.tags[names.TAG_MODEL_KIND] == "classical"
    assert names.TAG_QUANTUM_FALLBACK not in mv.tags  # off is not a fallback
    assert names.TAG_QUANTUM_CALIBRATION_HASH not in mv.tags
    assert not list(Path(result.pipeline_root).glob("*/train-quantum-model"))
    artifacts = MlflowClient(mlflow_server.uri).list_artifacts(result.summary["run_id"])
    assert "calibration" not in {a.path for a in artifacts}


def _csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _table(n=80, k=5, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"f{i}" for i in range(k)])
    df["y"] = np.arange(n) % 2
    return df


BAD_INPUTS = {
    "missing label": (
        lambda t: {"dataset": _csv(t, _table()), "label_column": "label"},
        "label_column",
        "column 'label' is not in the dataset",
    ),
    "one class": (
        lambda t: {"dataset": _csv(t, _table().assign(y=1)), "label_column": "y"},
        "label_column",
        "single class",
    ),
    "NaNs": (
        lambda t: {"dataset": _csv(t, _table().assign(f0=np.nan)), "label_column": "y"},
        "dataset",
        "missing values",
    ),
    "text columns": (
        lambda t: {"dataset": _csv(t, _table().assign(city="Oslo")), "label_column": "y"},
        "dataset",
        "non-numeric",
    ),
    "too few rows": (
        lambda t: {
            "dataset": _csv(t, _table(n=6)),
            "label_column": "y",
            "min_samples_per_class": 2,
        },
        "dataset",
        "too few",
    ),
    "more qubits than features": (
        lambda t: {"dataset": _csv(t, _table(k=3)), "label_column": "y", "n_qubits": 4},
        "n_qubits",
        "4 qubits need at least 4 features",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_clearly_and_writes_nothing(mlflow_server, tmp_path, case):
    make, field, message = BAD_INPUTS[case]
    name = "e2e-bad-" + case.replace(" ", "-").lower()
    with pytest.raises(PipelineRunError, match=message) as e:
        run_locally(
            _config(mlflow_server, name, **{"n_qubits": 2, **make(tmp_path)}), state_dir=tmp_path
        )
    assert e.value.field == field and e.value.task == "prepare-data"
    client = MlflowClient(mlflow_server.uri)
    assert client.search_registered_models(f"name='{name}'") == []
    assert client.get_experiment_by_name(f"exp-{name}") is None


@pytest.mark.parametrize("impute", ["mean", "median", "most_frequent"])
def test_imputed_data_trains_registers_and_serves_rows_with_gaps(mlflow_server, tmp_path, impute):
    """The remedy the NaN error names (``impute``) runs through registration: the champion
    (its preprocessor imputes) loads in a fresh process and predicts rows with gaps."""
    table = _table(n=120)
    table.loc[::6, "f1"] = np.nan
    name = f"e2e-impute-{impute.replace('_', '-')}"
    result = run_locally(
        _config(
            mlflow_server,
            name,
            dataset=_csv(tmp_path, table),
            label_column="y",
            n_qubits=2,
            impute=impute,
        ),
        state_dir=tmp_path,
    )
    assert result.summary["model_name"] == name and result.summary["model_version"] == "1"
    rows = tmp_path / "rows.json"
    table.drop(columns=["y"]).head(6).to_json(rows, orient="split")
    code = (
        "import json, mlflow, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/{name}/1'); "
        f"x = pd.read_json({str(rows)!r}, orient='split'); "
        "assert x.isna().any().any(); print(json.dumps([int(v) for v in m.predict(x)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri},
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(json.loads(out.stdout.strip().splitlines()[-1])) == 6


def test_unknown_dataset_name_is_rejected_before_running(mlflow_server, tmp_path):
    with pytest.raises(ConfigError, match="unknown built-in dataset 'sklearn:nope'"):
        run_locally(
            _config(mlflow_server, "e2e-unknown", dataset="sklearn:nope"), state_dir=tmp_path
        )


def test_unreadable_s3_object_fails_clearly(mlflow_server, tmp_path, s3_bucket, s3_env):
    name = "e2e-bad-s3"
    with pytest.raises(PipelineRunError, match="the object does not exist"):
        run_locally(
            _config(mlflow_server, name, dataset=f"s3://{s3_bucket}/absent.csv"), state_dir=tmp_path
        )
    assert MlflowClient(mlflow_server.uri).search_registered_models(f"name='{name}'") == []


def test_s3_dataset_runs_through_the_pipeline(mlflow_server, tmp_path, s3_bucket, s3_env):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    boto3.client("s3", endpoint_url=s3_env).put_object(
        Bucket=s3_bucket, Key="bc.parquet", Body=frame.to_parquet(index=False)
    )
    name = "e2e-s3"
    result = run_locally(
        _config(mlflow_server, name, dataset=f"s3://{s3_bucket}/bc.parquet", n_qubits=4),
        state_dir=tmp_path,
    )
    run = MlflowClient(mlflow_server.uri).get_run(result.summary["run_id"])
    assert run.data.tags[names.TAG_DATASET_URI] == f"s3://{s3_bucket}/bc.parquet"
    assert "testing-secret" not in json.dumps({**run.data.params, **run.data.tags})


def test_cli_run_prints_json_last_and_fails_with_exit_code(mlflow_server, tmp_path):
    exe = Path(sys.executable).with_name("qubeflow")
    base = [
        str(exe),
        "run",
        "--state-dir",
        str(tmp_path),
        "--set",
        f"mlflow_tracking_uri={mlflow_server.uri}",
        "--set",
        "registered_model_name=e2e-cli",
        "--set",
        "n_qubits=4",
    ]
    ok = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["model_name"] == "e2e-cli" and summary["quantum_backend"] == "statevector"
    assert summary["fallback"] is False and summary["decision"] in ("promote", "reject")
    assert "Qubeflow retraining finished" in ok.stderr
    bad = subprocess.run(
        [*base, "--set", "label_column=nope"], capture_output=True, text=True, timeout=600
    )
    assert bad.returncode == 2
    assert "label_column: column 'nope' is not in the dataset" in bad.stderr


def test_kernel_fan_out_through_parallel_for_equals_the_single_process_run(mlflow_server, tmp_path):
    """Nystroem with 64 landmarks, fan-out forced (kernel_fanout_min_seconds=0), tiles of
    150 rows: 3 train tiles + 1 test tile as ParallelFor tasks, each shipping rows x 64."""
    from components.data.prepared import load_prepared
    from components.quantum.nystroem import select_landmarks
    from components.quantum.tiles import load_kernel
    from components.quantum.transformers import NystroemQuantumFeatures

    name = "e2e-fanout"
    settings = {"n_qubits": 4, "quantum_method": "nystroem", "nystroem_landmarks": 64}
    result = run_locally(
        _config(mlflow_server, name, kernel_fanout_min_seconds=0, kernel_tile_rows=150, **settings),
        state_dir=tmp_path,
    )
    root = Path(result.pipeline_root)
    assert len(sorted(root.glob("*/**/compute-kernel-tile/block"))) == 4
    train, test = load_kernel(next(root.glob("*/assemble-kernel/kernel")))
    assert train.shape == (426, 64) and test.shape == (143, 64)  # rows x m, never N x N
    prep = next(root.glob("*/prepare-data"))
    split, pre, _ = load_prepared(
        *(str(prep / p) for p in ("train_data", "test_data", "preprocessor", "data_lineage"))
    )
    x_train, y_train = split.xy("train")
    single = NystroemQuantumFeatures(feature_map="zz", n_landmarks=64, random_state=42)
    single.fit(pre.transform(x_train), y_train)
    np.testing.assert_array_equal(
        single.landmark_index_, select_landmarks(426, 64, y=y_train, seed=42)
    )
    np.testing.assert_allclose(
        test, single.landmark_kernel(pre.transform(split.xy("test")[0])), atol=1e-6
    )
    log = Path(result.extra["log"]).read_text()
    assert "quantum route: fanout (4 tile(s)" in log and "tile 4/4 (test 0:143)" in log
    assert result.summary["quantum_tags"]["quantum.method"] == "nystroem"
    assert result.summary["quantum_tags"]["quantum.landmarks"] == "64"
    # Trained on the assembled features: the same model as without fan-out.
    alone = run_locally(
        _config(mlflow_server, name + "-single", **settings), state_dir=tmp_path / "single"
    )
    for metric, value in alone.summary["metrics"]["quantum"].items():
        assert result.summary["metrics"]["quantum"][metric] == pytest.approx(value, abs=1e-6)


def test_dry_run_records_a_full_decision_and_leaves_aliases_untouched(mlflow_server, tmp_path):
    """The documented default policy in mode dry_run, against an existing champion."""
    from tests.support import log_tiny_model

    name = "e2e-dry-run"
    client = MlflowClient(mlflow_server.uri)
    run_id, info = log_tiny_model(mlflow_server.uri, "e2e-dry-run-seed")
    client.create_registered_model(name)
    # The seeded champion takes the same inputs as the candidate (else `compatibility` rejects).
    from sklearn.datasets import load_breast_cancer

    from components.registry.compatibility import ModelInterface

    same = ModelInterface.of([(c, "double") for c in load_breast_cancer().feature_names], [0, 1])
    client.create_model_version(
        name,
        info.model_uri,
        run_id=run_id,
        tags={"metric.roc_auc": "0.5", **same.to_tags()},
        model_id=info.model_id,
    )
    client.set_registered_model_alias(name, names.ALIAS_CHAMPION, "1")

    result = run_locally(_config(mlflow_server, name, promotion_mode="dry_run"), state_dir=tmp_path)
    s = result.summary
    assert s["gate_mode"] == "dry_run" and s["gate_applied"] == "false"
    assert s["decision"] == "promote" and s["champion_version"] == "1"
    aliases = {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
    assert aliases == {names.ALIAS_CHAMPION: "1"}  # no champion move, no challenger
    mv = client.get_model_version(name, s["model_version"])
    assert mv.tags[names.TAG_GATE_MODE] == "dry_run" and mv.tags[names.TAG_GATE_APPLIED] == "false"
    record = json.loads(
        Path(client.download_artifacts(s["run_id"], names.ARTIFACT_DECISION)).read_text()
    )
    assert record["champion_version_at_decision"] == "1"
    rules = {r["rule"]: r for r in record["rules"]}
    assert rules["champion.roc_auc"]["threshold"] == pytest.approx(0.5)
    assert {
        "threshold.roc_auc",
        "threshold.balanced_accuracy",
        "fallback",
        "lineage.pipeline_run_id",
        "lineage.git_commit",
    } <= set(rules)
    assert all(r["passed"] for r in record["rules"])
    assert record["policy_hash"] == s["policy_hash"]
    markdowns = [
        p
        for p in Path(result.pipeline_root).rglob("decision")
        if p.is_file() and "DRY RUN: would promote" in p.read_text()
    ]
    assert markdowns and "| lineage.pipeline_run_id |" in markdowns[0].read_text()
