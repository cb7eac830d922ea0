"""The run's preflight against real endpoints: a real ``mlflow server`` answers, a closed port
does not, and a whole run pointed at a closed port fails in its first task, before any data is
read (the basic-auth cases are in test_mlflow_auth.py)."""

from __future__ import annotations

import pytest

from components.errors import RegistryError
from components.registry.client import STARTING_SERVER_WAIT_ENV
from components.registry.preflight import check_tracking_server
from pipelines.config import PipelineConfig
from pipelines.local import PipelineRunError, run_locally
from pipelines.mlflow_server import LocalMlflowServer, free_port


def test_a_running_server_passes_and_a_closed_port_is_named(mlflow_server, monkeypatch):
    monkeypatch.delenv(STARTING_SERVER_WAIT_ENV, raising=False)
    assert "answers (anonymous requests); artifact store answers" in check_tracking_server(
        mlflow_server.uri
    )
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match="cannot reach the MLflow tracking server") as e:
        check_tracking_server(closed)
    assert e.value.field == "mlflow_tracking_uri"
    assert "no server to check" in check_tracking_server("sqlite:///x.db")


def test_a_server_this_run_starts_is_left_to_the_registry_step(monkeypatch):
    monkeypatch.setenv(STARTING_SERVER_WAIT_ENV, "60")
    closed = f"http://127.0.0.1:{free_port()}"
    assert "started by this run, not checked" in check_tracking_server(closed)


def test_a_run_pointed_at_a_closed_port_fails_in_its_first_task(tmp_path):
    """Nothing is read or trained: the preflight is the only task that ran."""
    config = PipelineConfig(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PipelineRunError, match="cannot reach the MLflow tracking server") as e:
        run_locally(config, state_dir=tmp_path)
    assert e.value.task == "check-promotion-policy" and e.value.field == "mlflow_tracking_uri"
    ran = {p.name for p in (tmp_path / "kfp_outputs").glob("*/*") if p.is_dir()}
    assert ran <= {"check-promotion-policy"}, ran


def test_a_quantum_image_off_the_allow_list_stops_the_run_before_any_step(tmp_path, monkeypatch):
    """The allow-list comes from the environment (a ConfigMap on a cluster); an image off it
    fails the preflight, so the quantum step (and the IBM token) never comes to it."""
    from components.quantum.image_policy import ALLOWLIST_ENV

    monkeypatch.setenv(ALLOWLIST_ENV, "ghcr.io/qubeflow/")
    config = PipelineConfig(quantum_image="docker.io/someone/quantum:latest")
    with pytest.raises(PipelineRunError, match="not on this cluster's quantum image") as e:
        run_locally(config, state_dir=tmp_path)
    assert e.value.task == "check-promotion-policy" and e.value.field == "quantum_image"
    ran = {p.name for p in (tmp_path / "kfp_outputs").glob("*/*") if p.is_dir()}
    assert ran <= {"check-promotion-policy"}, ran


def test_an_artifact_store_the_server_cannot_reach_fails_the_preflight(
    tmp_path, s3_endpoint, monkeypatch
):
    """A server proxying artifacts to S3 (moto on loopback): a missing bucket fails the
    preflight naming the store (a store that does not answer gives HTTP 500, the same path);
    with the bucket it passes."""
    import boto3

    monkeypatch.delenv(STARTING_SERVER_WAIT_ENV, raising=False)
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env = {**keys, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    bucket = "qf-preflight-artifacts"
    with LocalMlflowServer(
        tmp_path, env=env, artifacts_destination=f"s3://{bucket}/mlflow"
    ) as server:
        with pytest.raises(RegistryError, match="its artifact store does not") as e:
            check_tracking_server(server.uri)
        assert e.value.field == "mlflow_tracking_uri" and "bucket does not exist" in str(e.value)
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=bucket)
        assert "artifact store answers" in check_tracking_server(server.uri, "exp-preflight")
        from mlflow import MlflowClient

        client = MlflowClient(server.uri)
        client.create_experiment("exp-proxied")  # mlflow-artifacts:/<id>: through the proxy
        client.create_experiment("exp-direct", artifact_location="s3://elsewhere/x")
        assert "artifact store answers" in check_tracking_server(server.uri, "exp-proxied")
        direct = check_tracking_server(server.uri, "exp-direct")
        assert "go to s3://elsewhere/x, not through the server: not checked" in direct
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # the probe wrote nothing
        s3.delete_bucket(Bucket=bucket)
        with pytest.raises(RegistryError, match="bucket does not exist"):
            check_tracking_server(server.uri, "exp-proxied")
