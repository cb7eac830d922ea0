"""The compiled KFP IR YAML: loads back, has the expected tasks and parameters, carries the
image settings, every task's retry policy and resources, each parameter's description,
integer defaults as integers, the crash fallback of the quantum task, and never a secret."""

from __future__ import annotations

import json

import pytest
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
    conditions = [t["triggerPolicy"].get("condition", "") for t in nested if "triggerPolicy" in t]
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
    # every task runs as the images' non-root user (KFP drops capabilities itself)
    assert all(
        spec["securityContext"]
        == {"runAsUser": "10001", "runAsGroup": "10001", "runAsNonRoot": True}
        for spec in executors.values()
    ), {n: s.get("securityContext") for n, s in executors.items()}


def test_only_the_preflight_and_register_steps_get_the_mlflow_gate_account(tmp_path):
    docs = list(yaml.safe_load_all(compile_pipeline(tmp_path).read_text()))
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_mlflow = {
        name: ref
        for name, spec in executors.items()
        for ref in spec.get("secretAsEnv", [])
        if any(k["envVar"].startswith("MLFLOW_TRACKING_") for k in ref["keyToEnv"])
    }
    talks_to_mlflow = {n for n in executors if "register" in n} | {"exec-check-promotion-policy"}
    assert set(with_mlflow) == talks_to_mlflow, sorted(with_mlflow)
    for ref in with_mlflow.values():
        assert ref["optional"] is True
        assert ref["secretNameParameter"]["componentInputParameter"].endswith("mlflow_secret_name")
        assert {k["envVar"] for k in ref["keyToEnv"]} == {
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
        }


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


# ---- task settings, parameter descriptions, integer defaults --------------------------


def _tasks(ir):
    """(task name, task spec, TASK_SETTINGS key) of every container task in every DAG."""
    import re

    for comp in (ir["root"], *ir["components"].values()):
        for name, task in comp.get("dag", {}).get("tasks", {}).items():
            ref = task["componentRef"]["name"]
            if "executorLabel" in ir["components"][ref]:
                yield name, task, re.sub(r"-\d+$", "", ref.removeprefix("comp-"))


def test_every_task_has_its_retry_policy(tmp_path):
    from pipelines.config import TASK_SETTINGS

    tasks = list(_tasks(_ir(tmp_path)))
    assert {key for _, _, key in tasks} == set(TASK_SETTINGS)  # every entry is used
    for name, task, key in tasks:
        settings = TASK_SETTINGS[key]
        assert task["retryPolicy"] == {
            "maxRetryCount": settings.retries,
            "backoffDuration": settings.backoff,
            "backoffFactor": settings.backoff_factor,
            "backoffMaxDuration": settings.backoff_max,
        }, name
    by_name = {name: task for name, task, _ in tasks}
    # the quantum task re-runs a crashed pod once (its backend faults are handled inside)
    assert by_name["train-quantum-model"]["retryPolicy"]["maxRetryCount"] == 1
    assert by_name["train-quantum-model-2"]["retryPolicy"]["backoffDuration"] == "60s"


def test_the_local_pipeline_has_no_retry_policies():
    from google.protobuf import json_format

    from pipelines.retraining import local_pipeline

    ir = json_format.MessageToDict(local_pipeline().pipeline_spec)
    tasks = list(_tasks(ir))
    assert tasks and not [name for name, task, _ in tasks if "retryPolicy" in task]


def test_every_task_has_cpu_and_memory_requests_and_limits(tmp_path):
    from pipelines.config import RESOURCE_KINDS, TASK_SETTINGS, Resources

    ir = _ir(tmp_path)
    executors = ir["deploymentSpec"]["executors"]
    fields = (
        "resourceCpuRequest",
        "resourceCpuLimit",
        "resourceMemoryRequest",
        "resourceMemoryLimit",
    )
    for name, task, key in _tasks(ir):
        label = ir["components"][task["componentRef"]["name"]]["executorLabel"]
        resources = executors[label]["container"]["resources"]
        wanted = TASK_SETTINGS[key].resources
        if isinstance(wanted, Resources):
            assert [resources[f] for f in fields] == [
                wanted.cpu_request,
                wanted.cpu_limit,
                wanted.memory_request,
                wanted.memory_limit,
            ], name
            assert resources["cpuLimit"] > 0 and resources["memoryLimit"] > 0  # old backends too
        else:  # the pipeline parameters of its group, resolved by the backend at run time
            assert [resources[f] for f in fields] == [
                f"{{{{$.inputs.parameters['pipelinechannel--{wanted}_{kind}']}}}}"
                for kind in RESOURCE_KINDS
            ], name
    groups = {key: TASK_SETTINGS[key].resources for key in TASK_SETTINGS}
    assert groups["train-quantum-model"] == groups["compute-kernel-tile"] == "quantum"
    assert {groups[k] for k in ("prepare-data", "train-classical-model", "register-model")} == {
        "step"
    }
    # the resource parameters are pipeline parameters with defaults
    root = ir["root"]["inputDefinitions"]["parameters"]
    defaults = PipelineConfig()
    for group in ("quantum", "step"):
        for kind in RESOURCE_KINDS:
            assert root[f"{group}_{kind}"]["defaultValue"] == getattr(defaults, f"{group}_{kind}")


def test_the_quantum_memory_limit_covers_the_quantum_steps_budget():
    from pipelines.config import QUANTUM_MEMORY_MARGIN, memory_bytes

    defaults = PipelineConfig()
    limit = memory_bytes(defaults.quantum_memory_limit, "quantum_memory_limit")
    assert limit == defaults.quantum_max_memory_mb * QUANTUM_MEMORY_MARGIN * 2**20
    defaults.validate()


def test_every_parameter_has_its_description_in_the_ir(tmp_path):
    from pipelines.config import parameter_docs

    docs = parameter_docs()
    root = _ir(tmp_path)["root"]["inputDefinitions"]["parameters"]
    assert set(root) == set(docs) == set(PipelineConfig.names())
    for name, spec in root.items():
        assert spec["description"] == docs[name].text(), name
    assert "Allowed: 'none', 'mean', 'median', 'most_frequent'." in root["impute"]["description"]
    assert "Allowed: 'zz', 'angle'." in root["feature_map"]["description"]
    assert "Allowed: '', 'disabled', 'dry_run', 'enabled'." in root["promotion_mode"]["description"]
    assert "'auto', 'fidelity', 'nystroem', 'projected'" in root["quantum_method"]["description"]
    assert root["quantum_max_memory_mb"]["description"].endswith("Unit: MiB.")
    assert root["quantum_max_seconds"]["description"].endswith("Unit: seconds.")


def test_qubeflow_params_shows_the_same_descriptions_allowed_values_and_units(capsys):
    import json

    from components.data.validation import IMPUTE_STRATEGIES
    from components.quantum.methods import METHODS
    from components.registry.policy import MODES
    from pipelines.cli import main
    from pipelines.config import parameter_docs

    assert main(["params", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == PipelineConfig.names()
    for name, doc in parameter_docs().items():
        assert rows[name]["description"] == doc.description and rows[name]["unit"] == doc.unit
        assert rows[name]["default"] == getattr(PipelineConfig(), name)
    assert rows["impute"]["choices"] == list(IMPUTE_STRATEGIES)
    assert rows["feature_map"]["choices"] == ["zz", "angle"]
    assert rows["promotion_mode"]["choices"] == ["", *MODES]
    assert rows["quantum_method"]["choices"] == list(METHODS)
    assert rows["quantum_max_memory_mb"]["unit"] == "MiB"
    assert rows["quantum_memory_limit"]["unit"].startswith("bytes")
    assert main(["params"]) == 0
    text = capsys.readouterr().out
    assert "allowed: 'none' | 'mean' | 'median' | 'most_frequent'" in text
    assert "unit: MiB" in text and "qiskit-aer?noise=FakeManilaV2" in text


def test_integer_defaults_compile_as_integers(tmp_path):
    path = compile_pipeline(tmp_path)
    text = path.read_text()
    ir = next(yaml.safe_load_all(text))
    ints = {
        name: spec["defaultValue"]
        for name, spec in ir["root"]["inputDefinitions"]["parameters"].items()
        if spec["parameterType"] == "NUMBER_INTEGER"
    }
    assert ints["n_qubits"] == 8 and len(ints) == sum(
        t is int for t in PipelineConfig.types().values()
    )
    assert all(type(v) is int for v in ints.values()), ints
    assert "#    n_qubits: int [Default: 8]\n" in text  # KFP's header comment agrees
    assert "defaultValue: 8.0" not in text
    # floats stay floats; the file still loads back as a component
    assert ir["root"]["inputDefinitions"]["parameters"]["quantum_max_memory_mb"][
        "defaultValue"
    ] == pytest.approx(8192.0)
    assert load_component_from_file(str(path)).component_spec.inputs["n_qubits"].default == 8


def test_every_input_a_task_takes_from_its_dag_is_declared_by_that_dag(tmp_path):
    """What the backend (and kfp.local) resolve: a task's componentInputParameter must be an
    input of the DAG it is in (the resource parameters reach tasks nested in dsl.If and
    ParallelFor groups too)."""
    ir = _ir(tmp_path)
    for comp_name, comp in (("root", ir["root"]), *ir["components"].items()):
        declared = set(comp.get("inputDefinitions", {}).get("parameters", {}))
        for name, task in comp.get("dag", {}).get("tasks", {}).items():
            for arg in task.get("inputs", {}).get("parameters", {}).values():
                ref = arg.get("componentInputParameter")
                assert ref is None or ref in declared, (comp_name, name, ref)


def test_a_crashed_quantum_task_has_a_classical_registration_that_compiles_for_the_cluster(
    tmp_path,
):
    """register-after-quantum-crash runs after its quantum task whatever the outcome: what
    the KFP backend compiles into an Argo exit hook of that one task (so it may depend on
    nothing else and nothing may depend on it), and kfp.local runs after the task too."""
    ir = _ir(tmp_path)
    found = {}
    for comp_name, comp in ir["components"].items():
        tasks = comp.get("dag", {}).get("tasks", {})
        for name, task in tasks.items():
            if name.startswith("register-after-quantum-crash"):
                found[name] = (comp_name, task, tasks)
    assert set(found) == {"register-after-quantum-crash", "register-after-quantum-crash-2"}
    for name, (comp_name, task, siblings) in found.items():
        quantum = "train-quantum-model" + name.removeprefix("register-after-quantum-crash")
        assert quantum in siblings, comp_name  # in the same route as its quantum task
        assert task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        assert task["dependentTasks"] == [quantum]
        params = task["inputs"]["parameters"]
        assert params["quantum_task"] == {"taskFinalStatus": {"producerTask": quantum}}
        assert params["quantum_fallback"]["componentInputParameter"].endswith("quantum_fallback")
        artifacts = task["inputs"]["artifacts"]
        assert "classical_model" in artifacts and "quantum_model" not in artifacts
        # a leaf: no other task depends on it or reads its outputs
        for other_name, other in siblings.items():
            assert name not in other.get("dependentTasks", []), other_name
            assert name not in json.dumps(other.get("inputs", {})), other_name
        # the quantum task's own registry step is skipped when it fails: it reads its model
        register = "register-model" + name.removeprefix("register-after-quantum-crash")
        assert (
            siblings[register]["inputs"]["artifacts"]["quantum_model"]["taskOutputArtifact"][
                "producerTask"
            ]
            == quantum
        )
    assert "register-after-quantum-crash" not in json.dumps(ir["root"]["dag"].get("outputs", {}))
    spec = ir["components"]["comp-register-after-quantum-crash"]["inputDefinitions"]
    assert spec["parameters"]["quantum_task"]["parameterType"] == "TASK_FINAL_STATUS"
    # KFP requires every upstream-produced input of such a task to be optional
    assert all(a.get("isOptional") for a in spec["artifacts"].values())
    # and it is the classical side's step: the base image, the step resources
    executors = ir["deploymentSpec"]["executors"]
    crash = executors["exec-register-after-quantum-crash"]["container"]
    assert crash["image"] == executors["exec-register-model"]["container"]["image"]
    assert "step_memory_limit" in crash["resources"]["resourceMemoryLimit"]


def test_the_crash_registration_registers_only_after_a_failed_quantum_task():
    from components.steps.register_model.crash import TASK_CRASHED, quantum_crash_reason

    reason = quantum_crash_reason(
        "FAILED", "train-quantum-model-2", "pod OOMKilled", fallback="classical"
    )
    assert reason.startswith(f"{TASK_CRASHED}: quantum task train-quantum-model-2 ended FAILED")
    assert reason.endswith("KFP: pod OOMKilled")
    for state in ("SUCCEEDED", "CANCELED", "SKIPPED"):
        assert quantum_crash_reason(state, "q", "", fallback="classical") is None
    # quantum_fallback=fail: the run fails with its quantum task, nothing is registered
    assert quantum_crash_reason("FAILED", "q", "", fallback="fail") is None


def test_the_preflight_reads_the_quantum_image_allow_list_from_the_cluster(tmp_path):
    """The allow-list is a ConfigMap with a fixed name, not a parameter a submitter sets;
    the quantum step (the IBM token's only holder) runs after the preflight."""
    from components.quantum.image_policy import ALLOWLIST_CONFIGMAP, ALLOWLIST_ENV

    docs = list(yaml.safe_load_all(compile_pipeline(tmp_path).read_text()))
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    [ref] = executors["exec-check-promotion-policy"]["configMapAsEnv"]
    assert ref["configMapName"] == ALLOWLIST_CONFIGMAP and ref["optional"] is True
    assert ref["keyToEnv"] == [{"configMapKey": ALLOWLIST_ENV, "envVar": ALLOWLIST_ENV}]
    assert ALLOWLIST_ENV.lower() not in docs[0]["root"]["inputDefinitions"]["parameters"]
