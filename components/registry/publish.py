"""Publish a retraining result to MLflow: one run with full lineage, one registered model
version, the gate's decision on it, and alias moves, with nothing half-done on failure.

1. The run: params, tags, both models' metrics, ``mlflow.data`` inputs, plots, profile,
   calibration, and the candidate as one sklearn-flavour model (skops; raw rows -> label, or
   probabilities and class names with the ``output`` param, see
   ``components.registry.serving``) with signature and input example. A failure here marks
   the run FAILED and deletes it.
2. Under the gate lock, as one :class:`~components.registry.transaction.GateTransaction`:
   the model version is created (``gate.applied=pending``), the champion is re-read, the
   policy decides, the decision is written (version tags, ``gate/decision.json``), then the
   aliases move and the history entry is appended (see ``components.registry.promotion``);
   the run is ended FINISHED and the transaction commits. A failure rolls all of it back.
Which model is the candidate is decided before any of this: the quantum model, unless the
policy's quantum-lift rule fails and it says ``when_baseline_wins: register_classical``, or
the quantum step did not run.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from components.data.sources import DatasetSource
from components.errors import RegistryError
from components.registry import lineage
from components.registry import mlflow_names as names
from components.registry.client import or_none_if_not_found, registry_client
from components.registry.compatibility import ModelInterface
from components.registry.gate import GateDecision, baseline_wins
from components.registry.policy import PromotionPolicy
from components.registry.promotion import decide_and_apply, transaction
from components.registry.serving import PARAMS_EXAMPLE, SKOPS_TRUSTED_TYPES, serving_metadata
from components.registry.transaction import rollback_journal
from components.runtime import note_mlflow_run
from components.training.bundle import ModelBundle
from components.versions import installed_versions

log = logging.getLogger(__name__)

#: Packages the served model needs (versions are read from the environment that logged it).
SERVING_REQUIREMENTS = ("scikit-learn", "numpy", "pandas", "scipy", "skops", "tenacity")


@dataclass
class PublishRequest:
    model_name: str
    baseline: ModelBundle
    #: The quantum model (None when the quantum step was off or fell back).
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
    experiment: str = names.DEFAULT_EXPERIMENT
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
    candidate_kind: str = "classical"
    #: Why the classical baseline was registered although the quantum model ran.
    candidate_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "fallback": self.quantum_tags.get(names.TAG_QUANTUM_FALLBACK) == "true",
            "fallback_reason": self.quantum_tags.get(names.TAG_QUANTUM_FALLBACK_REASON),
            "quantum_tags": self.quantum_tags,
            "model_name": self.model_name,
            "model_version": self.version,
            "model_uri": self.model_uri,
            "candidate_kind": self.candidate_kind,
            "candidate_reason": self.candidate_reason,
            "decision": self.decision.outcome,
            "gate_mode": self.decision.mode,
            "gate_applied": self.decision.applied,
            "gate_headline": self.decision.headline(),
            "policy_hash": self.decision.policy.hash,
            "reasons": self.decision.reasons,
            "gate_metrics": self.decision.metric_rows(),
            "champion_at_decision": self.decision.champion_version,
            "champion_version": self.champion_version,
            "metrics": self.metrics,
            "tracking_uri": lineage.redact_uri(self.tracking_uri),
        }


def _serving_requirements() -> list[str]:
    return [f"{p}=={v}" for p, v in installed_versions(*SERVING_REQUIREMENTS).items()]


#: Rows of a split MLflow infers the dataset schema from (column types come from the dtypes).
DATASET_SCHEMA_SAMPLE_ROWS = 1000
#: Hex characters of a dataset digest (MLflow stores digests in a 36-character column).
DATASET_DIGEST_CHARS = 32


def _dataset_input(frame: pd.DataFrame, src: DatasetSource, label: str, split: str) -> Any:
    """The ``mlflow.data`` input of one split, bounded whatever its size.

    ``mlflow.data.from_pandas`` left to itself hashes only the first 10 000 rows (after a
    ``type()`` call per cell of the whole frame) and infers the schema with a Python-level scan
    of every cell. Here the digest is a full-data digest: SHA-256 over the source file's SHA-256,
    the split's name, columns and dtypes and a vectorised hash of every row of the split (so it
    changes with any row, the file or the split); the full file SHA-256 stays on the run as
    ``dataset.sha256``. The schema's types come from a sample of rows and which columns may be
    missing from each whole column (vectorised); the profile is row and element counts.
    """
    import hashlib

    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    name = src.uri.rsplit("/", 1)[-1].split(":")[-1].rsplit(".", 1)[0] + f"-{split}"
    source: Any = src.uri
    if src.kind == "builtin":
        source = CodeDatasetSource(tags={"builtin_dataset": src.uri, "sha256": src.sha256})
    digest = hashlib.sha256(f"{src.sha256}\n{split}\n{len(frame)}\n".encode())
    for column, dtype in frame.dtypes.items():
        digest.update(f"{column}:{dtype}\n".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    dataset = mlflow.data.from_pandas(
        frame,
        source=source,
        targets=label,
        name=name,
        digest=digest.hexdigest()[:DATASET_DIGEST_CHARS],
    )
    sampled = infer_signature(frame.head(DATASET_SCHEMA_SAMPLE_ROWS)).inputs
    dataset.schema = Schema(
        [  # schema is a cached_property, which allows setting it
            ColSpec(type=spec.type, name=spec.name, required=not frame[spec.name].isna().any())
            for spec in sampled.inputs
        ]
    )
    return dataset


def choose_candidate(
    policy: PromotionPolicy, quantum: ModelBundle | None, baseline: ModelBundle
) -> tuple[ModelBundle, str]:
    """The quantum model, unless the policy registers the classical baseline when the
    quantum model does not reach the required lift over it; and why the baseline, if so."""
    if quantum is None:
        return baseline, ""
    failing = baseline_wins(
        policy, quantum.info.evaluation.metrics, baseline.info.evaluation.metrics
    )
    if failing:
        reason = "quantum lift below the policy's min_lift: " + "; ".join(failing)
        log.info("%s: registering the classical baseline as the candidate", reason)
        return baseline, reason
    return quantum, ""


def publish(
    req: PublishRequest, tracking_uri: str, *, clock: Callable[[], float] = time.time
) -> PublishResult:
    """Log, register and gate the candidate (:func:`choose_candidate`); see the module docstring for guarantees.
    ``clock`` times the gate lock's lease."""
    import mlflow
    from mlflow.models import infer_signature

    # Everything that can fail without touching MLflow happens first.
    from components.registry.lock import check_model_name

    check_model_name(req.model_name)
    candidate, candidate_reason = choose_candidate(req.policy, req.quantum, req.baseline)
    model = candidate.load_model()
    x_test = req.test.drop(columns=[req.label_column])
    x_example = x_test.head(5)
    signature = infer_signature(x_example, model.predict(x_example), params=PARAMS_EXAMPLE)
    served = serving_metadata(model, x_test, req.test[req.label_column])
    labels = getattr(model, "classes_", None)
    interface = ModelInterface.from_signature(signature, None if labels is None else list(labels))
    metrics = {"classical": req.baseline.info.evaluation.metrics}
    if req.quantum is not None:
        metrics["quantum"] = req.quantum.info.evaluation.metrics
    actor = f"pipeline:{req.lineage_tags.get(names.TAG_KFP_JOB_NAME) or 'local'}"
    run_tags = {**_run_tags(req, candidate), **interface.to_tags()}

    client = registry_client(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.set_experiment(req.experiment)
    except Exception as exc:
        raise RegistryError(
            f"cannot reach the MLflow tracking server at {lineage.redact_uri(tracking_uri)}: {exc}",
            field="mlflow_tracking_uri",
        ) from exc
    if (experiment.tags or {}).get(names.TAG_MLFLOW_EXPERIMENT_KIND) is None:
        client.set_experiment_tag(
            experiment.experiment_id,
            names.TAG_MLFLOW_EXPERIMENT_KIND,
            names.EXPERIMENT_KIND_CLASSIC_ML,
        )

    run_tags = {**run_tags, **_ui_tags(req, candidate, interface, candidate_reason)}
    run_id = mlflow.start_run(run_name=run_name(req, candidate), tags=run_tags).info.run_id
    note_mlflow_run(run_id)  # a local run killed with -9: the next one marks it FAILED
    try:
        info = _log_run(req, candidate, model, signature, x_example, metrics, served)
    except BaseException as exc:
        undone = _discard_run(client, run_id)
        raise RegistryError(
            f"publishing to MLflow failed ({type(exc).__name__}: {exc}); undone: {undone}",
            field="mlflow",
        ) from exc

    version_tags = _version_tags(req, candidate, run_tags)
    version, decision = _register_and_gate(
        client, req, actor, run_id, info, version_tags, describe_model(req, interface), clock
    )
    champion = version if decision.applied == "true" else decision.champion_version
    log.info(
        "registered %s v%s: %s (%s)",
        req.model_name,
        version,
        decision.headline(),
        "; ".join(decision.reasons),
    )
    return PublishResult(
        run_id,
        experiment.experiment_id,
        req.model_name,
        version,
        f"models:/{req.model_name}/{version}",
        decision,
        champion,
        metrics,
        tracking_uri,
        {k: v for k, v in run_tags.items() if k.startswith("quantum.")},
        candidate_kind=candidate.info.kind,
        candidate_reason=candidate_reason,
    )


def run_name(req: PublishRequest, candidate: ModelBundle, now: float | None = None) -> str:
    """``<model>-<kind>-<backend>-<UTC time>``: distinguishable in the runs table."""
    backend = req.quantum_backend.split("?")[0].replace(":", "-") if req.quantum_enabled else ""
    when = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return "-".join(p for p in (req.model_name, candidate.info.kind, backend, when) if p)


def describe_model(req: PublishRequest, interface: ModelInterface) -> str:
    """The registered model's description: what it predicts, from what."""
    labels = ", ".join(str(x) for x in interface.labels or ()) or "?"
    width = len(interface.inputs or ())
    return (
        f"Predicts `{req.label_column}` ({interface.task or 'classification'}: {labels}) from "
        f"{width} numeric input columns of `{req.dataset.uri}`. Trained by the Qubeflow "
        "retraining pipeline (quantum kernel model or classical baseline, whichever the "
        "promotion gate's policy chose); `@champion` is what clients load."
    )


def _ui_tags(
    req: PublishRequest, candidate: ModelBundle, interface: ModelInterface, why: str
) -> dict[str, str]:
    """MLflow's own tags: source and commit, the run's description, the KFP link."""
    commit = req.lineage_tags.get(names.TAG_GIT_COMMIT, "")
    job_id = req.lineage_tags.get(names.TAG_KFP_JOB_ID, "")
    url = lineage.kfp_run_url(job_id)
    quantum = (
        f"quantum step on `{req.quantum_backend}`"
        + (
            f", method `{req.lineage_tags.get(names.TAG_QUANTUM_METHOD)}`"
            if req.lineage_tags.get(names.TAG_QUANTUM_METHOD)
            else ""
        )
        + (f" (fell back: {req.fallback_reason})" if req.fallback else "")
        if req.quantum_enabled
        else "quantum step off"
    )
    kfp = req.lineage_tags.get(names.TAG_KFP_JOB_NAME, "") or "local run"
    lines = [
        f"Retraining of **{req.model_name}** on `{req.dataset.uri}` "
        f"({len(req.train)} train / {len(req.test)} test rows, label `{req.label_column}`, "
        f"{len(interface.inputs or ())} inputs); {quantum}.",
        f"Candidate: the **{candidate.info.kind}** model" + (f" ({why})." if why else "."),
        f"KFP run: [{kfp}]({url})" if url else f"KFP run: {kfp} ({job_id or 'no id'})",
    ]
    tags = {
        names.TAG_MLFLOW_SOURCE_NAME: "qubeflow-retraining (Kubeflow Pipelines)",
        names.TAG_MLFLOW_SOURCE_TYPE: "JOB",
        names.TAG_MLFLOW_NOTE: "\n\n".join(lines),
    }
    if commit and commit != "unknown":
        tags[names.TAG_MLFLOW_GIT_COMMIT] = commit.removesuffix("-dirty")
    if url:
        tags[names.TAG_KFP_RUN_URL] = url
    return tags


def _run_tags(req: PublishRequest, candidate: ModelBundle) -> dict[str, str]:
    """The run's lineage: quantum step, candidate kind, dataset, calibration, versions, KFP."""
    quantum_candidate = req.quantum is not None and candidate is req.quantum
    serving = req.quantum.info.params.get("serving_backend") if quantum_candidate else None
    return {
        names.TAG_QUANTUM_ENABLED: str(req.quantum_enabled).lower(),
        names.TAG_QUANTUM_BACKEND: req.quantum_backend if req.quantum_enabled else "none",
        names.TAG_MODEL_KIND: candidate.info.kind,
        names.TAG_DATASET_URI: req.dataset.uri,
        names.TAG_DATASET_SHA256: req.dataset.sha256,
        **lineage.quantum_tags(
            req.calibration,
            fallback=req.fallback,
            fallback_reason=req.fallback_reason,
            serving_backend=serving,
            agreement=req.quantum.info.agreement if quantum_candidate else None,
        ),
        **{names.TAG_VERSIONS_PREFIX + k: v for k, v in lineage.package_versions().items()},
        **req.lineage_tags,
    }


#: The version tags a reader scans in the registry (the gate adds ``gate.*``); everything
#: else — metrics, lineage, interface — is on the version's run (tags, metrics, artifacts).
VERSION_TAG_KEYS = (
    names.TAG_MODEL_KIND,
    names.TAG_QUANTUM_BACKEND,
    names.TAG_QUANTUM_METHOD,
    names.TAG_QUANTUM_CALIBRATION_HASH,
)


def _version_tags(
    req: PublishRequest, candidate: ModelBundle, run_tags: dict[str, str]
) -> dict[str, str]:
    """What a reader scans on the version: kind, backend, method, calibration hash, the
    quantum lift over the baseline, and ``gate.applied`` (the gate adds its decision)."""
    tags = {k: run_tags[k] for k in VERSION_TAG_KEYS if run_tags.get(k)}
    if run_tags.get(names.TAG_QUANTUM_FALLBACK) == "true":  # the why is in gate.reasons
        tags[names.TAG_QUANTUM_FALLBACK] = "true"
    if req.quantum is not None:
        q, c = req.quantum.info.evaluation.metrics, req.baseline.info.evaluation.metrics
        for m in req.policy.quantum.min_lift or {"roc_auc": 0.0}:
            if m in q and m in c:
                tags[names.TAG_QUANTUM_LIFT_PREFIX + m] = f"{q[m] - c[m]:+.6f}"
    tags[names.TAG_GATE_APPLIED] = "pending"
    return tags


def _register_and_gate(
    client: Any,
    req: PublishRequest,
    actor: str,
    run_id: str,
    info: Any,
    version_tags: dict[str, str],
    description: str,
    clock: Callable[[], float],
) -> tuple[str, GateDecision]:
    """Step 2, one journaled transaction under the gate lock: the version, the decision, the
    aliases; rolled back whole on any failure. ``description`` is the registered model's
    (set when it is created, or when it has none or the generic one of earlier releases)."""
    import mlflow

    txn = transaction(client, req.model_name, req.policy, actor, clock=clock)
    try:
        with txn:
            txn.plan(action="publish", run_id=run_id, owns_run=True, owns_versions=True)
            existing = or_none_if_not_found(client.get_registered_model, req.model_name)
            if existing is None:
                txn.plan(created_model=True)
                client.create_registered_model(req.model_name, description=description)
            elif description and (existing.description or "") in ("", names.OLD_MODEL_DESCRIPTION):
                client.update_registered_model(req.model_name, description=description)
            mv = client.create_model_version(
                req.model_name,
                source=info.model_uri,
                run_id=run_id,
                tags=version_tags,
                model_id=info.model_id,
            )
            version = str(mv.version)
            txn.plan(version=version)
            client.set_tag(run_id, names.TAG_REGISTERED_VERSION, version)
            decision = decide_and_apply(
                txn,
                version,
                req.policy,
                actor=actor,
                run_id=run_id,
                artifact_path=names.ARTIFACT_DECISION,
            )
            client.set_tag(run_id, names.TAG_GATE_DECISION, decision.outcome)
            mlflow.end_run("FINISHED")
            txn.commit()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            mlflow.end_run("FAILED")
        what = exc.message if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
        raise RegistryError(f"publishing to MLflow failed: {what}", field="mlflow") from exc
    return version, decision


def _log_run(
    req: PublishRequest,
    candidate: ModelBundle,
    model: Any,
    signature: Any,
    x_example: pd.DataFrame,
    metrics: dict[str, dict[str, float]],
    served: dict[str, Any],
) -> Any:
    """Step 1: everything the run holds; returns the logged model's info."""
    import mlflow

    from components.registry import serving
    from components.training.plots import roc_png

    mlflow.log_params({k: str(v) for k, v in req.params.items()})
    mlflow.log_params({f"{candidate.info.kind}.{k}": v for k, v in candidate.info.params.items()})
    test_dataset = _dataset_input(req.test, req.dataset, req.label_column, "test")
    mlflow.log_input(
        _dataset_input(req.train, req.dataset, req.label_column, "train"), context="training"
    )
    mlflow.log_input(test_dataset, context="testing")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for bundle in [b for b in (req.quantum, req.baseline) if b is not None]:
            for png in bundle.plots:
                mlflow.log_artifact(str(png), f"{names.ARTIFACT_PLOTS}/{bundle.info.kind}")
            mlflow.log_dict(bundle.info.to_dict(), f"bundles/{bundle.info.kind}.json")
        evals = {b.info.kind: b.info.evaluation for b in (req.quantum, req.baseline) if b}
        roc = roc_png(evals, tmpdir / "roc_comparison.png", "ROC: quantum vs. classical")
        if roc is not None:
            mlflow.log_artifact(str(roc), names.ARTIFACT_PLOTS)
    if req.profile_markdown:
        mlflow.log_text(req.profile_markdown, names.ARTIFACT_PROFILE)
    if req.calibration is not None:
        mlflow.log_dict(req.calibration, names.ARTIFACT_CALIBRATION)
    with tempfile.TemporaryDirectory() as tmp:
        info = serving.log_model(
            model,
            name=names.ARTIFACT_MODEL,
            signature=signature,
            input_example=x_example,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=_serving_requirements(),
            code_paths=[serving.stage_served_code(tmp)],
            metadata={serving.METADATA_KEY: served},
        )
    _log_metrics(req, candidate, metrics, info.model_id, test_dataset)
    return info


def _log_metrics(
    req: PublishRequest,
    candidate: ModelBundle,
    metrics: dict[str, dict[str, float]],
    model_id: str,
    test_dataset: Any,
) -> None:
    """Every metric in one request, after the model is logged: the held-out metrics linked to
    the test split, the candidate's also to its logged model. (Logged before the model, the
    run's metrics would be copied onto the model, unlinked, one request per metric.)"""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    linked = {"dataset_name": test_dataset.name, "dataset_digest": test_dataset.digest}
    batch = [
        Metric(f"{kind}.{k}", float(v), now, 0, **linked)
        for kind, values in metrics.items()
        for k, v in values.items()
    ]
    batch += [
        Metric(k, float(v), now, 0, model_id=model_id, **linked)
        for k, v in candidate.info.evaluation.metrics.items()
    ]
    seconds = {"classical.train_seconds": req.baseline.info.train_seconds}
    if req.quantum is not None:
        seconds["quantum.train_seconds"] = req.quantum.info.train_seconds
        seconds.update(
            {
                names.METRIC_KERNEL_AGREEMENT_PREFIX + k: v
                for k, v in req.quantum.info.agreement.items()
            }
        )
    batch += [Metric(k, float(v), now, 0) for k, v in seconds.items()]
    run_id = mlflow.active_run().info.run_id
    mlflow.MlflowClient().log_batch(run_id, metrics=batch)


def _discard_run(client: Any, run_id: str) -> str:
    """Mark the run FAILED and delete it (nothing was registered yet)."""
    import mlflow

    with contextlib.suppress(Exception):
        mlflow.end_run("FAILED")
    try:
        return rollback_journal(client, {"run_id": run_id, "owns_run": True})
    except RegistryError as err:
        return str(err)
