"""The retraining pipeline's parameters: defaults, YAML files, ``--set key=value``, validation.

:class:`PipelineConfig` is the single source of the parameters' names, types and defaults:
the KFP pipeline signature takes its defaults from it, and the CLI validates a config once,
at the edge, before anything runs. :func:`parameter_docs` is the single source of their
descriptions, allowed values and units: the compiled pipeline carries them (the pipeline
function's docstring, :func:`pipeline_docstring`) and ``qubeflow params`` prints them.
:data:`TASK_SETTINGS` holds each task's retry policy and the defaults of its pod resources.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from components.errors import BackendError, ConfigError, QubeflowError
from components.image_refs import QUANTUM_IMAGE
from components.registry import mlflow_names as names
from components.registry.policy import DEFAULT_POLICY

if TYPE_CHECKING:
    from components.steps.prepare_data.options import PrepareOptions
    from components.steps.train_quantum.step import QuantumOptions

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
#: Kubernetes quantities the pod-resource parameters take (what the KFP SDK accepts for a
#: constant, plus decimals, which Kubernetes accepts too).
_CPU = re.compile(r"^([0-9]*\.)?[0-9]+m?$")
_MEMORY = re.compile(r"^([0-9]*\.)?[0-9]+(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|K|k)?$")
_MEMORY_UNITS = {
    **{unit: 1024**i for i, unit in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{unit: 1000**i for i, unit in enumerate(("", "K", "M", "G", "T", "P", "E")) if unit},
    "k": 1000,
}
#: The quantum step refuses work whose estimated peak memory exceeds quantum_max_memory_mb;
#: the estimate is within 25 % of the measured peak (benchmarks/README.md), so the pod's
#: memory limit defaults to the budget plus that margin.
QUANTUM_MEMORY_MARGIN = 1.25
_DEFAULT_QUANTUM_MAX_MEMORY_MB = 8192.0
#: The pod-resource parameter groups: ``<group>_cpu_request`` ... ``<group>_memory_limit``.
RESOURCE_GROUPS = ("quantum", "step")
RESOURCE_KINDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")


@dataclass(frozen=True)
class PipelineConfig:
    # data
    dataset: str = "sklearn:breast_cancer"
    label_column: str = "target"
    test_size: float = 0.25
    min_samples_per_class: int = 10
    impute: str = "none"
    seed: int = 42
    # quantum feature map
    n_qubits: int = 8
    feature_map: str = "zz"
    reps: int = 2
    entanglement: str = "linear"
    bandwidth: float = 0.1
    # quantum step (feature flag, backend, its container image)
    quantum_enabled: bool = True
    quantum_backend: str = "statevector"
    quantum_image: str = QUANTUM_IMAGE
    # quantum step's guards: fallback mode, retries of transient errors, budget (0 = no limit)
    quantum_fallback: str = "classical"
    quantum_max_retries: int = 2
    quantum_max_shots: int = 100_000_000
    quantum_max_circuits: int = 100_000
    quantum_max_seconds: float = 3600.0
    quantum_max_memory_mb: float = _DEFAULT_QUANTUM_MAX_MEMORY_MB
    # quantum method: auto | fidelity | nystroem | projected (components/quantum/methods.py);
    # both sides switch from exact kernels to Nystroem above exact_max_rows train rows
    quantum_method: str = "auto"
    nystroem_landmarks: int = 256
    exact_max_rows: int = 5000
    # the classical baseline's estimated fit time above which the data step refuses the plan
    classical_max_seconds: float = 3600.0
    # kernel fan-out (nystroem/projected on exact backends): one task per row tile when the
    # method's estimated kernel time reaches kernel_fanout_min_seconds
    kernel_fanout_min_seconds: float = 120.0
    kernel_tile_rows: int = 100_000
    # promotion gate: a YAML policy file (the repo's documented default unless named) and an
    # optional mode override (disabled | dry_run | enabled; empty = the policy file's mode)
    promotion_policy: str = DEFAULT_POLICY
    promotion_mode: str = ""
    # cluster settings (kfp-kubernetes; the local runner ignores them): the Secrets exposed as
    # env (IBM Quantum token to the quantum step only, S3 keys to the data step) and where the
    # quantum step may be scheduled
    quantum_secret_name: str = "qubeflow-ibm-quantum"
    data_secret_name: str = "qubeflow-s3"
    mlflow_secret_name: str = "qubeflow-mlflow-gate"
    quantum_node_selector: dict = dataclasses.field(default_factory=dict)
    quantum_tolerations: list = dataclasses.field(default_factory=list)
    # pod resources (Kubernetes quantities; the local runner ignores them): the quantum tasks
    # (train-quantum-model, compute-kernel-tile) and the other data-sized steps (prepare-data,
    # train-classical-model, assemble-kernel, register-model); see TASK_SETTINGS
    quantum_cpu_request: str = "1"
    quantum_cpu_limit: str = "4"
    quantum_memory_request: str = "2Gi"
    quantum_memory_limit: str = (
        f"{math.ceil(_DEFAULT_QUANTUM_MAX_MEMORY_MB * QUANTUM_MEMORY_MARGIN)}Mi"
    )
    step_cpu_request: str = "500m"
    step_cpu_limit: str = "2"
    step_memory_request: str = "1Gi"
    step_memory_limit: str = "6Gi"
    # registry and lineage
    mlflow_tracking_uri: str = ""
    registered_model_name: str = names.DEFAULT_MODEL_NAME
    experiment_name: str = names.DEFAULT_EXPERIMENT
    git_commit: str = ""

    # ---- construction -------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def types(cls) -> dict[str, type]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, origin: str = "config") -> PipelineConfig:
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} in {origin}; known: {cls.names()}",
                field=unknown[0],
            )
        types = cls.types()
        return cls(**{k: _coerce(k, v, types[k]) for k, v in values.items()})

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        overrides: list[str] | None = None,
    ) -> PipelineConfig:
        """Defaults, then a YAML file (a mapping of parameter names) or a directory of one
        file per parameter (a mounted ConfigMap), then ``key=value``s."""
        values: dict[str, Any] = {}
        if path and Path(path).is_dir():
            values.update(
                {
                    f.name: f.read_text().strip()
                    for f in sorted(Path(path).iterdir())
                    if f.is_file() and not f.name.startswith(".")
                }
            )
            path = None
        if path:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"config file {str(p)!r} does not exist", field="--config")
            try:
                loaded = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{p} is not valid YAML: {exc}", field="--config") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(
                    f"{p} must hold a mapping of parameter names to values", field="--config"
                )
            values.update(loaded)
        for item in overrides or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"expected key=value, got {item!r}", field="--set")
            values[key.strip()] = value
        return cls.from_mapping(values, origin="--config/--set")

    def replace(self, **changes: Any) -> PipelineConfig:
        return dataclasses.replace(self, **changes)

    # ---- the steps' options ---------------------------------------------------------
    def prepare_options(self) -> PrepareOptions:
        """The data step's options (validated when built: dataset reference, label column,
        split, imputation, feature map and bandwidth)."""
        from components.steps.prepare_data.options import PrepareOptions

        return PrepareOptions(
            dataset=self.dataset,
            label_column=self.label_column,
            n_qubits=self.n_qubits,
            feature_map=self.feature_map,
            reps=self.reps,
            entanglement=self.entanglement,
            bandwidth=self.bandwidth,
            test_size=self.test_size,
            min_samples_per_class=self.min_samples_per_class,
            impute=self.impute,
            seed=self.seed,
            quantum_method=self.quantum_method,
            nystroem_landmarks=self.nystroem_landmarks,
            exact_max_rows=self.exact_max_rows,
            classical_max_seconds=self.classical_max_seconds,
        )

    def quantum_options(self) -> QuantumOptions:
        """The quantum step's options (validated when built: method, fallback, retries,
        budget)."""
        from components.steps.train_quantum.step import OPTION_PARAMETERS, quantum_options

        return quantum_options(**{k: getattr(self, k) for k in OPTION_PARAMETERS})

    # ---- validation ---------------------------------------------------------------
    def validate(self) -> PipelineConfig:
        """Raise ConfigError naming the first invalid parameter; return self when valid.
        Each rule lives with the step that applies it; this runs them all, once, at the edge
        (a step's own error type is reported as the ConfigError of its parameter)."""
        try:
            return self._validate()
        except QubeflowError as exc:
            if isinstance(exc, ConfigError | BackendError) or exc.field is None:
                raise
            raise ConfigError(exc.message, field=exc.field) from exc

    def _validate(self) -> PipelineConfig:
        from components.feature_maps import FeatureMap
        from components.quantum.backends import check_width, get_backend, parse_backend_name
        from components.quantum.tiles import check_fanout_settings
        from components.registry.lock import check_model_name
        from components.registry.policy import load_policy

        self.prepare_options()
        if self.quantum_enabled:
            get_backend(self.quantum_backend)
            check_width(
                self.quantum_backend,
                FeatureMap(
                    kind=self.feature_map,
                    n_qubits=self.n_qubits,
                    reps=self.reps,
                    entanglement=self.entanglement,
                ),
            )
        else:
            parse_backend_name(self.quantum_backend)
        if not self.quantum_image.strip():
            raise ConfigError("is empty", field="quantum_image")
        self.quantum_options()
        check_fanout_settings(self.kernel_fanout_min_seconds, self.kernel_tile_rows)
        load_policy(self.promotion_policy, mode=self.promotion_mode)
        if not _MODEL_NAME.match(self.registered_model_name):
            raise ConfigError(
                f"{self.registered_model_name!r} is not a valid model name "
                "(letters, digits, '.', '_', '-'; starts with a letter or digit)",
                field="registered_model_name",
            )
        check_model_name(self.registered_model_name)  # the gate's lock names are reserved
        if not self.experiment_name.strip():
            raise ConfigError("is empty", field="experiment_name")
        if "@" in self.mlflow_tracking_uri.split("://", 1)[-1].split("/", 1)[0]:
            raise ConfigError(
                "must not carry credentials (user:password@); give them to the "
                "pods as MLFLOW_TRACKING_USERNAME/PASSWORD from a Secret",
                field="mlflow_tracking_uri",
            )
        for name in ("quantum_secret_name", "data_secret_name", "mlflow_secret_name"):
            if not _K8S_NAME.match(getattr(self, name)):
                raise ConfigError(
                    f"{getattr(self, name)!r} is not a Kubernetes Secret name", field=name
                )
        for key, value in self.quantum_node_selector.items():
            if not isinstance(value, str) or not str(key).strip():
                raise ConfigError(
                    f"expected a mapping of label to string value, got {key!r}: {value!r}",
                    field="quantum_node_selector",
                )
        for tol in self.quantum_tolerations:
            if not isinstance(tol, dict) or not set(tol) <= _TOLERATION_KEYS:
                raise ConfigError(
                    f"each toleration is a mapping with keys from "
                    f"{sorted(_TOLERATION_KEYS)}, got {tol!r}",
                    field="quantum_tolerations",
                )
        self._validate_resources()
        return self

    def _validate_resources(self) -> None:
        for group in RESOURCE_GROUPS:
            cpu = {
                k: cpu_cores(getattr(self, f"{group}_cpu_{k}"), f"{group}_cpu_{k}")
                for k in ("request", "limit")
            }
            mem = {
                k: memory_bytes(getattr(self, f"{group}_memory_{k}"), f"{group}_memory_{k}")
                for k in ("request", "limit")
            }
            for kind, values in (("cpu", cpu), ("memory", mem)):
                if values["request"] > values["limit"]:
                    raise ConfigError(
                        f"{getattr(self, f'{group}_{kind}_request')!r} is more than "
                        f"{group}_{kind}_limit={getattr(self, f'{group}_{kind}_limit')!r}",
                        field=f"{group}_{kind}_request",
                    )
        if (
            self.quantum_max_memory_mb
            and memory_bytes(self.quantum_memory_limit, "quantum_memory_limit")
            < self.quantum_max_memory_mb * 2**20
        ):
            need = math.ceil(self.quantum_max_memory_mb * QUANTUM_MEMORY_MARGIN)
            raise ConfigError(
                f"{self.quantum_memory_limit!r} is below quantum_max_memory_mb="
                f"{self.quantum_max_memory_mb:g} MiB: the pod would be OOM-killed before the "
                f"quantum step's own budget refuses; set it to at least {need}Mi (the budget "
                "plus the 25 % margin of the memory estimate)",
                field="quantum_memory_limit",
            )

    def pipeline_arguments(self) -> dict[str, Any]:
        """The KFP run arguments: every parameter, floats as floats (KFP refuses an int for
        a NUMBER_DOUBLE input)."""
        types = self.types()
        return {
            k: float(v) if types[k] is float else v for k, v in dataclasses.asdict(self).items()
        }


def cpu_cores(value: str, name: str) -> float:
    """A Kubernetes CPU quantity (``"500m"``, ``"2"``) in cores; ConfigError naming ``name``."""
    text = str(value).strip()
    if not _CPU.match(text):
        raise ConfigError(
            f"expected a CPU quantity such as '500m' or '2', got {value!r}", field=name
        )
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(value: str, name: str) -> float:
    """A Kubernetes memory quantity (``"512Mi"``, ``"2Gi"``, ``"1G"``) in bytes."""
    text = str(value).strip()
    match = _MEMORY.match(text)
    if not match:
        raise ConfigError(
            f"expected a memory quantity such as '512Mi' or '4Gi', got {value!r}", field=name
        )
    unit = match.group(2) or ""
    return float(text[: len(text) - len(unit)]) * _MEMORY_UNITS[unit]


def _coerce(name: str, value: Any, typ: type) -> Any:
    """Coerce a YAML or ``--set`` value to the parameter's type, or name what is wrong."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"expected true or false, got {value!r}", field=name)
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"expected an integer, got {value!r}", field=name)
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected an integer, got {value!r}", field=name) from None
        if not as_float.is_integer():
            raise ConfigError(f"expected an integer, got {value!r}", field=name)
        return int(as_float)
    if typ in (dict, list):
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else typ()
            except yaml.YAMLError:
                raise ConfigError(
                    f"expected a YAML/JSON {typ.__name__}, got {value!r}", field=name
                ) from None
        if not isinstance(value, typ):
            raise ConfigError(f"expected a {typ.__name__}, got {value!r}", field=name)
        return value
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {value!r}", field=name) from None
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise ConfigError(f"expected a string, got {type(value).__name__}", field=name)
    return str(value)


# ---- task settings: retry policy and pod resources, per component ------------------------


@dataclass(frozen=True)
class Resources:
    """A pod's CPU and memory (Kubernetes quantities)."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class TaskSettings:
    """How one component's tasks run on a cluster.

    ``retries``: KFP re-runs a failed pod this often (``set_retry``), waiting ``backoff``,
    then ``backoff_factor`` times longer each time, for at most ``backoff_max`` in all. The
    steps handle their own faults (the quantum step retries transient backend errors and
    falls back inside the step), so a retry re-runs a pod that crashed, was evicted or lost
    its node. ``resources``: fixed, or the name of a parameter group in
    :data:`RESOURCE_GROUPS` (``quantum`` -> the ``quantum_cpu_request`` ... parameters).
    """

    retries: int
    resources: Resources | str
    backoff: str = "30s"
    backoff_factor: float = 2.0
    backoff_max: str = "1800s"


#: Every component of the pipeline (by component name); a task without an entry fails the
#: compile. Sizes are from the measured peaks in benchmarks/README.md (1e3 to 1e6 rows):
#: policy check 44 MiB, route planning 196 MiB, prepare-data <= 884 MiB, classical training
#: <= 3.6 GiB, registry <= 900 MiB, quantum step <= 4.4 GiB (its own estimate, which the
#: ``quantum_max_memory_mb`` budget bounds).
TASK_SETTINGS: dict[str, TaskSettings] = {
    "check-promotion-policy": TaskSettings(2, Resources("100m", "500m", "128Mi", "512Mi")),
    "prepare-data": TaskSettings(2, "step"),
    "train-classical-model": TaskSettings(2, "step"),
    "plan-kernel-tiles": TaskSettings(2, Resources("250m", "1", "512Mi", "2Gi")),
    "compute-kernel-tile": TaskSettings(2, "quantum"),
    "assemble-kernel": TaskSettings(2, "step"),
    # One re-run: enough for a lost node or an eviction; an out-of-memory kill would repeat,
    # and then the run registers the classical baseline (register-after-quantum-crash).
    "train-quantum-model": TaskSettings(1, "quantum", backoff="60s"),
    # A crashed registry pod leaves its transaction journaled on the gate lock; the re-run
    # rolls it back once the lock's lease expires, then publishes (nothing half-written).
    "register-model": TaskSettings(2, "step", backoff="60s"),
    "register-after-quantum-crash": TaskSettings(2, "step", backoff="60s"),
}


# ---- parameter descriptions, allowed values and units ----------------------------------


@dataclass(frozen=True)
class ParameterDoc:
    description: str
    unit: str = ""
    #: The allowed values, when there is a fixed set.
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        """One line: the description, then the allowed values and the unit."""
        parts = [self.description.rstrip(".") + "."]
        if self.choices:
            parts.append("Allowed: " + ", ".join(repr(c) for c in self.choices) + ".")
        if self.unit:
            parts.append(f"Unit: {self.unit}.")
        return " ".join(parts)


@functools.cache
def parameter_docs() -> dict[str, ParameterDoc]:
    """Every pipeline parameter's description, in :class:`PipelineConfig` order. The allowed
    values come from the modules that check them."""
    from components.data.sources import BUILTIN_DATASETS
    from components.data.validation import IMPUTE_STRATEGIES
    from components.feature_maps import ENTANGLEMENTS, FEATURE_MAP_KINDS
    from components.quantum.methods import METHODS
    from components.registry.policy import MODES
    from components.steps.train_quantum.step import FALLBACK_MODES, MAX_RETRIES

    resources = {
        f"{group}_{kind}": ParameterDoc(
            f"{kind.replace('_', ' ').capitalize().replace('Cpu', 'CPU')} of the pods of "
            f"{tasks}: a Kubernetes quantity such as {example}. Cluster only (the KFP "
            "backend fills it in; the local runner ignores it)",
            unit="cores (m = 1/1000)" if kind.startswith("cpu") else "bytes (Ki, Mi, Gi, ...)",
        )
        for group, tasks in (
            ("quantum", "the quantum tasks (train-quantum-model, compute-kernel-tile)"),
            (
                "step",
                "the data-sized steps (prepare-data, train-classical-model, assemble-kernel, "
                "register-model)",
            ),
        )
        for kind, example in zip(RESOURCE_KINDS, ("'500m'", "'2'", "'1Gi'", "'4Gi'"), strict=True)
    }
    resources["quantum_memory_limit"] = dataclasses.replace(
        resources["quantum_memory_limit"],
        description=resources["quantum_memory_limit"].description
        + "; at least quantum_max_memory_mb, else the pod is OOM-killed before the step's "
        "own budget refuses (the default is that budget plus the memory estimate's 25 % "
        "margin)",
    )
    docs = {
        "dataset": ParameterDoc(
            "Training table: a local .csv or .parquet path (or file://), an s3://bucket/key "
            f"object, or a built-in dataset ({', '.join(sorted(BUILTIN_DATASETS))})"
        ),
        "label_column": ParameterDoc(
            "Column holding the class label; every other column must be numeric"
        ),
        "test_size": ParameterDoc(
            "Fraction of the rows held out for evaluation (stratified split), between 0 and 1",
            unit="fraction",
        ),
        "min_samples_per_class": ParameterDoc(
            "Fewest rows a class may have (at least 2); fewer is an error naming the class",
            unit="rows",
        ),
        "impute": ParameterDoc(
            "How missing values are filled before scaling; 'none' rejects NaN and inf",
            choices=IMPUTE_STRATEGIES,
        ),
        "seed": ParameterDoc("Random seed of the split, the landmarks and the models (>= 0)"),
        "n_qubits": ParameterDoc(
            "Qubits of the feature map: the features are reduced (PCA) to this many angles; "
            "at most the number of feature columns",
            unit="qubits",
        ),
        "feature_map": ParameterDoc(
            "Feature-map circuit: 'zz' (Qiskit's ZZFeatureMap) or 'angle' (angle embedding)",
            choices=FEATURE_MAP_KINDS,
        ),
        "reps": ParameterDoc("Repetitions of the feature map's layers (>= 1)", unit="layers"),
        "entanglement": ParameterDoc("Qubit pairs the zz map entangles", choices=ENTANGLEMENTS),
        "bandwidth": ParameterDoc(
            "Share of the feature map's angle range the scaled features use, in (0, 1]; "
            "smaller gives a smoother kernel",
            unit="fraction",
        ),
        "quantum_enabled": ParameterDoc(
            "Run the quantum step; false trains and registers the classical baseline only"
        ),
        "quantum_backend": ParameterDoc(
            "Backend of the quantum step, family[:target][?key=value&...], e.g. statevector, "
            "mps, qiskit-aer?noise=FakeManilaV2, pennylane:default.qubit, ibm:<device> "
            "('qubeflow backends' lists them and whether they are usable)"
        ),
        "quantum_image": ParameterDoc(
            "Container image of the quantum tasks (the backend family's image)"
        ),
        "quantum_fallback": ParameterDoc(
            "When the quantum step cannot run (backend error, timeout, over budget, or its "
            "pod crashed): 'classical' registers the classical baseline tagged with the "
            "reason, 'fail' fails the run",
            choices=FALLBACK_MODES,
        ),
        "quantum_max_retries": ParameterDoc(
            f"Retries of transient backend errors inside the quantum step (0 to {MAX_RETRIES})",
            unit="retries",
        ),
        "quantum_max_shots": ParameterDoc(
            "Budget: most shots the quantum step may run (0 = no limit)", unit="shots"
        ),
        "quantum_max_circuits": ParameterDoc(
            "Budget: most circuits the quantum step may run (0 = no limit)", unit="circuits"
        ),
        "quantum_max_seconds": ParameterDoc(
            "Budget: wall time of the quantum step (0 = no limit)", unit="seconds"
        ),
        "quantum_max_memory_mb": ParameterDoc(
            "Budget: estimated peak memory of the quantum step (0 = no limit); keep "
            "quantum_memory_limit above it",
            unit="MiB",
        ),
        "quantum_method": ParameterDoc(
            "Quantum model: fidelity-kernel SVC, Nystroem features or projected features "
            "with a linear head; 'auto' picks by data size, backend and budget",
            choices=METHODS,
        ),
        "nystroem_landmarks": ParameterDoc(
            "Landmark rows of the Nystroem approximation (both models, above exact_max_rows)",
            unit="rows",
        ),
        "exact_max_rows": ParameterDoc(
            "Largest train set that gets exact N x N kernels; above it both sides use Nystroem",
            unit="rows",
        ),
        "classical_max_seconds": ParameterDoc(
            "Limit on the classical baseline's estimated fit time: the data step refuses a "
            "plan above it, before training (0 = no limit)",
            unit="seconds",
        ),
        "kernel_fanout_min_seconds": ParameterDoc(
            "Estimated kernel time from which the kernel is computed in parallel row tiles "
            "(exact backends; 0 always fans out)",
            unit="seconds",
        ),
        "kernel_tile_rows": ParameterDoc("Rows per kernel tile of the fan-out", unit="rows"),
        "promotion_policy": ParameterDoc(
            "Promotion policy YAML file (repository path or absolute path)"
        ),
        "promotion_mode": ParameterDoc(
            "Override of the policy's mode; empty keeps the policy file's mode",
            choices=("", *MODES),
        ),
        "quantum_secret_name": ParameterDoc(
            "Kubernetes Secret whose QISKIT_IBM_TOKEN / QISKIT_IBM_INSTANCE reach the quantum "
            "step only, as env (optional; cluster only)"
        ),
        "data_secret_name": ParameterDoc(
            "Kubernetes Secret with the S3 keys for the data step (optional; cluster only)"
        ),
        "mlflow_secret_name": ParameterDoc(
            "Kubernetes Secret with the gate account's MLFLOW_TRACKING_USERNAME / "
            "MLFLOW_TRACKING_PASSWORD; reaches the register/gate steps only, the only steps "
            "that talk to MLflow (optional; cluster only; docs/mlflow-auth.md)"
        ),
        "quantum_node_selector": ParameterDoc(
            'Node selector of the quantum step, a JSON mapping such as {"pool": '
            '"quantum"} (cluster only)'
        ),
        "quantum_tolerations": ParameterDoc(
            "Tolerations of the quantum step, a JSON list of toleration mappings (cluster only)"
        ),
        **resources,
        "mlflow_tracking_uri": ParameterDoc(
            "MLflow tracking server the registry step publishes to, without credentials (the "
            "pods get MLFLOW_TRACKING_USERNAME/PASSWORD from a Secret); on a cluster its "
            "in-cluster URL, e.g. http://qubeflow-mlflow:5000"
        ),
        "registered_model_name": ParameterDoc("MLflow registered model the candidate joins"),
        "experiment_name": ParameterDoc("MLflow experiment of the run"),
        "git_commit": ParameterDoc(
            "Commit recorded in the lineage (qubeflow run/submit fill it from the checkout)"
        ),
    }
    missing = set(PipelineConfig.names()) ^ set(docs)
    if missing:  # pragma: no cover - a new parameter without a description
        raise AssertionError(f"parameters without a description (or unknown): {sorted(missing)}")
    return {name: docs[name] for name in PipelineConfig.names()}


def pipeline_docstring(summary: str) -> str:
    """The pipeline function's docstring: ``summary``, then an ``Args:`` section (Google
    style, which KFP compiles into each parameter's description in the IR)."""
    lines = [summary, "", "Args:"]
    lines += [f"    {name}: {doc.text()}" for name, doc in parameter_docs().items()]
    return "\n".join(lines) + "\n"
