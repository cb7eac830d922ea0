"""Only the gate moves aliases: a real ``mlflow server --app-name basic-auth`` on loopback,
accounts provisioned by ``pipelines.mlflow_accounts``, and the permission matrix —
unauthenticated 401, a reader or the trainer account setting an alias 403, the gate account
registering and promoting through the real gate, and the whole pipeline run with it."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipelines.mlflow_accounts import main as accounts_main
from pipelines.mlflow_server import LocalMlflowServer

# One worker builds the module-scoped fixtures (a champion per method, a server) once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow-auth")]
ADMIN = ("admin", "admin-Pa55word-0001")
PASSWORDS = {"gate": "gate-Pa55word-0002", "trainer": "trainer-Pa55word-0003"}
READER = ("reader", "reader-Pa55word-0004")
EXPERIMENT, MODEL = "auth-retraining", "auth-classifier"


@contextlib.contextmanager
def as_user(user: str, password: str):
    """MLflow's client reads its basic-auth credentials from these variables."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, password
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-auth")
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {ADMIN[0]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],  # the server reads it from env, not argv
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key-0123456789abcdef",
    }
    with LocalMlflowServer(root / "store", app_name="basic-auth", env=env) as server:
        passwords = {f"QUBEFLOW_{u.upper()}_PASSWORD": p for u, p in PASSWORDS.items()}
        with as_user(*ADMIN):
            os.environ.update(passwords)
            try:
                code = accounts_main(
                    ["--tracking-uri", server.uri, "--experiment", EXPERIMENT, "--model", MODEL]
                )
                assert code == 0
                assert (
                    accounts_main(  # idempotent: a second provisioning changes nothing
                        ["--tracking-uri", server.uri, "--experiment", EXPERIMENT, "--model", MODEL]
                    )
                    == 0
                )
            finally:
                for key in passwords:
                    os.environ.pop(key, None)
            from mlflow.server import get_app_client

            get_app_client("basic-auth", tracking_uri=server.uri).create_user(*READER)
        yield server


def _status(call) -> int:
    try:
        call()
    except MlflowException as exc:
        return int(exc.get_http_status_code())
    return 200


def test_the_permission_matrix(auth_server, bundles):
    uri = auth_server.uri
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{uri}/api/2.0/mlflow/registered-models/get?name={MODEL}")
    assert e.value.code == 401  # no credentials, no access

    from components.registry.publish import publish
    from tests.support import publish_request

    # The gate account registers a version and promotes it, through the real gate.
    with as_user("gate", PASSWORDS["gate"]):
        req = publish_request(bundles, name=MODEL, experiment=EXPERIMENT)
        result = publish(req, uri)
        assert result.decision.promoted and result.champion_version == result.version
        gate = MlflowClient(uri)
        assert str(gate.get_model_version_by_alias(MODEL, "champion").version) == result.version
        # a failed publish's rollback deletes its run: the gate may
        exp_id = gate.get_experiment_by_name(EXPERIMENT).experiment_id
        scratch = gate.create_run(exp_id).info.run_id
        gate.delete_run(scratch)

    with as_user(*READER):
        reader = MlflowClient(uri)
        assert reader.get_registered_model(MODEL).name == MODEL  # UI users read
        assert _status(lambda: reader.set_registered_model_alias(MODEL, "champion", "1")) == 403
        assert _status(lambda: reader.delete_registered_model_alias(MODEL, "champion")) == 403
        assert _status(lambda: reader.create_run(exp_id)) == 403

    with as_user("trainer", PASSWORDS["trainer"]):
        trainer = MlflowClient(uri)
        run = trainer.create_run(exp_id)  # may log experiment runs ...
        trainer.log_metric(run.info.run_id, "roc_auc", 0.5)
        assert _status(lambda: trainer.delete_run(result.run_id)) == 403  # not the gate's run
        # ... but cannot touch the production model: no alias, no version, no tag
        assert _status(lambda: trainer.set_registered_model_alias(MODEL, "champion", "1")) == 403
        assert _status(lambda: trainer.delete_registered_model_alias(MODEL, "champion")) == 403
        assert (
            _status(lambda: trainer.set_registered_model_tag(MODEL, "gate.history.9", "{}")) == 403
        )
        assert (
            _status(
                lambda: trainer.create_model_version(
                    MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
                )
            )
            == 403
        )
    with as_user("gate", PASSWORDS["gate"]):
        assert str(MlflowClient(uri).get_model_version_by_alias(MODEL, "champion").version) == (
            result.version
        )


def test_provisioning_refuses_a_missing_password_before_writing(auth_server, capsys):
    with as_user(*ADMIN):
        code = accounts_main(["--tracking-uri", auth_server.uri, "--model", "never-created"])
        assert code == 2 and "QUBEFLOW_GATE_PASSWORD" in capsys.readouterr().err
        with pytest.raises(MlflowException):
            MlflowClient(auth_server.uri).get_registered_model("never-created")


@pytest.mark.e2e
def test_the_pipeline_runs_end_to_end_with_the_gate_account(auth_server, tmp_path):
    from pipelines.config import PipelineConfig
    from pipelines.local import run_locally

    config = PipelineConfig(
        mlflow_tracking_uri=auth_server.uri,
        registered_model_name=MODEL,
        experiment_name=EXPERIMENT,
        quantum_enabled=False,
        promotion_policy="tests/policies/quantum-candidate.yaml",
    )
    with as_user("gate", PASSWORDS["gate"]):  # the environment every local task inherits
        result = run_locally(config, state_dir=tmp_path)
        s = result.summary
        assert s["model_name"] == MODEL and s["model_version"]
        run = MlflowClient(auth_server.uri).get_run(s["run_id"])
    assert run.info.status == "FINISHED"
    written = str(run.data.params) + str(run.data.tags)
    assert PASSWORDS["gate"] not in written  # credentials never reach MLflow


def test_the_preflight_names_a_rejected_account_and_accepts_the_gate(auth_server, tmp_path):
    """Wrong or missing credentials fail the run's first task (HTTP 401 named), before any
    data is read; the gate account passes."""
    from components.errors import RegistryError
    from components.registry.preflight import check_tracking_server
    from pipelines.config import PipelineConfig
    from pipelines.local import PipelineRunError, run_locally

    with as_user("gate", PASSWORDS["gate"]):
        assert "answers (the account in MLFLOW_TRACKING_USERNAME)" in check_tracking_server(
            auth_server.uri
        )
    with pytest.raises(RegistryError, match="rejected anonymous requests"):
        check_tracking_server(auth_server.uri)
    rejected = r"rejected the account .* \(HTTP 401\)"
    with as_user("gate", "not-the-password"), pytest.raises(PipelineRunError, match=rejected) as e:
        run_locally(
            PipelineConfig(mlflow_tracking_uri=auth_server.uri, quantum_enabled=False),
            state_dir=tmp_path,
        )
    assert e.value.task == "check-promotion-policy" and e.value.field == "mlflow_tracking_uri"
    assert "not-the-password" not in str(e.value)
