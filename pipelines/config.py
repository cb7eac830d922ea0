"""The retraining pipeline's parameters: defaults, YAML files, ``--set key=value``, validation.

:class:`PipelineConfig` is the single source of the parameters' names, types and defaults:
the KFP pipeline signature takes its defaults from it, and the CLI validates a config once,
at the edge, before anything runs.
"""

from __future__ import annotations

import dataclasses
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
    from components.steps.prepare_data.step import PrepareOptions
    from components.steps.train_quantum.step import QuantumOptions

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


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
    quantum_max_memory_mb: float = 8192.0
    # quantum method: auto | fidelity | nystroem | projected (components/quantum/methods.py);
    # both sides switch from exact kernels to Nystroem above exact_max_rows train rows
    quantum_method: str = "auto"
    nystroem_landmarks: int = 256
    exact_max_rows: int = 5000
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
    quantum_node_selector: dict = dataclasses.field(default_factory=dict)
    quantum_tolerations: list = dataclasses.field(default_factory=list)
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
        from components.steps.prepare_data.step import PrepareOptions

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
        if not self.experiment_name.strip():
            raise ConfigError("is empty", field="experiment_name")
        if "@" in self.mlflow_tracking_uri.split("://", 1)[-1].split("/", 1)[0]:
            raise ConfigError(
                "must not carry credentials (user:password@); give them to the "
                "pods as MLFLOW_TRACKING_USERNAME/PASSWORD from a Secret",
                field="mlflow_tracking_uri",
            )
        for name in ("quantum_secret_name", "data_secret_name"):
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
        return self

    def pipeline_arguments(self) -> dict[str, Any]:
        """The KFP run arguments: every parameter, floats as floats (KFP refuses an int for
        a NUMBER_DOUBLE input)."""
        types = self.types()
        return {
            k: float(v) if types[k] is float else v for k, v in dataclasses.asdict(self).items()
        }


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
