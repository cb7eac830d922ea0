"""Every name Qubeflow writes to MLflow, in one place (docs/mlflow.md documents them): run and
model-version tags, aliases, default experiment and model names, artifact paths."""

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
TAG_QUANTUM_SERVING_BACKEND = "quantum.serving_backend"
TAG_QUANTUM_METHOD = "quantum.method"  # fidelity | nystroem | projected (what ran)
TAG_QUANTUM_METHOD_REASON = "quantum.method_reason"  # why (auto's choice, or set explicitly)
TAG_QUANTUM_LANDMARKS = (
    "quantum.landmarks"  # Nystroem landmark count  # what the registered model uses
)
#: A shot-based backend's measured kernel against the exact simulation the model serves
#: with (components.quantum.agreement); the full set is logged as run metrics.
TAG_QUANTUM_KERNEL_ALIGNMENT = "quantum.kernel_agreement.alignment"
TAG_QUANTUM_KERNEL_MAE = "quantum.kernel_agreement.mean_abs_error"
METRIC_KERNEL_AGREEMENT_PREFIX = "quantum.kernel_agreement."
#: Quantum model's metric minus the same run's classical baseline (version tag, per metric).
TAG_QUANTUM_LIFT_PREFIX = "quantum.lift."
TAG_MODEL_KIND = "model.kind"  # quantum | classical
# What the version's clients depend on (components.registry.compatibility).
TAG_MODEL_INPUTS = "model.inputs"  # JSON [[column, type], ...] in order (or sha256:<hex>)
TAG_MODEL_LABELS = "model.labels"  # JSON list of class labels
TAG_MODEL_TASK = "model.task"  # binary | multiclass
TAG_DATASET_URI = "dataset.uri"
TAG_DATASET_SHA256 = "dataset.sha256"
TAG_GIT_COMMIT = "git.commit"
TAG_KFP_JOB_NAME = "kfp.pipeline_job_name"
TAG_KFP_JOB_ID = "kfp.pipeline_job_id"
TAG_KFP_TASK = "kfp.task_name"
TAG_REGISTERED_VERSION = "registry.version"
TAG_KFP_RUN_URL = "kfp.run_url"  # the KFP UI's page of the run ($QUBEFLOW_KFP_UI_URL)
# MLflow's own tags, so its UI shows source, commit, description and the classic-ML view.
TAG_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
TAG_MLFLOW_SOURCE_NAME = "mlflow.source.name"
TAG_MLFLOW_SOURCE_TYPE = "mlflow.source.type"
TAG_MLFLOW_NOTE = "mlflow.note.content"  # the run's description (Markdown)
TAG_MLFLOW_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_CLASSIC_ML = "custom_model_development"  # not the GenAI view
#: The generic description earlier versions gave a registered model (replaced on publish).
OLD_MODEL_DESCRIPTION = "Qubeflow retraining pipeline output."
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
