"""Adding a backend family is one folder plus its registration: a toy family, written to a
temporary folder and loaded as a plugin, is usable everywhere a built-in family is —
backend lookup, ``qubeflow backends``, the fan-out decision, failure classification, lineage
packages and the image build — without touching any other file."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from components.feature_maps import FeatureMap
from components.quantum import failures
from components.quantum.backends import (
    PLUGINS_ENV,
    get_backend,
    image_extras,
    is_exact_backend,
    list_backends,
    registry,
    sdk_packages,
)
from components.quantum.budget import QuantumBudget
from components.quantum.methods import DataShape, measure_rates, plan_method
from components.quantum.tiles import plan_tiles

TOY_FAMILY = '''
"""A toy backend family: exact statevectors (it reuses the NumPy engine)."""
from components.errors import BackendError
from components.quantum.backends import StatevectorBackend
from components.quantum.backends.registry import BackendFamily, always_exact, register_backend
from components.quantum.failures import QuantumStepFailure


class ToyOutage(Exception):
    """What the toy SDK raises when its service is down."""


class ToyBackend(StatevectorBackend):
    family = "toy"


def create(parsed, ctx):
    if parsed.options:
        raise BackendError("'toy' takes no options", field="quantum_backend")
    return ToyBackend(ctx)


def classify(exc):
    if type(exc).__name__ == "ToyOutage":
        return QuantumStepFailure("unavailable", f"toy service down: {exc}", transient=True)
    return None


register_backend(BackendFamily(
    "toy", create, "toy", "a toy exact family (test)", is_exact=always_exact,
    classify=classify, sdk_packages=("numpy",), extra="toy"))
'''


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """The toy family's folder on sys.path, named in QUBEFLOW_BACKEND_PLUGINS; the registry is
    restored afterwards."""
    folder = tmp_path / "toyfam"
    folder.mkdir()
    (folder / "__init__.py").write_text(textwrap.dedent(TOY_FAMILY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, "toyfam")
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.setattr(registry, "_loaded_plugins", set())
    monkeypatch.setattr(failures, "_CLASSIFIERS", list(failures._CLASSIFIERS))
    yield folder
    sys.modules.pop("toyfam", None)


def test_a_new_family_is_one_folder_and_its_registration(toy_family):
    backend = get_backend("toy")
    fmap = FeatureMap(kind="zz", n_qubits=3, reps=2, entanglement="linear")
    x = np.random.default_rng(0).uniform(0, np.pi, size=(6, 3))
    np.testing.assert_allclose(
        backend.kernel(fmap, x), get_backend("statevector").kernel(fmap, x), atol=1e-12
    )
    assert any(s.family == "toy" and s.usable for s in list_backends())


def test_its_registration_drives_fanout_failures_lineage_and_images(toy_family):
    from pipelines.image_build import plan as image_plan

    assert is_exact_backend("toy")
    backend, fmap = get_backend("toy"), FeatureMap(kind="zz", n_qubits=4)
    plan = plan_method(
        "nystroem",
        backend,
        fmap,
        DataShape(5000, 1000, 8),
        landmarks=64,
        exact_max_rows=100,
        budget=QuantumBudget(),
        rates=measure_rates(backend, fmap),
    )
    assert plan.cost.seconds is not None  # an exact family is priced from measured rates
    tiles = plan_tiles(
        5000,
        1000,
        method=plan.method,
        landmarks=plan.landmarks,
        estimated_seconds=plan.cost.seconds,
        min_seconds=0,
        tile_rows=1000,
    )
    assert len(tiles) == 6  # so its Nystroem features fan out
    outage = type("ToyOutage", (Exception,), {})("503 from toy cloud")
    failure = failures.classify(outage)
    assert (failure.reason, failure.transient) == ("unavailable", True)
    assert "numpy" in sdk_packages()
    assert "toy" in image_extras()
    (step,) = image_plan("docker", ["toy"])
    assert step.ref.rsplit("/", 1)[-1].startswith("qubeflow-quantum-toy:")
    assert "QUBEFLOW_EXTRA=toy" in step.command and "images/quantum/Dockerfile" in step.command


def test_an_unknown_family_is_an_error_naming_the_value():
    from components.errors import BackendError

    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        is_exact_backend("nope")


def test_builtin_families_declare_their_facts():
    fams = {f.family: f for f in registry.families()}
    assert {"statevector", "pennylane", "qiskit-aer", "ibm", "ibm-local"} <= set(fams)
    assert fams["qiskit-aer"].extra == fams["ibm"].extra == "qiskit"
    assert fams["pennylane"].extra == "pennylane" and fams["statevector"].extra == ""
    assert is_exact_backend("qiskit-aer") and not is_exact_backend("qiskit-aer?shots=100")
    assert not is_exact_backend("ibm:ibm_brisbane")
    assert {"qiskit", "qiskit-ibm-runtime", "pennylane"} <= set(sdk_packages())
