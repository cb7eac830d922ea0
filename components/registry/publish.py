"""Publish a retraining result to MLflow: one run with full lineage, one registered model
version, the gate's decision on it, and alias moves, with nothing half-done on failure.

Order of writes (each later step depends on the earlier ones having succeeded):
1. run: params, tags, both models' metrics, ``mlflow.data`` inputs, plots, profile;
2. the candidate logged as one sklearn-flavour model (raw rows -> label) with signature and
   input example;
3. a model version created with its lineage and metric tags;
4. the champion is re-read and the gate decides; the decision is written as version tags
   and ``gate/decision.json`` *before* any alias moves;
5. ``challenger`` -> this version; if promoted, ``champion`` -> this version and
   ``challenger`` is cleared.
If any step raises, what was written is undone: the champion alias is put back, the version
(and the registered model, if this run created it) is deleted, and the run is marked FAILED
and deleted; then :class:`RegistryError` is raised.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from components.data.sources import DatasetSource
from components.errors import RegistryError
from components.registry import lineage as L
from components.registry.gate import GateDecision, PromotionPolicy, evaluate_promotion
from components.training.bundle import ModelBundle
from components.versions import installed_versions

log = logging.getLogger(__name__)

#: Custom classes skops may load from a registered model (everything else is sklearn/numpy).
SKOPS_TRUSTED_TYPES = [
    "components.quantum.transformers.QuantumKernelTransformer",
    "components.quantum.transformers.ProjectedQuantumFeatures",
]
#: Packages the served model needs (versions are read from the environment that logged it).
SERVING_REQUIREMENTS = ("scikit-learn", "numpy", "pandas", "scipy", "skops")


@dataclass
class PublishRequest:
    model_name: str
    candidate: ModelBundle
    baseline: ModelBundle
    quantum: ModelBundle | None
    quantum_enabled: bool
    quantum_backend: str
    dataset: DatasetSource
    train: pd.DataFrame
    test: pd.DataFrame
    label_column: str
    policy: PromotionPolicy
    params: dict[str, Any] = field(default_factory=dict)
    lineage_tags: dict[str, str] = field(default_factory=dict)
    profile_markdown: str = ""
    experiment: str = L.DEFAULT_EXPERIMENT
    fallback: bool = False
    fallback_reason: str | None = None
    #: Calibration snapshot of the quantum step (None when the quantum step was off).
    calibration: dict[str, Any] | None = None


@dataclass
class PublishResult:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    model_uri: str
    decision: GateDecision
    champion_version: str | None
    metrics: dict[str, dict[str, float]]
    tracking_uri: str
    quantum_tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "experiment_id": self.experiment_id,
                "fallback": self.quantum_tags.get(L.TAG_QUANTUM_FALLBACK) == "true",
                "fallback_reason": self.quantum_tags.get(L.TAG_QUANTUM_FALLBACK_REASON),
                "quantum_tags": self.quantum_tags,
                "model_name": self.model_name, "model_version": self.version,
                "model_uri": self.model_uri, "decision": self.decision.outcome,
                "reasons": self.decision.reasons, "champion_version": self.champion_version,
                "metrics": self.metrics, "tracking_uri": L.redact_uri(self.tracking_uri)}


def _serving_requirements() -> list[str]:
    return [f"{p}=={v}" for p, v in installed_versions(*SERVING_REQUIREMENTS).items()]


def _dataset_input(frame: pd.DataFrame, src: DatasetSource, label: str, split: str) -> Any:
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource

    name = src.uri.rsplit("/", 1)[-1].split(":")[-1].rsplit(".", 1)[0] + f"-{split}"
    source: Any = src.uri
    if src.kind == "builtin":
        source = CodeDatasetSource(tags={"builtin_dataset": src.uri, "sha256": src.sha256})
    return mlflow.data.from_pandas(frame, source=source, targets=label, name=name)


def _version_metrics(client: Any, name: str, version: str) -> dict[str, float]:
    mv = client.get_model_version(name, version)
    out = {}
    for k, v in mv.tags.items():
        if k.startswith(L.TAG_METRIC_PREFIX):
            try:
                out[k[len(L.TAG_METRIC_PREFIX):]] = float(v)
            except ValueError:
                continue
    return out


def _is_not_found(exc: Exception) -> bool:
    """An MLflow error meaning "no such model / alias" (SQLite and REST stores word it apart)."""
    text = str(exc).lower()
    return ("RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
            or "not found" in text or "does not exist" in text)


def current_champion(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, L.ALIAS_CHAMPION).version)
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise


def _registered_model_exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException as exc:
        if _is_not_found(exc):
            return False
        raise


def check_reachable(tracking_uri: str, attempts: int = 3, timeout_s: float = 5.0) -> None:
    """Fail fast (seconds, not MLflow's minutes of HTTP retries) when an HTTP tracking server
    does not answer ``/health``; other stores (``sqlite:``, ``file:``) need no check."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5 * (attempt + 1))
    raise RegistryError(f"cannot reach the MLflow tracking server at "
                        f"{L.redact_uri(tracking_uri)} ({last}); nothing was written",
                        field="mlflow_tracking_uri")


def publish(req: PublishRequest, tracking_uri: str) -> PublishResult:
    """Log, register and gate ``req.candidate``; see the module docstring for guarantees."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from components.training.plots import roc_png

    # Everything that can fail without touching the registry happens first.
    model = req.candidate.load_model()
    x_example = req.test.drop(columns=[req.label_column]).head(5)
    signature = infer_signature(x_example, model.predict(x_example))
    cand_metrics = req.candidate.info.evaluation.metrics
    metrics = {"classical": req.baseline.info.evaluation.metrics}
    if req.quantum is not None:
        metrics["quantum"] = req.quantum.info.evaluation.metrics

    check_reachable(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        experiment = mlflow.set_experiment(req.experiment)
    except Exception as exc:
        raise RegistryError(f"cannot reach the MLflow tracking server at "
                            f"{L.redact_uri(tracking_uri)}: {exc}",
                            field="mlflow_tracking_uri") from exc

    run_tags = {
        L.TAG_QUANTUM_ENABLED: str(req.quantum_enabled).lower(),
        L.TAG_QUANTUM_BACKEND: req.quantum_backend if req.quantum_enabled else "none",
        L.TAG_MODEL_KIND: req.candidate.info.kind,
        L.TAG_DATASET_URI: req.dataset.uri,
        L.TAG_DATASET_SHA256: req.dataset.sha256,
        **L.quantum_tags(req.calibration, fallback=req.fallback,
                         fallback_reason=req.fallback_reason,
                         serving_backend=(req.quantum.info.params.get("serving_backend")
                                          if req.quantum is not None else None)),
        **{L.TAG_VERSIONS_PREFIX + k: v for k, v in L.package_versions().items()},
        **req.lineage_tags,
    }
    run_name = req.lineage_tags.get(L.TAG_KFP_JOB_NAME) or f"retrain-{int(time.time())}"
    run = mlflow.start_run(run_name=run_name, tags=run_tags)
    run_id = run.info.run_id
    created_model = False
    version: str | None = None
    previous_champion: str | None = None
    champion_moved = False
    try:
        mlflow.log_params({k: str(v) for k, v in req.params.items()})
        mlflow.log_params({f"{req.candidate.info.kind}.{k}": v
                           for k, v in req.candidate.info.params.items()})
        for kind, values in metrics.items():
            mlflow.log_metrics({f"{kind}.{k}": v for k, v in values.items()})
        mlflow.log_metrics({"classical.train_seconds": req.baseline.info.train_seconds})
        if req.quantum is not None:
            mlflow.log_metrics({"quantum.train_seconds": req.quantum.info.train_seconds})
        mlflow.log_input(_dataset_input(req.train, req.dataset, req.label_column, "train"),
                         context="training")
        mlflow.log_input(_dataset_input(req.test, req.dataset, req.label_column, "test"),
                         context="testing")
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            for bundle in [b for b in (req.quantum, req.baseline) if b is not None]:
                for png in bundle.plots:
                    mlflow.log_artifact(str(png), f"{L.ARTIFACT_PLOTS}/{bundle.info.kind}")
                mlflow.log_dict(bundle.info.to_dict(), f"bundles/{bundle.info.kind}.json")
            evals = {b.info.kind: b.info.evaluation for b in (req.quantum, req.baseline) if b}
            roc = roc_png(evals, tmpdir / "roc_comparison.png", "ROC: quantum vs. classical")
            if roc is not None:
                mlflow.log_artifact(str(roc), L.ARTIFACT_PLOTS)
        if req.profile_markdown:
            mlflow.log_text(req.profile_markdown, L.ARTIFACT_PROFILE)
        if req.calibration is not None:
            mlflow.log_dict(req.calibration, L.ARTIFACT_CALIBRATION)

        import mlflow.sklearn

        info = mlflow.sklearn.log_model(
            model, name=L.ARTIFACT_MODEL, signature=signature, input_example=x_example,
            serialization_format="skops", skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=_serving_requirements(),
            code_paths=[str(Path(__file__).resolve().parents[1])])
        mlflow.log_metrics(cand_metrics, model_id=info.model_id)

        version_tags = {
            **{k: v for k, v in run_tags.items()
               if k.startswith("quantum.") or k in (L.TAG_MODEL_KIND, L.TAG_DATASET_URI,
                                                    L.TAG_DATASET_SHA256)},
            **req.lineage_tags,
            **{L.TAG_METRIC_PREFIX + k: f"{v:.6f}" for k, v in cand_metrics.items()},
            **{L.TAG_BASELINE_METRIC_PREFIX + k: f"{v:.6f}"
               for k, v in req.baseline.info.evaluation.metrics.items()},
        }
        if not _registered_model_exists(client, req.model_name):
            client.create_registered_model(
                req.model_name, description="Qubeflow retraining pipeline output.")
            created_model = True
        mv = client.create_model_version(req.model_name, source=info.model_uri, run_id=run_id,
                                          tags=version_tags, model_id=info.model_id)
        version = str(mv.version)
        mlflow.set_tag(L.TAG_REGISTERED_VERSION, version)

        # The gate: re-read the champion right before deciding.
        previous_champion = current_champion(client, req.model_name)
        champ_metrics = (_version_metrics(client, req.model_name, previous_champion)
                         if previous_champion else None)
        decision = evaluate_promotion(cand_metrics, req.policy,
                                      champion_version=previous_champion,
                                      champion_metrics=champ_metrics, fallback=req.fallback)
        decision.extra.update({"candidate_version": version, "model_name": req.model_name,
                               "run_id": run_id, "mode": "enabled",
                               "decided_at": datetime.now(UTC).isoformat()})
        for key, value in {
            L.TAG_GATE_DECISION: decision.outcome,
            L.TAG_GATE_REASONS: "; ".join(decision.reasons),
            L.TAG_GATE_POLICY_HASH: decision.policy.hash,
            L.TAG_GATE_CHAMPION_AT_DECISION: previous_champion or "none",
            L.TAG_GATE_DECIDED_AT: decision.extra["decided_at"],
        }.items():
            client.set_model_version_tag(req.model_name, version, key, value)
        mlflow.log_dict(decision.to_dict(), L.ARTIFACT_DECISION)
        mlflow.set_tag(L.TAG_GATE_DECISION, decision.outcome)

        client.set_registered_model_alias(req.model_name, L.ALIAS_CHALLENGER, version)
        if decision.promoted:
            client.set_registered_model_alias(req.model_name, L.ALIAS_CHAMPION, version)
            champion_moved = True
            client.delete_registered_model_alias(req.model_name, L.ALIAS_CHALLENGER)
        mlflow.end_run("FINISHED")
    except BaseException as exc:
        undone = _undo(client, req.model_name, run_id, version, created_model, previous_champion,
                       champion_moved)
        raise RegistryError(f"publishing to MLflow failed ({type(exc).__name__}: {exc}); "
                            f"undone: {undone}", field="mlflow") from exc

    champion = version if decision.promoted else previous_champion
    log.info("registered %s v%s: %s (%s)", req.model_name, version, decision.outcome,
             "; ".join(decision.reasons))
    return PublishResult(run_id, experiment.experiment_id, req.model_name, version,
                         f"models:/{req.model_name}/{version}", decision, champion, metrics,
                         tracking_uri, {k: v for k, v in run_tags.items()
                                        if k.startswith("quantum.")})


def _undo(client: Any, name: str, run_id: str, version: str | None, created_model: bool,
          previous_champion: str | None, champion_moved: bool) -> str:
    """Best-effort compensation; returns what was undone (and what could not be)."""
    import mlflow

    done: list[str] = []

    def attempt(what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
            done.append(what)
        except Exception as exc:  # keep undoing the rest; report what failed
            done.append(f"FAILED to {what}: {exc}")
            log.error("could not %s: %s", what, exc)

    if champion_moved and previous_champion:
        attempt(f"restore champion to v{previous_champion}", client.set_registered_model_alias,
                name, L.ALIAS_CHAMPION, previous_champion)
    if version is not None:
        attempt(f"delete version {version}", client.delete_model_version, name, version)
    if created_model:
        attempt(f"delete registered model {name}", client.delete_registered_model, name)
    attempt("mark run FAILED", mlflow.end_run, "FAILED")
    attempt(f"delete run {run_id}", client.delete_run, run_id)
    return ", ".join(done) or "nothing to undo"
