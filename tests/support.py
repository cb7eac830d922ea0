"""Constants and helpers shared by tests (imported as ``tests.support``; tests never import
``tests.conftest``, which holds only fixtures and the collection hooks)."""

from __future__ import annotations

import time
from pathlib import Path

#: A fake IBM token: tests assert it never appears in logs, MLflow or compiled YAML.
SECRET_TOKEN = "qbf-SECRET-token-7f3a9c"

#: Credentials for the loopback S3 server only (moto accepts any); never real ones.
FAKE_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}

#: The backend plugin that registers ``ibm-faulty:<fault>`` (see the ``faulty_ibm`` fixture).
FAULTY_PLUGIN = "tests.fakes.faulty_ibm"

#: The default policy, except that the quantum model is always the candidate.
QUANTUM_CANDIDATE_POLICY = str(
    Path(__file__).resolve().parent / "policies" / "quantum-candidate.yaml"
)

#: A policy that promotes the test bundles (4 qubits) and always registers the quantum model.
#: Its lock margins (wait 300 s, lease 600 s) are far beyond any gate here, however loaded
#: the machine: a slow gate is never taken for a dead one. The churn rule is off (the tests
#: retrain the same bundles and expect champion moves); its own tests switch it on.
TEST_POLICY = {
    "thresholds": {"roc_auc": 0.9},
    "champion": {"roc_auc": {"max_regression": 0.0}},
    "churn": None,
    "quantum": {"min_lift": {}},
    "concurrency": {"lock_timeout_seconds": 300, "lock_lease_seconds": 600},
}


def publish_request(bundles, policy: dict | None = None, *, name: str = "test-classifier", **kw):
    """A PublishRequest for the test bundles under ``TEST_POLICY`` updated with ``policy``."""
    from components.registry import mlflow_names as names
    from components.registry.policy import parse_policy
    from components.registry.publish import PublishRequest

    split, source, quantum, classical, calibration = bundles
    kw.setdefault("calibration", calibration)
    merged = {**TEST_POLICY, **(policy or {})}
    return PublishRequest(
        model_name=name,
        baseline=classical,
        quantum=quantum,
        quantum_enabled=True,
        quantum_backend="statevector",
        dataset=source,
        train=split.train,
        test=split.test,
        label_column="target",
        policy=parse_policy(merged),
        params={"n_qubits": 4, "seed": 7},
        lineage_tags={names.TAG_GIT_COMMIT: "abc123", names.TAG_KFP_JOB_ID: "job-1"},
        profile_markdown="## profile\n",
        **kw,
    )


def log_tiny_model(tracking_uri: str, experiment: str):
    """Log a one-feature LogisticRegression; returns (run_id, model info) for versions that
    differ only by their tags."""
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    x = pd.DataFrame({"x": [0.0, 1.0]})
    model = LogisticRegression().fit(x, [0, 1])
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(x, model.predict(x))
        )
    return run.info.run_id, info


def numeric_frame(n: int = 60, n_features: int = 5, seed: int = 0):
    """``n`` rows of ``n_features`` normal columns ``f0..`` and a balanced 0/1 ``label``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        rng.normal(size=(n, n_features)), columns=[f"f{i}" for i in range(n_features)]
    )
    df["label"] = np.arange(n) % 2
    return df


class MovableClock:
    """``time.time`` plus an offset a test moves forward: a lease "expires" when the test says
    so (``advance``), never because the machine was slow or fast."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def run_quantum(prepared_tiny, tmp_path, backend, **kw):
    """The quantum step on a small prepared split, options from the pipeline defaults."""
    from components.steps.train_quantum.step import run_quantum_step
    from tests.step_options import quantum_options

    split, pre = prepared_tiny
    return run_quantum_step(
        split, pre, tmp_path / "q", quantum_options(backend=backend, seed=3, **kw)
    )


def random_angles(n: int, q: int, seed: int = 0):
    """``n`` rows of ``q`` angles in [0, 0.4 pi)."""
    import numpy as np

    return np.random.default_rng(seed).uniform(0, 0.4 * np.pi, size=(n, q))


def _feature_maps():
    from components.feature_maps import FeatureMap

    return [
        FeatureMap("zz", 3, reps=2, entanglement="linear"),
        FeatureMap("zz", 4, reps=1, entanglement="full"),
        FeatureMap("angle", 3, rotation="x"),
    ]


#: The feature maps every backend is checked on.
FEATURE_MAPS = _feature_maps()
