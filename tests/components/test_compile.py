"""The compiled KFP IR YAML: loads back, has the expected tasks and parameters, carries the
image settings, and never a secret."""

from __future__ import annotations

import yaml
from kfp.components import load_component_from_file

from pipelines.config import PipelineConfig
from pipelines.retraining import compile_pipeline


def test_compiled_pipeline_loads_back_with_all_parameters(tmp_path):
    path = compile_pipeline(tmp_path)
    assert path.name == "retraining.yaml"
    component = load_component_from_file(str(path))
    inputs = component.component_spec.inputs
    assert set(inputs) == set(PipelineConfig.names())
    defaults = PipelineConfig()
    for name, spec in inputs.items():
        assert spec.default == getattr(defaults, name), name


def test_compiled_pipeline_has_the_quantum_branch_and_swappable_image(tmp_path):
    ir = _ir(tmp_path)
    root_tasks = ir["root"]["dag"]["tasks"]
    assert {"prepare-data", "train-classical-model"} <= set(root_tasks)
    nested = [
        t
        for comp in ir["components"].values()
        if "dag" in comp
        for t in comp["dag"]["tasks"].values()
    ]
    conditions = [t["triggerPolicy"]["condition"] for t in nested if "triggerPolicy" in t]
    # one route per run, decided by plan-kernel-tiles: single | fanout | classical (else)
    assert any("route" in c and "'single'" in c for c in conditions)
    assert any("route" in c and "'fanout'" in c for c in conditions)
    assert any("route" in c and "!" in c for c in conditions)  # the Else branch
    all_tasks = {
        name for comp in ir["components"].values() if "dag" in comp for name in comp["dag"]["tasks"]
    }
    assert {
        "train-quantum-model",
        "train-quantum-model-2",
        "register-model",
        "register-model-2",
        "register-model-3",
        "compute-kernel-tile",
        "assemble-kernel",
    } <= all_tasks
    executors = ir["deploymentSpec"]["executors"]
    for task in ("train-quantum-model", "plan-kernel-tiles", "compute-kernel-tile"):
        # resolved from the pipeline parameter at run time: the backend family's image
        assert "quantum_image" in executors[f"exec-{task}"]["container"]["image"], task
    assert executors["exec-prepare-data"]["container"]["image"].endswith(
        "qubeflow-base:" + defaults_tag()
    )


def test_nothing_trains_before_the_policy_is_checked(tmp_path):
    ir = _ir(tmp_path)
    root_tasks = ir["root"]["dag"]["tasks"]
    assert "check-promotion-policy" in root_tasks
    assert "check-promotion-policy" in root_tasks["train-classical-model"]["dependentTasks"]
    # the route (kernel tiles, quantum training) waits for it too
    assert "check-promotion-policy" in root_tasks["plan-kernel-tiles"]["dependentTasks"]
    nested = {
        name: t
        for comp in ir["components"].values()
        if "dag" in comp
        for name, t in comp["dag"]["tasks"].items()
    }
    policy_in = nested["register-model"]["inputs"]["artifacts"]["promotion_policy"]
    assert "check-promotion-policy" in str(policy_in)


def _ir(tmp_path):
    return next(yaml.safe_load_all(compile_pipeline(tmp_path).read_text()))


def test_kubernetes_settings_keep_the_ibm_token_on_the_quantum_step(tmp_path):
    docs = list(yaml.safe_load_all(compile_pipeline(tmp_path).read_text()))
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_ibm = {
        name
        for name, spec in executors.items()
        for ref in spec.get("secretAsEnv", [])
        if any(k["envVar"] == "QISKIT_IBM_TOKEN" for k in ref["keyToEnv"])
    }
    assert with_ibm == {"exec-train-quantum-model", "exec-train-quantum-model-2"}
    quantum = executors["exec-train-quantum-model"]
    ibm = quantum["secretAsEnv"][0]
    assert ibm["optional"] is True
    assert ibm["secretNameParameter"]["componentInputParameter"].endswith("quantum_secret_name")
    assert quantum["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"].endswith(
        "quantum_node_selector"
    )
    assert quantum["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith(
        "quantum_tolerations"
    )
    s3 = executors["exec-prepare-data"]["secretAsEnv"][0]
    assert {k["envVar"] for k in s3["keyToEnv"]} == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL_S3",
    }
    assert all(spec["imagePullPolicy"] == "IfNotPresent" for spec in executors.values())


def defaults_tag() -> str:
    from components.image_refs import TAG

    return TAG


def test_no_secret_reaches_the_compiled_yaml(tmp_path, monkeypatch):
    secrets = {
        "QISKIT_IBM_TOKEN": "tok-ibm-0123456789abcdef",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-0123456789",
        "MLFLOW_TRACKING_PASSWORD": "mlflow-pass-0123",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    text = compile_pipeline(tmp_path).read_text()
    for value in secrets.values():
        assert value not in text
