"""Publishing to a real MLflow registry (SQLite store): lineage, registration, the gate,
aliases, and that a failure at any point leaves nothing half-written."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from components.errors import RegistryError
from components.registry import mlflow_names as names
from components.registry.history import read_history
from components.registry.lock import lock_name
from components.registry.publish import publish
from tests.support import publish_request

NAME = "test-classifier"


def _request(bundles, policy: dict | None = None, **kw):
    return publish_request(bundles, policy, name=NAME, **kw)


def test_publish_registers_promotes_and_records_lineage(bundles, sqlite_tracking_uri):
    result = publish(_request(bundles), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    assert result.version == "1" and result.decision.promoted
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(NAME, "challenger")  # cleared on promotion
    mv = client.get_model_version(NAME, "1")
    # The version carries what a reader scans; metrics and lineage are on its run.
    assert set(mv.tags) == {
        names.TAG_MODEL_KIND,
        names.TAG_QUANTUM_BACKEND,
        names.TAG_QUANTUM_CALIBRATION_HASH,
        names.TAG_QUANTUM_LIFT_PREFIX + "roc_auc",
        names.TAG_GATE_DECISION,
        names.TAG_GATE_APPLIED,
        names.TAG_GATE_MODE,
        names.TAG_GATE_REASONS,
    }
    assert mv.tags[names.TAG_GATE_DECISION] == "promote"
    assert mv.tags[names.TAG_QUANTUM_BACKEND] == "statevector"
    assert mv.tags[names.TAG_MODEL_KIND] == "quantum"
    q, c = (b.info.evaluation.metrics["roc_auc"] for b in bundles[2:4])
    assert float(mv.tags["quantum.lift.roc_auc"]) == pytest.approx(q - c, abs=1e-6)
    run = client.get_run(result.run_id)
    assert run.data.tags[names.TAG_GIT_COMMIT] == "abc123"
    assert run.data.metrics["quantum.roc_auc"] == pytest.approx(q)
    assert run.data.tags[names.TAG_MODEL_TASK] == "binary"
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.TAG_QUANTUM_ENABLED] == "true"
    assert run.data.tags[names.TAG_DATASET_URI] == "sklearn:breast_cancer"
    assert run.data.tags["versions.scikit-learn"]
    assert {"quantum.roc_auc", "classical.roc_auc", "quantum.train_seconds"} <= set(
        run.data.metrics
    )
    assert run.data.params["n_qubits"] == "4"
    contexts = sorted(d.tags[0].value for d in run.inputs.dataset_inputs)
    assert contexts == ["testing", "training"]
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots/quantum")}
    assert "plots/quantum/kernel_heatmap.png" in artifacts
    decision = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{names.ARTIFACT_DECISION}")
    assert decision["outcome"] == "promote" and decision["candidate_version"] == "1"


def test_worse_candidate_becomes_challenger_and_champion_stays(bundles, sqlite_tracking_uri):
    publish(_request(bundles), sqlite_tracking_uri)
    strict = {"thresholds": {"roc_auc": 0.999}}
    result = publish(_request(bundles, policy=strict), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    assert result.version == "2" and not result.decision.promoted
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"
    mv = client.get_model_version(NAME, "2")
    assert mv.tags[names.TAG_GATE_DECISION] == "reject"
    assert "< 0.999" in mv.tags[names.TAG_GATE_REASONS]
    assert mv.tags[names.TAG_GATE_APPLIED] == "false"
    record = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{names.ARTIFACT_DECISION}")
    assert record["champion_version_at_decision"] == "1"


def test_champion_model_predicts_raw_rows_as_pyfunc(bundles, sqlite_tracking_uri):
    publish(_request(bundles), sqlite_tracking_uri)
    mlflow.set_tracking_uri(sqlite_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    raw = bundles[0].test.drop(columns=["target"]).head(6)
    expected = bundles[2].load_model().predict(raw)
    assert list(model.predict(raw)) == list(expected)
    with pytest.raises(mlflow.exceptions.MlflowException, match="mean radius"):
        model.predict(raw.drop(columns=["mean radius"]))


@pytest.mark.parametrize(
    "fail_at", ["create_model_version", "set_model_version_tag", "set_registered_model_alias"]
)
def test_failure_leaves_nothing_half_written(bundles, sqlite_tracking_uri, monkeypatch, fail_at):
    first = publish(_request(bundles), sqlite_tracking_uri)  # v1 is champion
    client = MlflowClient(sqlite_tracking_uri)
    original = getattr(MlflowClient, fail_at)

    calls = []

    def broken(self, *args, **kwargs):
        calls.append(args)
        if fail_at == "set_registered_model_alias" and (args[1] != "champion" or len(calls) > 1):
            return original(self, *args, **kwargs)  # fail the champion move once; undo works
        raise ConnectionError("server went away")

    monkeypatch.setattr(MlflowClient, fail_at, broken)
    with pytest.raises(RegistryError, match="server went away") as e:
        publish(
            _request(bundles, {"champion": {"roc_auc": {"max_regression": 1.0}}}),
            sqlite_tracking_uri,
        )
    monkeypatch.undo()
    assert "undone:" in str(e.value)
    versions = client.search_model_versions(f"name='{NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == first.version
    runs = client.search_runs([first.experiment_id], run_view_type=3)  # ALL, incl. deleted
    failed = [r for r in runs if r.info.run_id != first.run_id]
    assert len(failed) == 1
    assert failed[0].info.status == "FAILED" and failed[0].info.lifecycle_stage == "deleted"
    assert [e.version for e in read_history(client, NAME)] == ["1"]  # no entry for the failure
    assert client.search_registered_models(f"name='{lock_name(NAME)}'") == []


def test_failure_on_first_publish_removes_the_registered_model(
    bundles, sqlite_tracking_uri, monkeypatch
):
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


def _aliases(client, name=NAME):
    return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}


def test_dry_run_records_the_full_decision_and_moves_nothing(bundles, sqlite_tracking_uri):
    first = publish(_request(bundles), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    result = publish(_request(bundles, {"mode": "dry_run"}), sqlite_tracking_uri)
    assert result.decision.outcome == "promote" and result.decision.mode == "dry_run"
    assert _aliases(client) == {"champion": first.version}  # no champion, no challenger move
    mv = client.get_model_version(NAME, result.version)
    assert (
        mv.tags[names.TAG_GATE_DECISION],
        mv.tags[names.TAG_GATE_MODE],
        mv.tags[names.TAG_GATE_APPLIED],
    ) == ("promote", "dry_run", "false")
    record = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/{names.ARTIFACT_DECISION}")
    assert record["mode"] == "dry_run" and record["applied"] == "false"
    assert record["policy_hash"] == result.decision.policy.hash
    assert record["champion_version_at_decision"] == first.version
    assert {r["rule"] for r in record["rules"]} >= {
        "threshold.roc_auc",
        "champion.roc_auc",
        "lineage.git_commit",
    }
    assert len(read_history(client, NAME)) == 1
    assert "DRY RUN: would promote" in result.decision.to_markdown()


def test_disabled_gate_registers_without_evaluating(bundles, sqlite_tracking_uri):
    result = publish(_request(bundles, {"mode": "disabled"}), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    assert result.decision.outcome == "skipped" and result.champion_version is None
    assert _aliases(client) == {}
    assert client.get_model_version(NAME, "1").tags[names.TAG_GATE_DECISION] == "skipped"


def test_classical_baseline_is_registered_when_the_quantum_lift_is_short(
    bundles, sqlite_tracking_uri
):
    policy = {"quantum": {"min_lift": {"roc_auc": 0.5}}}
    result = publish(_request(bundles, policy), sqlite_tracking_uri)
    mv = MlflowClient(sqlite_tracking_uri).get_model_version(NAME, result.version)
    assert result.candidate_kind == "classical" and mv.tags[names.TAG_MODEL_KIND] == "classical"
    assert "quantum lift below the policy's min_lift" in result.candidate_reason
    q = bundles[2].info.evaluation.metrics["roc_auc"]
    run = MlflowClient(sqlite_tracking_uri).get_run(result.run_id)
    assert run.data.metrics["quantum.roc_auc"] == pytest.approx(q, abs=1e-6)
    assert result.decision.promoted
    lift = next(r for r in result.decision.rules if r.rule == "quantum_lift.roc_auc")
    assert lift.kind == "choice" and lift.verdict == "classical baseline"
    assert "classical baseline registered instead" in mv.tags[names.TAG_GATE_REASONS]
    rejecting = {"quantum": {"min_lift": {"roc_auc": 0.5}, "when_baseline_wins": "reject"}}
    result = publish(_request(bundles, rejecting), sqlite_tracking_uri)
    assert result.candidate_kind == "quantum" and result.decision.outcome == "reject"
    assert result.decision.reasons[0].startswith("quantum roc_auc")


def test_promotions_append_to_the_history(bundles, sqlite_tracking_uri):
    client = MlflowClient(sqlite_tracking_uri)
    publish(_request(bundles), sqlite_tracking_uri)
    publish(_request(bundles, {"thresholds": {"roc_auc": 0.999}}), sqlite_tracking_uri)
    third = publish(_request(bundles), sqlite_tracking_uri)
    history = read_history(client, NAME)
    assert [(e.version, e.previous, e.action) for e in history] == [
        ("1", None, "promote"),
        ("3", "1", "promote"),
    ]
    assert history[1].policy_hash == third.decision.policy.hash
    assert history[1].run_id == third.run_id and history[1].actor == "pipeline:local"
    assert client.get_model_version(NAME, "3").tags[names.TAG_GATE_APPLIED] == "true"
    assert _aliases(client) == {"champion": "3"}  # v2's challenger alias cleared


def _iris_request(tmp_path):
    """A classical iris model (4 inputs, 3 classes) offered as a version of the same name."""
    import math

    from components.data.preprocessing import fit_preprocessor, stratified_split
    from components.data.sources import load_table
    from components.steps.train_classical.step import train_classical
    from tests.step_options import baseline_options

    frame, source = load_table("sklearn:iris")
    split = stratified_split(frame, "target", 0.25, 7)
    pre = fit_preprocessor(split, 4, (0.0, math.pi * 0.1), seed=7)
    classical = train_classical(split, pre, tmp_path / "c", seed=7, **baseline_options())
    return split, source, classical


def test_an_incompatible_candidate_is_rejected_with_its_differences(
    bundles, sqlite_tracking_uri, tmp_path
):
    import dataclasses

    publish(_request(bundles), sqlite_tracking_uri)  # breast cancer: 30 inputs, 2 classes
    split, source, classical = _iris_request(tmp_path)
    loose = {"thresholds": {}, "champion": {}, "lineage": {"required": []}}
    req = dataclasses.replace(
        _request(bundles, policy=loose),
        baseline=classical,
        quantum=None,
        quantum_enabled=False,
        dataset=source,
        train=split.train,
        test=split.test,
        calibration=None,
    )
    result = publish(req, sqlite_tracking_uri)
    assert not result.decision.promoted  # even with every metric rule switched off
    compat = result.decision.rules[0]
    assert compat.rule == "compatibility" and not compat.passed
    assert "30 input column(s) missing: mean radius" in compat.detail
    assert "4 input column(s) added: sepal length (cm)" in compat.detail
    assert "labels ['0', '1', '2'] instead of the champion's ['0', '1']" in compat.detail
    client = MlflowClient(sqlite_tracking_uri)
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    mv = client.get_model_version(NAME, result.version)
    assert client.get_run(result.run_id).data.tags[names.TAG_MODEL_TASK] == "multiclass"
    assert "incompatible with champion v1" in mv.tags[names.TAG_GATE_REASONS]


def test_a_champion_registered_before_interface_tags_is_read_from_its_signature(
    bundles, sqlite_tracking_uri
):
    publish(_request(bundles), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    run_id = client.get_model_version(NAME, "1").run_id
    for tag in (names.TAG_MODEL_INPUTS, names.TAG_MODEL_LABELS, names.TAG_MODEL_TASK):
        client.delete_tag(run_id, tag)
    result = publish(_request(bundles), sqlite_tracking_uri)
    compat = result.decision.rules[0]
    # read from v1's signature: its columns, not its labels (the signature has none)
    assert compat.passed and compat.detail == "same 30 input columns as champion v1"


def test_a_dry_run_by_hand_leaves_the_enabled_record_unchanged(bundles, sqlite_tracking_uri):
    from components.registry.policy import parse_policy
    from components.registry.promotion import history_report, promote_version
    from tests.support import TEST_POLICY

    publish(_request(bundles), sqlite_tracking_uri)  # v1 champion
    strict = {"thresholds": {"roc_auc": 0.999}}
    second = publish(_request(bundles, strict), sqlite_tracking_uri)  # v2 rejected: challenger
    client = MlflowClient(sqlite_tracking_uri)
    before = dict(client.get_model_version(NAME, "2").tags)
    artifacts = {a.path for a in client.list_artifacts(second.run_id, "gate")}

    dry = promote_version(
        client, NAME, "2", parse_policy(TEST_POLICY).with_mode("dry_run"), actor="cli:auditor"
    )
    assert dry.promoted and dry.mode == "dry_run" and dry.applied == "false"
    assert dict(client.get_model_version(NAME, "2").tags) == before  # the enabled record
    assert before[names.TAG_GATE_MODE] == "enabled" and before[names.TAG_GATE_DECISION] == "reject"
    assert _aliases(client) == {"champion": "1", "challenger": "2"}
    # ... and the dry run is a record of its own: a history entry and its JSON artifact.
    entries = read_history(client, NAME)
    assert [(e.action, e.mode, e.outcome, e.version) for e in entries] == [
        ("promote", "enabled", "promote", "1"),
        ("decision", "dry_run", "promote", "2"),
    ]
    assert entries[1].kind == "dry run: would promote" and entries[1].actor == "cli:auditor"
    new = {a.path for a in client.list_artifacts(second.run_id, "gate/decisions")}
    assert len(new) == 1 and next(iter(new)).endswith("-dry_run.json")
    assert artifacts <= {a.path for a in client.list_artifacts(second.run_id, "gate")}
    record = mlflow.artifacts.load_dict(f"runs:/{second.run_id}/{next(iter(new))}")
    assert record["mode"] == "dry_run" and record["actor"] == "cli:auditor"
    # The dry run moved nothing: the champion's history and a rollback ignore it.
    report = history_report(client, NAME)
    assert report.champion == "1" and report.warnings == []
    text = report.to_text()
    assert "dry run: would promote" in text and "promoted" in text

    # An enabled re-evaluation by hand is a new record too; v2's own record stays as it was.
    applied = promote_version(client, NAME, "2", parse_policy(TEST_POLICY), actor="cli:ops")
    assert applied.promoted and applied.applied == "true"
    assert dict(client.get_model_version(NAME, "2").tags) == before
    assert [(e.action, e.version) for e in read_history(client, NAME)][-1] == ("promote", "2")


def test_identical_retrains_do_not_churn_the_champion(bundles, sqlite_tracking_uri):
    default_churn = {"churn": {"primary_metric": "roc_auc", "min_improvement": 0.002}}
    results = [publish(_request(bundles, default_churn), sqlite_tracking_uri) for _ in range(3)]
    client = MlflowClient(sqlite_tracking_uri)
    assert [r.version for r in results] == ["1", "2", "3"]
    assert _aliases(client) == {"champion": "1", "challenger": "3"}
    for r in results[1:]:
        churn = next(x for x in r.decision.rules if x.rule == "churn")
        assert churn.verdict == "keep champion v1" and r.decision.kept_champion
        assert r.decision.headline().startswith("KEPT champion v1")
        assert [x.rule for x in r.decision.rules if not x.passed] == ["churn"]
    assert [e.version for e in read_history(client, NAME)] == ["1"]


def test_what_the_mlflow_ui_shows(bundles, sqlite_tracking_uri, monkeypatch):
    """MLflow's own conventions: classic-ML experiment, source and commit, a descriptive run
    name and description linking the KFP run, metrics linked to the test dataset, and a
    registered model whose description says what it predicts."""
    monkeypatch.setenv("QUBEFLOW_KFP_UI_URL", "https://kubeflow.example.org/pipeline/")
    result = publish(_request(bundles), sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    experiment = client.get_experiment(result.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    run = client.get_run(result.run_id)
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == "abc123"
    assert tags["mlflow.source.name"].startswith("qubeflow-retraining")
    assert tags["kfp.run_url"] == "https://kubeflow.example.org/pipeline/#/runs/details/job-1"
    import re

    assert re.fullmatch(rf"{NAME}-quantum-statevector-\d{{8}}-\d{{6}}", run.info.run_name)
    note = tags["mlflow.note.content"]
    assert "sklearn:breast_cancer" in note and "(https://kubeflow.example.org/" in note
    assert "quantum step on `statevector`" in note
    test_digest = next(
        d.dataset.digest for d in run.inputs.dataset_inputs if d.tags[0].value == "testing"
    )
    # The model's metrics are linked to the dataset they were measured on (the UI's
    # "Datasets used"); the run's held-out metrics are logged against it too.
    [model] = client.search_logged_models(
        experiment_ids=[result.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    linked = {m.key: (m.dataset_name, m.dataset_digest) for m in model.metrics}
    # exactly the candidate's held-out metrics, each linked (no unlinked copies of the run's)
    candidate = bundles[2].info.evaluation.metrics
    assert linked == {k: ("breast_cancer-test", test_digest) for k in candidate}
    description = client.get_registered_model(NAME).description
    assert description.startswith("Predicts `target` (binary: 0, 1) from 30 numeric input")
    # A model created by an earlier release keeps no generic description.
    client.update_registered_model(NAME, description=names.OLD_MODEL_DESCRIPTION)
    publish(_request(bundles), sqlite_tracking_uri)
    assert client.get_registered_model(NAME).description == description
