"""Helpers shared by the registry tests (imported as ``tests.support``)."""

from __future__ import annotations

from pathlib import Path

#: The default policy, except that the quantum model is always the candidate.
QUANTUM_CANDIDATE_POLICY = str(Path(__file__).resolve().parent / "policies"
                               / "quantum-candidate.yaml")

#: A policy that promotes the test bundles (4 qubits) and always registers the quantum model.
TEST_POLICY = {"thresholds": {"roc_auc": 0.9}, "champion": {"roc_auc": {"max_regression": 0.0}},
               "quantum": {"min_lift": {}}, "concurrency": {"lock_timeout_seconds": 20,
                                                           "lock_lease_seconds": 30}}


def publish_request(bundles, policy: dict | None = None, *, name: str = "test-classifier",
                    **kw):
    """A PublishRequest for the test bundles under ``TEST_POLICY`` updated with ``policy``."""
    from components.registry import mlflow_names as names
    from components.registry.policy import parse_policy
    from components.registry.publish import PublishRequest

    split, source, quantum, classical, calibration = bundles
    kw.setdefault("calibration", calibration)
    merged = {**TEST_POLICY, **(policy or {})}
    return PublishRequest(model_name=name, baseline=classical, quantum=quantum,
                          quantum_enabled=True, quantum_backend="statevector", dataset=source,
                          train=split.train, test=split.test, label_column="target",
                          policy=parse_policy(merged), params={"n_qubits": 4, "seed": 7},
                          lineage_tags={names.TAG_GIT_COMMIT: "abc123", names.TAG_KFP_JOB_ID: "job-1"},
                          profile_markdown="## profile\n", **kw)


def log_tiny_model(tracking_uri: str, experiment: str):
    """Log a one-feature LogisticRegression; returns (run_id, model info) for versions that
    differ only by their tags."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]),
                                        name="model")
    return run.info.run_id, info
