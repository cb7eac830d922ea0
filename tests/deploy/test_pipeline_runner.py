"""The pipeline pods' own service account: deployed with only what KFP's driver/launcher and
Argo's executor need, named by the scheduled retraining's submit, and sent by ``qubeflow
submit --service-account`` in the run and recurring-run requests (to a loopback KFP API)."""

from __future__ import annotations

import json

import pytest

from components.errors import ConfigError
from pipelines.config import PipelineConfig
from pipelines.submit import PIPELINE_SERVICE_ACCOUNT, prepare, submit
from tests.deploy.test_manifests import OVERLAYS, pod_specs, render
from tests.fakes.kfp_api import FakeKfpApi

CLUSTER = PipelineConfig(mlflow_tracking_uri="http://qubeflow-mlflow:5000")
#: Everything the account may do: (apiGroup, resource, verb, resourceNames).
ALLOWED = {
    ("", "configmaps", "get", ("kfp-launcher",)),
    ("", "secrets", "get", ("mlpipeline-minio-artifact",)),  # KFP's artifact store keys only
    ("", "pods", "get", ()),
    ("", "pods", "watch", ()),
    ("argoproj.io", "workflowtaskresults", "create", ()),
    ("argoproj.io", "workflowtaskresults", "patch", ()),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_runner_account_may_do_only_what_kfp_and_argo_need(overlay):
    objs = render(overlay)
    named = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objs
        if o["metadata"]["name"] == PIPELINE_SERVICE_ACCOUNT
    }
    assert set(named) == {
        ("ServiceAccount", PIPELINE_SERVICE_ACCOUNT),
        ("Role", PIPELINE_SERVICE_ACCOUNT),
        ("RoleBinding", PIPELINE_SERVICE_ACCOUNT),
    }
    granted = {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in named["Role", PIPELINE_SERVICE_ACCOUNT]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == ALLOWED  # no other Secret, no pod creation, no wildcard
    binding = named["RoleBinding", PIPELINE_SERVICE_ACCOUNT]
    assert binding["roleRef"]["name"] == PIPELINE_SERVICE_ACCOUNT
    [subject] = binding["subjects"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount", PIPELINE_SERVICE_ACCOUNT)
    assert subject["namespace"] == binding["metadata"]["namespace"]  # this namespace only


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_scheduled_retraining_submits_runs_as_that_account(overlay):
    [(_, pod)] = pod_specs([o for o in render(overlay) if o["kind"] == "CronJob"])
    [container] = pod["containers"]
    args = container["args"]
    assert args[args.index("--service-account") + 1] == PIPELINE_SERVICE_ACCOUNT
    assert pod["serviceAccountName"] != PIPELINE_SERVICE_ACCOUNT  # submitter != runner


def test_submit_sends_the_service_account_with_the_run_and_the_dry_run_shows_it(tmp_path):
    with FakeKfpApi() as api:
        with prepare(
            CLUSTER, host=api.url, service_account=PIPELINE_SERVICE_ACCOUNT, out_dir=tmp_path
        ) as sub:
            shown = json.loads(json.dumps(sub.to_dict()))
            assert submit(sub) == {"run_id": "run-1"}
        [run] = api.bodies("POST", "/runs")
    assert run["service_account"] == PIPELINE_SERVICE_ACCOUNT
    assert shown["service_account"] == PIPELINE_SERVICE_ACCOUNT
    assert shown["request"]["body"]["service_account"] == PIPELINE_SERVICE_ACCOUNT


def test_a_recurring_run_carries_the_service_account(tmp_path, monkeypatch):
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    with FakeKfpApi() as api:
        sub = prepare(
            CLUSTER,
            host=api.url,
            recurring="0 3 * * *",
            service_account=PIPELINE_SERVICE_ACCOUNT,
            out_dir=tmp_path,
        )
        submit(sub)
        [job] = api.bodies("POST", "/recurringruns")
    assert job["service_account"] == PIPELINE_SERVICE_ACCOUNT


def test_without_the_option_kfp_picks_its_default_account(tmp_path):
    with FakeKfpApi() as api:
        submit(prepare(CLUSTER, host=api.url, out_dir=tmp_path))
        [run] = api.bodies("POST", "/runs")
    assert not run.get("service_account")


@pytest.mark.parametrize("name", ["Qubeflow", "runner_1", "-runner", "a" * 254, "x y"])
def test_a_name_kubernetes_would_refuse_is_refused_before_compiling(name, tmp_path):
    with pytest.raises(ConfigError) as err:
        prepare(CLUSTER, host="http://kfp:8888", service_account=name, out_dir=tmp_path)
    assert err.value.field == "--service-account"
    assert not list(tmp_path.iterdir())  # nothing compiled
