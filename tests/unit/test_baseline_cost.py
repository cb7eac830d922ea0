"""The classical baseline's size estimate and its limit (``classical_max_seconds``): priced
from the row count alone, refused by the data step before anything is fitted."""

from __future__ import annotations

import pytest

from components.errors import ConfigError
from components.steps.prepare_data.step import prepare
from components.training.baseline_cost import check_baseline_cost, estimate_baseline
from components.training.grids import CV_MAX_ROWS
from tests.step_options import prepare_options


def test_the_svc_grid_grows_with_the_square_of_the_rows():
    small = estimate_baseline(2_000, exact_max_rows=100_000, landmarks=256)
    large = estimate_baseline(20_000, exact_max_rows=100_000, landmarks=256)
    assert (small.method, large.method) == ("svc", "svc")
    assert small.fits == large.fits == 12 * 3 + 1  # 4 C x 3 gamma, 3 folds, one refit
    assert 80 < large.seconds / small.seconds <= 100


def test_above_exact_max_rows_the_baseline_is_linear_in_the_rows():
    a = estimate_baseline(200_000, exact_max_rows=5_000, landmarks=256)
    b = estimate_baseline(400_000, exact_max_rows=5_000, landmarks=256)
    assert a.method == b.method == "nystroem"
    assert 1.5 < b.seconds / a.seconds < 2.0  # the CV part is capped at CV_MAX_ROWS rows
    # what the switch buys at a size users have: days as an SVC, minutes as Nystroem
    svc = estimate_baseline(750_000, exact_max_rows=10**6, landmarks=256)
    assert svc.seconds > 86_400 and b.seconds < 600
    assert "days" in svc.describe() and "~99 s" in b.describe()


def test_landmarks_never_exceed_the_rows():
    tiny = estimate_baseline(CV_MAX_ROWS // 100, exact_max_rows=0, landmarks=10**6)
    assert tiny.method == "nystroem" and tiny.seconds < 5


def test_a_plan_over_the_limit_is_refused_with_the_field_and_the_remedy():
    plan = estimate_baseline(375_000, exact_max_rows=10**6, landmarks=256)
    with pytest.raises(ConfigError) as err:
        check_baseline_cost(plan, 3600)
    assert err.value.field == "classical_max_seconds"
    message = str(err.value)
    assert "~21.3 h (RBF SVC, 37 CV fits on up to 375,000 rows)" in message
    assert "over the limit of 60 min" in message and "lower exact_max_rows" in message
    nystroem = estimate_baseline(10**8, exact_max_rows=5000, landmarks=256)
    with pytest.raises(ConfigError, match="lower nystroem_landmarks or sample the table"):
        check_baseline_cost(nystroem, 3600)


def test_zero_means_no_limit_and_a_negative_limit_is_refused():
    plan = estimate_baseline(375_000, exact_max_rows=10**6, landmarks=256)
    assert check_baseline_cost(plan, 0).endswith("no limit")
    assert "limit 60 min" in check_baseline_cost(
        estimate_baseline(426, exact_max_rows=5000, landmarks=256), 3600
    )
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="must be a number >= 0"):
            check_baseline_cost(plan, bad)
        with pytest.raises(ConfigError) as err:
            prepare_options(classical_max_seconds=bad)
        assert err.value.field == "classical_max_seconds"


def test_the_data_step_refuses_before_fitting_anything(monkeypatch):
    fitted = []
    monkeypatch.setattr(
        "components.data.preprocessing.fit_preprocessor", lambda *a, **k: fitted.append(a)
    )
    options = prepare_options(exact_max_rows=10**6, classical_max_seconds=0.2)
    with pytest.raises(ConfigError, match=r"classical baseline ~0\.6 s"):
        prepare(options)
    assert fitted == []


def test_the_data_step_records_the_estimate_it_accepted():
    data = prepare(prepare_options())
    assert data.baseline.method == "svc" and data.baseline.n_train == len(data.split.train)
    assert data.lineage(prepare_options())["baseline_estimate"]["fits"] == 37


def test_qubeflow_estimate_reports_a_baseline_over_its_limit():
    from pipelines.cli import main
    from pipelines.config import PipelineConfig
    from pipelines.estimate import estimate_run

    config = PipelineConfig(n_qubits=2, exact_max_rows=10**6, classical_max_seconds=0.2)
    report = estimate_run(config).to_dict()
    assert report["within_budget"] is False and report["refusals"] == []
    assert "classical_max_seconds" in report["baseline_refusal"]
    assert report["baseline"]["method"] == "svc" and report["baseline"]["fits"] == 37
    args = ["estimate", "--set", "n_qubits=2", "--set", "exact_max_rows=1000000"]
    assert main([*args, "--set", "classical_max_seconds=0.2"]) == 3
    assert main(args) == 0
