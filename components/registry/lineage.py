"""Names of everything written to MLflow, in one place (the README documents them), and the
helpers that collect lineage: package versions, the git commit, the KFP run identity.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.versions import installed_versions

# Run and model-version tags.
TAG_QUANTUM_ENABLED = "quantum.enabled"
TAG_QUANTUM_BACKEND = "quantum.backend"
TAG_QUANTUM_FALLBACK = "quantum.fallback"  # true | false
TAG_QUANTUM_FALLBACK_REASON = "quantum.fallback_reason"  # "<reason code>: <message>"
TAG_QUANTUM_BACKEND_KIND = "quantum.backend_kind"  # exact-simulator | noisy-simulator | ...
TAG_QUANTUM_CALIBRATION_HASH = "quantum.calibration_hash"
TAG_QUANTUM_CALIBRATION_TIME = "quantum.calibration_time"  # device calibration timestamp
TAG_QUANTUM_SHOTS = "quantum.shots"  # 0 for exact backends
TAG_QUANTUM_CIRCUIT_DEPTH = "quantum.circuit_depth"  # transpiled compute-uncompute depth
TAG_QUANTUM_SERVING_BACKEND = "quantum.serving_backend"  # what the registered model uses
TAG_MODEL_KIND = "model.kind"  # quantum | classical
TAG_DATASET_URI = "dataset.uri"
TAG_DATASET_SHA256 = "dataset.sha256"
TAG_GIT_COMMIT = "git.commit"
TAG_KFP_JOB_NAME = "kfp.pipeline_job_name"
TAG_KFP_JOB_ID = "kfp.pipeline_job_id"
TAG_KFP_TASK = "kfp.task_name"
TAG_REGISTERED_VERSION = "registry.version"
TAG_VERSIONS_PREFIX = "versions."  # versions.<package> = x.y.z
# Model-version tags written by the gate.
TAG_GATE_DECISION = "gate.decision"  # promote | reject
TAG_GATE_REASONS = "gate.reasons"
TAG_GATE_POLICY_HASH = "gate.policy_hash"
TAG_GATE_CHAMPION_AT_DECISION = "gate.champion_at_decision"
TAG_GATE_DECIDED_AT = "gate.decided_at"
TAG_GATE_MODE = "gate.mode"  # disabled | dry_run | enabled
TAG_GATE_APPLIED = "gate.applied"  # true | false | pending | aborted: did the alias move
TAG_GATE_ACTOR = "gate.actor"  # pipeline:<job> | cli:<user>@<host>
TAG_GATE_DEMOTED_AT = "gate.rolled_back_at"  # set on a champion demoted by a rollback
TAG_METRIC_PREFIX = "metric."  # candidate's held-out metrics, read back when it is champion
TAG_BASELINE_METRIC_PREFIX = "baseline.metric."  # the same run's classical baseline
TAG_QUANTUM_METRIC_PREFIX = "quantum.metric."  # the quantum model's, when it was not registered

ALIAS_CHAMPION = "champion"
ALIAS_CHALLENGER = "challenger"
DEFAULT_EXPERIMENT = "qubeflow-retraining"
DEFAULT_MODEL_NAME = "qubeflow-classifier"
# Artifact paths inside the MLflow run.
ARTIFACT_MODEL = "model"
ARTIFACT_PLOTS = "plots"
ARTIFACT_DECISION = "gate/decision.json"
ARTIFACT_PROFILE = "data/profile.md"
ARTIFACT_CALIBRATION = "calibration/calibration.json"

TRACKED_PACKAGES = ("qubeflow", "kfp", "mlflow", "scikit-learn", "numpy", "pandas", "scipy",
                    "qiskit", "qiskit-aer", "qiskit-ibm-runtime", "pennylane",
                    "pennylane-lightning")
GIT_COMMIT_ENV = "QUBEFLOW_GIT_COMMIT"


def quantum_tags(calibration: dict | None, *, fallback: bool, fallback_reason: str | None,
                 serving_backend: str | None = None) -> dict[str, str]:
    """The ``quantum.*`` lineage tags from a calibration snapshot and the step's outcome."""
    tags = {TAG_QUANTUM_FALLBACK: str(bool(fallback)).lower()}
    if fallback:
        tags[TAG_QUANTUM_FALLBACK_REASON] = (fallback_reason or "unknown")[:4900]
    if calibration:
        execution = calibration.get("execution") or {}
        device = calibration.get("calibration") or {}
        depth = execution.get("circuit_depth")
        kind = str((calibration.get("backend") or {}).get("kind", ""))
        tags.update({
            TAG_QUANTUM_BACKEND_KIND: kind,
            TAG_QUANTUM_CALIBRATION_HASH: str(calibration.get("calibration_hash", "")),
            TAG_QUANTUM_CALIBRATION_TIME: str(device.get("timestamp") or f"none ({kind})"),
            TAG_QUANTUM_SHOTS: str(execution.get("shots") or 0),
            TAG_QUANTUM_CIRCUIT_DEPTH: "unknown" if depth is None else str(depth),
        })
    if serving_backend:
        tags[TAG_QUANTUM_SERVING_BACKEND] = serving_backend
    return tags


def package_versions() -> dict[str, str]:
    return installed_versions(*TRACKED_PACKAGES)


def git_commit(start: str | Path | None = None) -> str:
    """HEAD of the git checkout containing ``start`` (``-dirty`` if modified), else
    ``$QUBEFLOW_GIT_COMMIT``, else ``unknown`` (images carry no .git)."""
    env = os.environ.get(GIT_COMMIT_ENV)
    if env:
        return env
    cwd = Path(start or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def redact_uri(uri: str) -> str:
    """Drop any ``user:password@`` from a URI before it is logged anywhere."""
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri
