"""Publishing to a real MLflow registry (SQLite store): lineage, registration, the gate,
aliases, and that a failure at any point leaves nothing half-written."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from components.data.sources import load_table
from components.errors import RegistryError
from components.registry import lineage as L
from components.registry.gate import PromotionPolicy
from components.registry.publish import PublishRequest, publish
from components.training.quantum_step import QuantumOptions, run_quantum_step
from components.training.train import train_classical

NAME = "test-classifier"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, request):
    split, pre = request.getfixturevalue("prepared_small")
    root = tmp_path_factory.mktemp("bundles")
    _, source = load_table("sklearn:breast_cancer")
    quantum = run_quantum_step(split, pre, root / "q", QuantumOptions(seed=7)).bundle
    return split, source, quantum, train_classical(split, pre, root / "c", seed=7)


def _request(bundles, policy: PromotionPolicy | None = None, **kw) -> PublishRequest:
    split, source, quantum, classical = bundles
    return PublishRequest(model_name=NAME, candidate=quantum, baseline=classical, quantum=quantum,
                          quantum_enabled=True, quantum_backend="statevector", dataset=source,
                          train=split.train, test=split.test, label_column="target",
                          policy=policy or PromotionPolicy(), params={"n_qubits": 4, "seed": 7},
                          lineage_tags={L.TAG_GIT_COMMIT: "abc123", L.TAG_KFP_JOB_ID: "job-1"},
                          profile_markdown="## profile\n", **kw)


def test_publish_registers_promotes_and_records_lineage(bundles, sqlite_tracking_uri):
    result = publish(_request(bundles), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    assert result.version == "1" and result.decision.promoted
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(NAME, "challenger")  # cleared on promotion
    mv = client.get_model_version(NAME, "1")
    assert mv.tags[L.TAG_GATE_DECISION] == "promote"
    assert mv.tags[L.TAG_QUANTUM_BACKEND] == "statevector"
    assert mv.tags[L.TAG_MODEL_KIND] == "quantum"
    assert mv.tags[L.TAG_GIT_COMMIT] == "abc123"
    assert float(mv.tags["metric.roc_auc"]) == pytest.approx(
        bundles[2].info.evaluation.metrics["roc_auc"], abs=1e-6)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[L.TAG_QUANTUM_ENABLED] == "true"
    assert run.data.tags[L.TAG_DATASET_URI] == "sklearn:breast_cancer"
    assert run.data.tags["versions.scikit-learn"]
    assert {"quantum.roc_auc", "classical.roc_auc", "quantum.train_seconds"} <= set(run.data.metrics)
    assert run.data.params["n_qubits"] == "4"
    contexts = sorted(d.tags[0].value for d in run.inputs.dataset_inputs)
    assert contexts == ["testing", "training"]
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots/quantum")}
    assert "plots/quantum/kernel_heatmap.png" in artifacts
    decision = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{L.ARTIFACT_DECISION}")
    assert decision["outcome"] == "promote" and decision["candidate_version"] == "1"


def test_worse_candidate_becomes_challenger_and_champion_stays(bundles, sqlite_tracking_uri):
    publish(_request(bundles), sqlite_tracking_uri)
    strict = PromotionPolicy(min_value=0.999)
    result = publish(_request(bundles, policy=strict), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    assert result.version == "2" and not result.decision.promoted
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"
    mv = client.get_model_version(NAME, "2")
    assert mv.tags[L.TAG_GATE_DECISION] == "reject"
    assert "< threshold 0.999" in mv.tags[L.TAG_GATE_REASONS]
    assert mv.tags[L.TAG_GATE_CHAMPION_AT_DECISION] == "1"


def test_champion_model_predicts_raw_rows_as_pyfunc(bundles, sqlite_tracking_uri):
    publish(_request(bundles), sqlite_tracking_uri)
    mlflow.set_tracking_uri(sqlite_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    raw = bundles[0].test.drop(columns=["target"]).head(6)
    expected = bundles[2].load_model().predict(raw)
    assert list(model.predict(raw)) == list(expected)
    with pytest.raises(mlflow.exceptions.MlflowException, match="mean radius"):
        model.predict(raw.drop(columns=["mean radius"]))


@pytest.mark.parametrize("fail_at", ["create_model_version", "set_model_version_tag",
                                     "set_registered_model_alias"])
def test_failure_leaves_nothing_half_written(bundles, sqlite_tracking_uri, monkeypatch, fail_at):
    first = publish(_request(bundles), sqlite_tracking_uri)  # v1 is champion
    client = MlflowClient(sqlite_tracking_uri)
    original = getattr(MlflowClient, fail_at)

    def broken(self, *args, **kwargs):
        if fail_at == "set_registered_model_alias" and args[1] != "champion":
            return original(self, *args, **kwargs)  # let challenger move, fail on champion
        raise ConnectionError("server went away")

    monkeypatch.setattr(MlflowClient, fail_at, broken)
    with pytest.raises(RegistryError, match="server went away") as e:
        publish(_request(bundles, policy=PromotionPolicy(max_regression=1.0)), sqlite_tracking_uri)
    monkeypatch.undo()
    assert "undone:" in str(e.value)
    versions = client.search_model_versions(f"name='{NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == first.version
    runs = client.search_runs([first.experiment_id], run_view_type=3)  # ALL, incl. deleted
    failed = [r for r in runs if r.info.run_id != first.run_id]
    assert len(failed) == 1
    assert failed[0].info.status == "FAILED" and failed[0].info.lifecycle_stage == "deleted"


def test_failure_on_first_publish_removes_the_registered_model(bundles, sqlite_tracking_uri,
                                                                monkeypatch):
    def broken(self, *args, **kwargs):
        raise ConnectionError("boom")

    monkeypatch.setattr(MlflowClient, "create_model_version", broken)
    with pytest.raises(RegistryError):
        publish(_request(bundles), sqlite_tracking_uri)
    monkeypatch.undo()
    assert MlflowClient(sqlite_tracking_uri).search_registered_models() == []


def test_unreachable_server_is_a_clear_error(bundles):
    from pipelines.mlflow_server import free_port

    with pytest.raises(RegistryError, match="cannot reach the MLflow tracking server") as e:
        publish(_request(bundles), f"http://127.0.0.1:{free_port()}")
    assert e.value.field == "mlflow_tracking_uri"
