"""Every documented option reaches the registry: each choice ``qubeflow params`` lists runs
through the real pipeline into a registered version (here or in a named test elsewhere), and
every parameter a run is given is what its MLflow run records — or is listed below with where
else it lands and why it is not a run param."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mlflow import MlflowClient

from components.registry import mlflow_names as names
from pipelines.config import PipelineConfig, parameter_docs
from pipelines.local import run_locally
from tests.support import QUANTUM_CANDIDATE_POLICY

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

#: Three runs that between them set every non-default choice not run elsewhere, and move the
#: numeric options off their defaults (2 qubits keeps them quick).
RUNS = {
    "angle-circular-projected": {
        "feature_map": "angle",
        "entanglement": "circular",
        "quantum_method": "projected",
        "quantum_fallback": "fail",
        "promotion_mode": "enabled",
        "reps": 1,
        "bandwidth": 0.2,
        "seed": 7,
    },
    "zz-full-nystroem": {
        "entanglement": "full",
        "quantum_method": "nystroem",
        "promotion_mode": "disabled",
        "nystroem_landmarks": 32,
        "test_size": 0.3,
        "min_samples_per_class": 5,
    },
    "explicit-fidelity": {
        "quantum_method": "fidelity",
        "exact_max_rows": 1000,
        "classical_max_seconds": 600.0,
        "quantum_max_circuits": 50_000,
        "quantum_max_seconds": 900.0,
        "quantum_max_retries": 1,
    },
}
#: Choices whose end-to-end run lives in another test (file, test function).
ELSEWHERE = {
    ("impute", "mean"): ("e2e/test_pipeline_local.py", "test_imputed_data_trains_registers_and_serves_rows_with_gaps"),
    ("impute", "median"): ("e2e/test_pipeline_local.py", "test_imputed_data_trains_registers_and_serves_rows_with_gaps"),
    ("impute", "most_frequent"): ("e2e/test_pipeline_local.py", "test_imputed_data_trains_registers_and_serves_rows_with_gaps"),
    ("promotion_mode", "dry_run"): ("e2e/test_pipeline_local.py", "test_dry_run_records_a_full_decision_and_leaves_aliases_untouched"),
}  # fmt: skip
#: Parameters that are not MLflow run params, and where they land instead.
NOT_RUN_PARAMS = {
    "promotion_policy": "recorded as promotion_policy_hash (the policy's content, not its path)",
    "git_commit": "the run's mlflow.source.git.commit tag",
    "mlflow_tracking_uri": "where the run is recorded",
    "kernel_fanout_min_seconds": "how the kernel is computed, not what: the fan-out test "
    "proves the fanned-out kernel equals the single-process one",
    "kernel_tile_rows": "as kernel_fanout_min_seconds",
    # cluster settings: compiled into the platform spec (tests/components/test_compile.py);
    # the local runner ignores them
    "quantum_secret_name": "cluster only",
    "data_secret_name": "cluster only",
    "mlflow_secret_name": "cluster only",
    "quantum_node_selector": "cluster only",
    "quantum_tolerations": "cluster only",
    "quantum_cpu_request": "cluster only",
    "quantum_cpu_limit": "cluster only",
    "quantum_memory_request": "cluster only",
    "quantum_memory_limit": "cluster only",
    "step_cpu_request": "cluster only",
    "step_cpu_limit": "cluster only",
    "step_memory_request": "cluster only",
    "step_memory_limit": "cluster only",
}


def _defined_tests(relpath: str) -> set[str]:
    tree = ast.parse((TESTS / relpath).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_documented_choice_has_an_end_to_end_run():
    defaults = PipelineConfig()
    missing = []
    for name, doc in parameter_docs().items():
        for choice in doc.choices or ():
            if choice == getattr(defaults, name):
                continue  # every default run runs it
            if any(run.get(name) == choice for run in RUNS.values()):
                continue
            where = ELSEWHERE.get((name, choice))
            if where is None or where[1] not in _defined_tests(where[0]):
                missing.append(f"{name}={choice!r}")
    assert missing == [], f"documented choices no pipeline run exercises: {missing}"
    assert set(NOT_RUN_PARAMS) <= set(PipelineConfig.names())  # no stale exemption


@pytest.mark.parametrize("run", list(RUNS))
def test_the_options_a_run_is_given_are_what_the_registry_records(mlflow_server, tmp_path, run):
    name = f"e2e-options-{run}"
    config = PipelineConfig(
        mlflow_tracking_uri=mlflow_server.uri,
        registered_model_name=name,
        experiment_name=f"exp-{name}",
        promotion_policy=QUANTUM_CANDIDATE_POLICY,
        n_qubits=2,
        **RUNS[run],
    )
    result = run_locally(config, state_dir=tmp_path)
    client = MlflowClient(mlflow_server.uri)
    mlflow_run = client.get_run(result.summary["run_id"])
    recorded = mlflow_run.data.params
    expected = {
        key: str(getattr(config, key))
        for key in PipelineConfig.names()
        if key not in NOT_RUN_PARAMS
    }
    mode = config.promotion_mode or "enabled"  # '' = the policy file's mode, recorded resolved
    expected["promotion_mode"] = mode
    assert {k: recorded.get(k) for k in expected} == expected
    version = client.get_model_version(name, result.summary["model_version"])
    method = RUNS[run]["quantum_method"]
    assert version.tags[names.TAG_QUANTUM_METHOD] == method  # what ran is what was asked
    assert version.tags[names.TAG_MODEL_KIND] == "quantum"  # no fallback: it really ran
    assert version.tags[names.TAG_GATE_MODE] == mode
    aliases = client.get_registered_model(name).aliases
    if mode == "enabled":
        assert {a: str(v) for a, v in aliases.items()} == {names.ALIAS_CHAMPION: version.version}
    else:  # disabled: registered, never promoted
        assert aliases == {} and version.tags[names.TAG_GATE_APPLIED] == "false"
