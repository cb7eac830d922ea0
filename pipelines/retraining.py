"""The retraining pipeline (KFP v2).

    check-promotion-policy (policy valid, tracking server answers; nothing reads data before)
    └──► prepare-data ──► train-classical-model ──────────────────────────────┐
         └──► plan-kernel-tiles: route                                       ▼
              [single]   train-quantum-model ──────────────► register-model (policy picks)
              [fanout]   ParallelFor(tiles) ─► assemble ─► train-quantum-model ─► register-model
              [classical]                                    register-model (classical)
              [single, fanout] also: train-quantum-model ─(ended, any outcome)─►
                                     register-after-quantum-crash (acts if it failed)

plan-kernel-tiles picks the run's route once the data's size is known: "single" (the quantum
step does its own work), "fanout" (the method's estimated kernel time reaches
``kernel_fanout_min_seconds``: ParallelFor(compute-kernel-tile) -> assemble-kernel, each tile
shipping rows x m features, never N x N blocks, then the quantum step trains on them) or
"classical" (``quantum_enabled`` false). A route that does not run costs no task. The
quantum step runs in the container image given by the ``quantum_image`` parameter, within the ``quantum_max_*`` budget.
When its backend fails it falls back inside the step (``quantum_fallback=classical``): the
quantum branch's registry step then registers the classical baseline, tagged
``quantum.fallback=true`` with the reason. When the quantum *task* dies (pod OOM-killed,
evicted, node lost; after its retry), register-after-quantum-crash, which runs after it
whatever its outcome (``ignore_upstream_failure`` + ``PipelineTaskFinalStatus``), registers
the classical baseline tagged ``quantum.fallback=true``, reason ``task_crashed: ...``; KFP
still marks the run failed (one of its tasks did). The pipeline's output is the registry
step's JSON summary.

Every task gets its retry policy and pod resources from ``TASK_SETTINGS``
(pipelines/config.py); every parameter's description, allowed values and unit come from
``parameter_docs()`` there, through the pipeline function's docstring.
"""

import functools
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler, dsl, kubernetes
from kfp.compiler import pipeline_spec_builder
from kfp.dsl import base_component, pipeline_context

from components.image_refs import PULL_POLICY, PULL_SECRETS
from components.quantum.image_policy import ALLOWLIST_CONFIGMAP, ALLOWLIST_ENV
from components.steps.check_policy.component import check_promotion_policy
from components.steps.kernel_tiles.component import (
    assemble_kernel,
    compute_kernel_tile,
    plan_kernel_tiles,
)
from components.steps.prepare_data.component import prepare_data
from components.steps.register_model.component import (
    register_after_quantum_crash,
    register_model,
)
from components.steps.train_classical.component import train_classical_model
from components.steps.train_quantum.component import train_quantum_model
from components.steps.train_quantum.step import OPTION_PARAMETERS
from pipelines.config import (
    RESOURCE_KINDS,
    TASK_SETTINGS,
    PipelineConfig,
    Resources,
    pipeline_docstring,
)

PIPELINE_NAME = "qubeflow-retraining"
DESCRIPTION = "Hybrid quantum-classical retraining with MLflow registry promotion."
COMPILED_NAME = "retraining.yaml"
#: Kernel tiles computed at once (pods on a cluster, processes locally).
KERNEL_TILE_PARALLELISM = 4
#: Keys of the S3 Secret exposed to the data step (all optional).
S3_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3")
#: The MLflow client reads these (basic auth); from the Secret named by ``mlflow_secret_name``.
MLFLOW_SECRET_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
DEFAULTS = PipelineConfig()


#: The images' user (images/*/Dockerfile: USER 10001:10001); every task runs as it, never root.
TASK_UID = TASK_GID = 10001


def apply_cluster_settings(tasks) -> None:
    """Compile-time settings on every task of the pipeline (each new task gets them without
    being listed anywhere): image pull, and the non-root user it runs as (KFP adds
    no-privilege-escalation, all capabilities dropped and RuntimeDefault seccomp)."""
    for task in tasks:
        kubernetes.set_security_context(
            task, run_as_user=TASK_UID, run_as_group=TASK_GID, run_as_non_root=True
        )
        kubernetes.set_image_pull_policy(task, PULL_POLICY)
        if PULL_SECRETS:
            kubernetes.set_image_pull_secrets(task, PULL_SECRETS)


def apply_task_settings(tasks, parameters: dict[str, Any], *, retries: bool = True) -> None:
    """Each task's retry policy and pod resources from ``TASK_SETTINGS`` (by component name):
    fixed quantities, or the pipeline parameters of its resource group. A task whose
    component has no entry fails the compile."""
    for task in tasks:
        name = task.component_spec.name
        if name not in TASK_SETTINGS:
            raise KeyError(f"no TASK_SETTINGS entry for component {name!r} (pipelines/config.py)")
        settings = TASK_SETTINGS[name]
        res = settings.resources
        if not isinstance(res, Resources):
            channels = [parameters[f"{res}_{kind}"] for kind in RESOURCE_KINDS]
            res = Resources(*channels)
            # The resource setters do not record the channels as the task's inputs (kfp
            # 2.17), so a task inside dsl.If/ParallelFor would reference pipeline parameters
            # its group never receives; set_container_image registers them the same way.
            task.register_pipeline_channels(channels)
        task.set_cpu_request(res.cpu_request).set_cpu_limit(res.cpu_limit)
        task.set_memory_request(res.memory_request).set_memory_limit(res.memory_limit)
        if retries and settings.retries:
            task.set_retry(
                settings.retries,
                backoff_duration=settings.backoff,
                backoff_factor=settings.backoff_factor,
                backoff_max_duration=settings.backoff_max,
            )


def _documented(func):
    """The pipeline function with its parameters' descriptions as its docstring (KFP reads
    a Google-style ``Args:`` section into the IR)."""
    func.__doc__ = pipeline_docstring(DESCRIPTION)
    return func


def build_pipeline(*, retries: bool = True) -> base_component.BaseComponent:
    """The retraining pipeline. ``retries=False`` leaves out the tasks' retry policies: the
    local runner (``qubeflow run``) honours them and sleeps through their backoff, and a
    failure on this machine is bad input or a bug, not a lost node."""

    @dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)
    @_documented
    def retraining_pipeline(
        dataset: str = DEFAULTS.dataset,
        label_column: str = DEFAULTS.label_column,
        test_size: float = DEFAULTS.test_size,
        min_samples_per_class: int = DEFAULTS.min_samples_per_class,
        impute: str = DEFAULTS.impute,
        seed: int = DEFAULTS.seed,
        n_qubits: int = DEFAULTS.n_qubits,
        feature_map: str = DEFAULTS.feature_map,
        reps: int = DEFAULTS.reps,
        entanglement: str = DEFAULTS.entanglement,
        bandwidth: float = DEFAULTS.bandwidth,
        quantum_enabled: bool = DEFAULTS.quantum_enabled,
        quantum_backend: str = DEFAULTS.quantum_backend,
        quantum_image: str = DEFAULTS.quantum_image,
        quantum_fallback: str = DEFAULTS.quantum_fallback,
        quantum_max_retries: int = DEFAULTS.quantum_max_retries,
        quantum_max_shots: int = DEFAULTS.quantum_max_shots,
        quantum_max_circuits: int = DEFAULTS.quantum_max_circuits,
        quantum_max_seconds: float = DEFAULTS.quantum_max_seconds,
        quantum_max_memory_mb: float = DEFAULTS.quantum_max_memory_mb,
        quantum_method: str = DEFAULTS.quantum_method,
        nystroem_landmarks: int = DEFAULTS.nystroem_landmarks,
        exact_max_rows: int = DEFAULTS.exact_max_rows,
        classical_max_seconds: float = DEFAULTS.classical_max_seconds,
        kernel_fanout_min_seconds: float = DEFAULTS.kernel_fanout_min_seconds,
        kernel_tile_rows: int = DEFAULTS.kernel_tile_rows,
        promotion_policy: str = DEFAULTS.promotion_policy,
        promotion_mode: str = DEFAULTS.promotion_mode,
        quantum_secret_name: str = DEFAULTS.quantum_secret_name,
        data_secret_name: str = DEFAULTS.data_secret_name,
        mlflow_secret_name: str = DEFAULTS.mlflow_secret_name,
        quantum_node_selector: dict = DEFAULTS.quantum_node_selector,
        quantum_tolerations: list = DEFAULTS.quantum_tolerations,
        quantum_cpu_request: str = DEFAULTS.quantum_cpu_request,
        quantum_cpu_limit: str = DEFAULTS.quantum_cpu_limit,
        quantum_memory_request: str = DEFAULTS.quantum_memory_request,
        quantum_memory_limit: str = DEFAULTS.quantum_memory_limit,
        step_cpu_request: str = DEFAULTS.step_cpu_request,
        step_cpu_limit: str = DEFAULTS.step_cpu_limit,
        step_memory_request: str = DEFAULTS.step_memory_request,
        step_memory_limit: str = DEFAULTS.step_memory_limit,
        mlflow_tracking_uri: str = DEFAULTS.mlflow_tracking_uri,
        registered_model_name: str = DEFAULTS.registered_model_name,
        experiment_name: str = DEFAULTS.experiment_name,
        git_commit: str = DEFAULTS.git_commit,
    ) -> str:
        parameters = dict(locals())  # the pipeline parameters, by name

        def use_gate_account(task) -> None:
            # The MLflow gate account (registry rights) reaches the steps that talk to MLflow
            # only: the preflight (one read) and the register steps; no other step gets it.
            kubernetes.use_secret_as_env(
                task,
                secret_name=mlflow_secret_name,
                optional=True,
                secret_key_to_env={k: k for k in MLFLOW_SECRET_KEYS},
            )

        policy = check_promotion_policy(
            promotion_policy=promotion_policy,
            promotion_mode=promotion_mode,
            mlflow_tracking_uri=mlflow_tracking_uri,
            experiment_name=experiment_name,
            quantum_image=quantum_image,
        )
        policy.set_display_name("preflight: policy, quantum image, tracking server")
        use_gate_account(policy)  # checks that the register step's account is accepted
        # The allow-list comes from the cluster (a ConfigMap deployed from Git), not from a
        # parameter: whoever submits a run cannot widen it.
        kubernetes.use_config_map_as_env(
            policy, ALLOWLIST_CONFIGMAP, {ALLOWLIST_ENV: ALLOWLIST_ENV}, optional=True
        )
        policy.set_caching_options(False)  # the file may change between runs
        prep = prepare_data(
            dataset=dataset,
            label_column=label_column,
            n_qubits=n_qubits,
            feature_map=feature_map,
            reps=reps,
            entanglement=entanglement,
            bandwidth=bandwidth,
            test_size=test_size,
            min_samples_per_class=min_samples_per_class,
            impute=impute,
            seed=seed,
            quantum_method=quantum_method,
            nystroem_landmarks=nystroem_landmarks,
            exact_max_rows=exact_max_rows,
            classical_max_seconds=classical_max_seconds,
        )
        prep.set_display_name("prepare data")
        prep.after(policy)  # a bad policy or tracking server fails the run before data is read
        prep.set_caching_options(False)  # the source (a file or an S3 object) may change in place
        kubernetes.use_secret_as_env(
            prep,
            secret_name=data_secret_name,
            optional=True,
            secret_key_to_env={k: k for k in S3_SECRET_KEYS},
        )
        data = {
            k: prep.outputs[k] for k in ("train_data", "test_data", "preprocessor", "data_lineage")
        }

        baseline = train_classical_model(
            **data, seed=seed, exact_max_rows=exact_max_rows, nystroem_landmarks=nystroem_landmarks
        )
        baseline.set_display_name("train classical baseline")
        baseline.after(policy)  # a bad policy fails the run before any training work

        registry_args = dict(
            **data,
            classical_model=baseline.outputs["model"],
            mlflow_tracking_uri=mlflow_tracking_uri,
            registered_model_name=registered_model_name,
            experiment_name=experiment_name,
            quantum_enabled=quantum_enabled,
            quantum_backend=quantum_backend,
            quantum_image=quantum_image,
            promotion_policy=policy.outputs["policy"],
            git_commit=git_commit,
            kfp_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            kfp_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_task_name=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
        )

        quantum_settings = {name: parameters[name] for name in OPTION_PARAMETERS}
        # One route per run, decided once the data's size is known: "fanout" (row tiles pay for
        # their tasks), "single" (the quantum step does the work itself) or "classical" (the
        # quantum step is off). Routes that do not run cost no task at all.
        plan = plan_kernel_tiles(
            data_lineage=data["data_lineage"],
            quantum_enabled=quantum_enabled,
            **quantum_settings,
            kernel_fanout_min_seconds=kernel_fanout_min_seconds,
            kernel_tile_rows=kernel_tile_rows,
        )
        plan.set_display_name("plan quantum route")
        plan.set_container_image(quantum_image)  # it prices the method on the backend itself
        plan.after(policy)

        def quantum_step(precomputed_kernel=None):
            kernel_input = (
                {} if precomputed_kernel is None else {"precomputed_kernel": precomputed_kernel}
            )
            task = train_quantum_model(**data, **kernel_input, **quantum_settings)
            task.set_display_name("train quantum model")
            task.set_container_image(quantum_image)
            # the IBM Quantum token reaches this step only, and only as env from its Secret
            kubernetes.use_secret_as_env(
                task,
                secret_name=quantum_secret_name,
                optional=True,
                secret_key_to_env={
                    "QISKIT_IBM_TOKEN": "QISKIT_IBM_TOKEN",
                    "QISKIT_IBM_INSTANCE": "QISKIT_IBM_INSTANCE",
                },
            )
            kubernetes.add_node_selector_json(task, quantum_node_selector)
            kubernetes.add_toleration_json(task, quantum_tolerations)
            return task

        def register(candidate: str, quantum_task=None):
            task = register_model(
                **registry_args,
                **({"quantum_model": quantum_task.outputs["model"]} if quantum_task else {}),
            )
            task.set_display_name(f"register and gate ({candidate} candidate)")
            task.set_caching_options(False)
            use_gate_account(task)
            if quantum_task is not None:
                register_if_crashed(quantum_task)
            return task

        def register_if_crashed(quantum_task) -> None:
            # Runs when the quantum task has finished, whatever its outcome (KFP compiles it
            # as an exit hook of that one task): if the task failed (OOM-killed, evicted,
            # node lost), register_model is skipped and this registers the classical
            # baseline, tagged with the reason. A leaf: nothing may consume its output.
            task = register_after_quantum_crash(
                **registry_args, quantum_fallback=quantum_fallback
            ).after(quantum_task)
            task.ignore_upstream_failure()
            task.set_display_name("register classical baseline if the quantum task crashed")
            task.set_caching_options(False)
            use_gate_account(task)

        with dsl.If(plan.outputs["route"] == "single", name="quantum"):
            register_quantum = register("quantum", quantum_step())
        with dsl.Elif(plan.outputs["route"] == "fanout", name="quantum-fan-out"):
            with dsl.ParallelFor(
                plan.outputs["tiles"], parallelism=KERNEL_TILE_PARALLELISM
            ) as tile:
                block = compute_kernel_tile(
                    **data,
                    tile=tile,
                    feature_map=feature_map,
                    reps=reps,
                    entanglement=entanglement,
                    quantum_backend=quantum_backend,
                    seed=seed,
                )
                block.set_display_name("kernel tile")
                block.set_container_image(quantum_image)
            kernel = assemble_kernel(
                blocks=dsl.Collected(block.outputs["block"]), data_lineage=data["data_lineage"]
            )
            kernel.set_display_name("assemble kernel")
            register_fanned = register("quantum", quantum_step(kernel.outputs["kernel"]))
        with dsl.Else(name="quantum-disabled"):
            register_classical = register("classical")
        tasks = pipeline_context.Pipeline.get_default_pipeline().tasks.values()
        apply_cluster_settings(tasks)
        apply_task_settings(tasks, parameters, retries=retries)
        return dsl.OneOf(
            register_quantum.outputs["Output"],
            register_fanned.outputs["Output"],
            register_classical.outputs["Output"],
        )

    return retraining_pipeline


@functools.cache
def cluster_pipeline() -> base_component.BaseComponent:
    """The pipeline a cluster runs (and ``qubeflow compile`` writes), built on first use:
    building it takes most of a second, which a local run (it builds
    :func:`local_pipeline`) or any other command need not pay."""
    return build_pipeline()


def __getattr__(name: str) -> Any:
    # ``from pipelines.retraining import retraining_pipeline`` (e.g. for
    # ``kfp.Client.create_run_from_pipeline_func``) still works, built on first use.
    if name == "retraining_pipeline":
        return cluster_pipeline()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def local_pipeline() -> base_component.BaseComponent:
    """The same pipeline without retry policies, for kfp.local (see :func:`build_pipeline`)."""
    return build_pipeline(retries=False)


def compile_pipeline(out_dir: str | Path) -> Path:
    """Compile the retraining pipeline to KFP IR YAML (what the KFP UI uploads)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / COMPILED_NAME
    pipeline = cluster_pipeline()
    compiler.Compiler().compile(pipeline, str(path))
    _write_integer_defaults(path, pipeline.description)
    return path


def integer_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (a compiled PipelineSpec as a dict) with the defaults of NUMBER_INTEGER
    parameters as integers, in place.

    KFP stores every numeric default in a protobuf ``Value``, whose only number is a double,
    and protobuf's JSON writer (protobuf >= 5) prints a double as ``8.0``: so ``n_qubits: int
    = 8`` compiles to ``defaultValue: 8.0``. The parameter's type is in the same definition,
    so the integer can be written back."""
    for component in (spec.get("root", {}), *spec.get("components", {}).values()):
        for definition in component.get("inputDefinitions", {}).get("parameters", {}).values():
            value = definition.get("defaultValue")
            if (
                definition.get("parameterType") == "NUMBER_INTEGER"
                and isinstance(value, float)
                and value.is_integer()
            ):
                definition["defaultValue"] = int(value)
    return spec


def _write_integer_defaults(path: Path, description: str | None) -> None:
    """Rewrite the compiled YAML as KFP writes it (header comments, then the documents with
    sorted keys), with :func:`integer_defaults` applied."""
    docs = list(yaml.safe_load_all(path.read_text()))
    integer_defaults(docs[0])
    header = pipeline_spec_builder.extract_comments_from_pipeline_spec(docs[0], description)
    path.write_text(header + yaml.dump_all(docs, sort_keys=True))
