"""The promotion gate's rules and the pipeline-parameter edge validation."""

from __future__ import annotations

import pytest

from components.errors import BackendError, ConfigError
from components.registry.gate import PROMOTE, REJECT, PromotionPolicy, evaluate_promotion
from pipelines.config import PipelineConfig

GOOD = {"roc_auc": 0.95, "accuracy": 0.9, "balanced_accuracy": 0.9, "f1": 0.9}


def test_first_candidate_above_threshold_is_promoted():
    d = evaluate_promotion(GOOD, PromotionPolicy())
    assert d.outcome == PROMOTE and d.champion_version is None
    assert [r.rule for r in d.rules] == ["threshold", "not_worse_than_champion", "not_fallback"]
    assert "no current champion" in d.reasons


def test_below_threshold_is_rejected_with_the_observed_value():
    d = evaluate_promotion({**GOOD, "roc_auc": 0.8}, PromotionPolicy(min_value=0.9))
    assert d.outcome == REJECT
    assert d.reasons == ["roc_auc=0.8000 < threshold 0.9"]
    assert "**FAIL**" in d.to_markdown()


def test_worse_than_champion_is_rejected_and_tolerance_applies():
    champ = {"roc_auc": 0.97}
    d = evaluate_promotion(GOOD, PromotionPolicy(), champion_version="3", champion_metrics=champ)
    assert d.outcome == REJECT and "champion v3 0.9700" in d.reasons[0]
    d = evaluate_promotion(GOOD, PromotionPolicy(max_regression=0.05), champion_version="3",
                           champion_metrics=champ)
    assert d.outcome == PROMOTE


def test_equal_to_champion_is_promoted():
    d = evaluate_promotion(GOOD, PromotionPolicy(), champion_version="1",
                           champion_metrics={"roc_auc": 0.95})
    assert d.promoted


def test_fallback_model_is_never_promoted():
    d = evaluate_promotion(GOOD, PromotionPolicy(), fallback=True)
    assert d.outcome == REJECT and "fell back" in d.reasons[0]


@pytest.mark.parametrize("kwargs,field", [
    ({"metric": "precision"}, "promotion_metric"), ({"min_value": 1.5}, "promotion_threshold"),
    ({"max_regression": -0.1}, "max_regression"),
])
def test_policy_validation(kwargs, field):
    with pytest.raises(ConfigError) as e:
        PromotionPolicy(**kwargs)
    assert e.value.field == field


def test_policy_hash_is_stable_and_sensitive():
    assert PromotionPolicy().hash == PromotionPolicy().hash
    assert PromotionPolicy().hash != PromotionPolicy(min_value=0.91).hash


# ---- pipeline configuration ---------------------------------------------------------


def test_defaults_validate():
    assert PipelineConfig().validate().quantum_backend == "statevector"


def test_set_overrides_are_typed(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("n_qubits: 4\nquantum_enabled: false\ndataset: sklearn:wine\n")
    cfg = PipelineConfig.load(cfg_file, ["n_qubits=6", "promotion_threshold=0.8", "seed=7"])
    assert (cfg.n_qubits, cfg.quantum_enabled, cfg.promotion_threshold, cfg.seed) == (6, False, 0.8, 7)
    assert cfg.dataset == "sklearn:wine"


@pytest.mark.parametrize("items,field,message", [
    (["nqubits=4"], "nqubits", "unknown parameter"),
    (["n_qubits=four"], "n_qubits", "expected an integer"),
    (["n_qubits=2.5"], "n_qubits", "expected an integer"),
    (["quantum_enabled=maybe"], "quantum_enabled", "expected true or false"),
    (["test_size=lots"], "test_size", "expected a number"),
    (["n_qubits"], "--set", "expected key=value"),
])
def test_bad_overrides_name_the_field(items, field, message):
    with pytest.raises(ConfigError, match=message) as e:
        PipelineConfig.load(None, items)
    assert e.value.field == field


@pytest.mark.parametrize("changes,field", [
    ({"dataset": "sklearn:mnist"}, "dataset"), ({"test_size": 1.0}, "test_size"),
    ({"impute": "zero"}, "impute"), ({"n_qubits": 40}, "n_qubits"),
    ({"bandwidth": 0.0}, "bandwidth"), ({"entanglement": "ring"}, "entanglement"),
    ({"promotion_metric": "loss"}, "promotion_metric"),
    ({"registered_model_name": "bad/name"}, "registered_model_name"),
    ({"quantum_backend": "warp"}, "quantum_backend"),
    ({"quantum_backend": "qiskit-aer?noise=FakeNowhereV2"}, "quantum_backend"),
    ({"quantum_fallback": "retry"}, "quantum_fallback"),
    ({"quantum_max_shots": -1}, "quantum_max_shots"),
    ({"quantum_max_circuits": -5}, "quantum_max_circuits"),
    ({"quantum_max_seconds": -1.0}, "quantum_max_seconds"),
    ({"quantum_max_retries": -1}, "quantum_max_retries"),
    ({"quantum_max_retries": 11}, "quantum_max_retries"),
])
def test_validation_names_the_field(changes, field):
    with pytest.raises((ConfigError, BackendError)) as e:
        PipelineConfig().replace(**changes).validate()
    assert e.value.field == field


def test_unknown_backend_is_fine_when_the_quantum_step_is_off():
    PipelineConfig(quantum_enabled=False, quantum_backend="ibm:somewhere").validate()


def test_missing_ibm_credentials_do_not_stop_a_run_before_it_starts(monkeypatch):
    """An unavailable ibm: backend must reach the quantum step and fall back there."""
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    PipelineConfig(quantum_backend="ibm:ibm_brisbane").validate()


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        PipelineConfig.load(bad)
