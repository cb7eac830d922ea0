"""The pipeline parameters: loading, coercion and validation at the edge."""

from __future__ import annotations

import pytest

from components.errors import BackendError, ConfigError
from pipelines.config import PipelineConfig

# ---- pipeline configuration ---------------------------------------------------------


def test_defaults_validate():
    assert PipelineConfig().validate().quantum_backend == "statevector"


def test_set_overrides_are_typed(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("n_qubits: 4\nquantum_enabled: false\ndataset: sklearn:wine\n")
    cfg = PipelineConfig.load(cfg_file, ["n_qubits=6", "promotion_mode=dry_run", "seed=7"])
    assert (cfg.n_qubits, cfg.quantum_enabled, cfg.promotion_mode, cfg.seed) == (
        6,
        False,
        "dry_run",
        7,
    )
    assert cfg.dataset == "sklearn:wine"


@pytest.mark.parametrize(
    "items,field,message",
    [
        (["nqubits=4"], "nqubits", "unknown parameter"),
        (["n_qubits=four"], "n_qubits", "expected an integer"),
        (["n_qubits=2.5"], "n_qubits", "expected an integer"),
        (["quantum_enabled=maybe"], "quantum_enabled", "expected true or false"),
        (["test_size=lots"], "test_size", "expected a number"),
        (["n_qubits"], "--set", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_field(items, field, message):
    with pytest.raises(ConfigError, match=message) as e:
        PipelineConfig.load(None, items)
    assert e.value.field == field


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"dataset": "sklearn:mnist"}, "dataset"),
        ({"test_size": 1.0}, "test_size"),
        ({"impute": "zero"}, "impute"),
        ({"n_qubits": 40}, "n_qubits"),
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"entanglement": "ring"}, "entanglement"),
        ({"promotion_policy": "no/such/policy.yaml"}, "promotion_policy"),
        ({"promotion_mode": "sometimes"}, "promotion_mode"),
        ({"registered_model_name": "bad/name"}, "registered_model_name"),
        ({"registered_model_name": "qf5.gate-lock"}, "registered_model_name"),
        ({"quantum_backend": "warp"}, "quantum_backend"),
        ({"quantum_backend": "qiskit-aer?noise=FakeNowhereV2"}, "quantum_backend"),
        ({"quantum_fallback": "retry"}, "quantum_fallback"),
        ({"quantum_max_shots": -1}, "quantum_max_shots"),
        ({"quantum_max_circuits": -5}, "quantum_max_circuits"),
        ({"quantum_max_seconds": -1.0}, "quantum_max_seconds"),
        ({"quantum_max_retries": -1}, "quantum_max_retries"),
        ({"quantum_max_retries": 11}, "quantum_max_retries"),
    ],
)
def test_validation_names_the_field(changes, field):
    with pytest.raises((ConfigError, BackendError)) as e:
        PipelineConfig().replace(**changes).validate()
    assert e.value.field == field


@pytest.mark.parametrize("backend", ["warp", "qiskit-aer?noise=FakeNowhereV2"])
def test_unknown_backend_is_fine_when_the_quantum_step_is_off(backend):
    with pytest.raises((ConfigError, BackendError)) as e:
        PipelineConfig(quantum_backend=backend).validate()  # on: rejected, naming the field
    assert e.value.field == "quantum_backend"
    off = PipelineConfig(quantum_enabled=False, quantum_backend=backend)
    assert off.validate() is off  # off: the same name passes, kept as given
    assert off.quantum_backend == backend


def test_missing_ibm_credentials_do_not_stop_a_run_before_it_starts(monkeypatch):
    """An unavailable ibm: backend must reach the quantum step and fall back there."""
    from components.quantum.backends import get_backend
    from components.quantum.failures import QuantumStepFailure

    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    cfg = PipelineConfig(quantum_backend="ibm:ibm_brisbane")
    assert cfg.validate() is cfg and cfg.quantum_fallback == "classical"
    # Where the step connects, the missing token is a non-transient auth failure (no retries,
    # no network), which the step turns into the classical fallback.
    with pytest.raises(QuantumStepFailure) as e:
        get_backend(cfg.quantum_backend).connect()
    assert (e.value.reason, e.value.transient) == ("auth", False)
    assert "QISKIT_IBM_TOKEN is not set" in str(e.value)


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        PipelineConfig.load(bad)
