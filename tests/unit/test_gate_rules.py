"""The promotion policy (loading, validation) and every gate rule passing and failing,
the modes, and the champion history's queries. Pure functions: no registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from components.errors import ConfigError, RegistryError
from components.registry import mlflow_names as names
from components.registry.compatibility import ModelInterface
from components.registry.gate import PROMOTE, REJECT, SKIPPED, Evidence, baseline_wins, evaluate
from components.registry.history import (
    HistoryEntry,
    champion_at,
    parse_history,
    rollback_target,
)
from components.registry.policy import DEFAULT_POLICY, load_policy, parse_policy

GOOD = {"roc_auc": 0.95, "accuracy": 0.9, "balanced_accuracy": 0.9, "f1": 0.9}
#: The interface of a two-class model on two numeric columns (candidate and champion alike).
INTERFACE = ModelInterface.of([("mean radius", "double"), ("mean texture", "double")], [0, 1])
LINEAGE = {
    names.TAG_DATASET_SHA256: "ab" * 32,
    names.TAG_GIT_COMMIT: "deadbeef",
    names.TAG_KFP_JOB_ID: "job-1",
    names.TAG_QUANTUM_CALIBRATION_HASH: "cafe",
}


def tags(
    metrics=GOOD,
    *,
    kind="quantum",
    baseline=None,
    quantum_metrics=None,
    enabled=True,
    fallback=False,
    backend_kind="exact-simulator",
    calibrated=None,
    **extra,
) -> dict:
    out = {
        names.TAG_MODEL_KIND: kind,
        names.TAG_QUANTUM_ENABLED: str(enabled).lower(),
        names.TAG_QUANTUM_FALLBACK: str(fallback).lower(),
        names.TAG_QUANTUM_BACKEND_KIND: backend_kind,
        **LINEAGE,
        **INTERFACE.to_tags(),
    }
    out.update({f"metric.{k}": f"{v:.6f}" for k, v in metrics.items()})
    out.update({f"baseline.metric.{k}": f"{v:.6f}" for k, v in (baseline or metrics).items()})
    out.update({f"quantum.metric.{k}": f"{v:.6f}" for k, v in (quantum_metrics or {}).items()})
    if fallback:
        out[names.TAG_QUANTUM_FALLBACK_REASON] = "unavailable: HTTP 503"
    if calibrated is not None:
        out[names.TAG_QUANTUM_CALIBRATION_TIME] = calibrated
    out.update(extra)
    return out


def decide(
    policy=None,
    *,
    champion=None,
    champion_metrics=None,
    champion_interface=INTERFACE,
    version="2",
    **kw,
):
    policy = policy or parse_policy({"churn": None})  # the churn rule has its own tests
    return evaluate(
        policy,
        Evidence.from_tags(version, tags(**kw)),
        model_name="m",
        champion_version=champion,
        champion_metrics=champion_metrics,
        champion_interface=champion_interface,
    )


def rule(decision, name):
    return next(r for r in decision.rules if r.rule == name)


# ---- policy --------------------------------------------------------------------------


def test_the_documented_default_policy_loads_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # resolved against the package when not under the cwd
    policy = load_policy(DEFAULT_POLICY)
    assert policy.mode == "enabled" and policy.thresholds == {
        "roc_auc": 0.9,
        "balanced_accuracy": 0.85,
    }
    assert policy.quantum.when_baseline_wins == "register_classical"
    assert set(policy.lineage.required) == {
        "dataset_digest",
        "calibration_hash",
        "git_commit",
        "pipeline_run_id",
    }


def test_policy_hash_is_stable_sensitive_and_ignores_the_mode():
    a, b = parse_policy({}), parse_policy({})
    assert a.hash == b.hash == a.with_mode("dry_run").hash
    assert a.hash != parse_policy({"thresholds": {"roc_auc": 0.91}}).hash


@pytest.mark.parametrize(
    "data,message",
    [
        ({"thresholds": {"roc_auc": 1.5}}, "thresholds.roc_auc: must be in [0, 1], got 1.5"),
        ({"thresholds": {"precision": 0.9}}, "thresholds.precision: Input should be 'accuracy'"),
        (
            {"champion": {"roc_auc": {"min_delta": 0.1, "max_regression": 0.0}}},
            "champion.roc_auc: give exactly one of min_delta or max_regression",
        ),
        ({"champion": {"roc_auc": {"max_regression": -0.1}}}, "champion.roc_auc.max_regression"),
        ({"mode": "sometimes"}, "mode: Input should be 'disabled', 'dry_run' or 'enabled'"),
        ({"quantum": {"when_baseline_wins": "shrug"}}, "quantum.when_baseline_wins"),
        ({"quantum": {"max_calibration_age_hours": 0}}, "quantum.max_calibration_age_hours"),
        ({"lineage": {"required": ["git"]}}, "lineage.required.0"),
        ({"concurrency": {"lock_timeout_seconds": -1}}, "concurrency.lock_timeout_seconds"),
        (
            {"thresholds": {"roc_auc": 0.9}, "threshold": 1},
            "threshold: Extra inputs are not permitted",
        ),
        ({"version": 2}, "version: Input should be 1"),
    ],
)
def test_a_bad_policy_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        parse_policy(data)
    assert e.value.field == "promotion_policy"


def test_bad_policy_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: [roc_auc\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text("- roc_auc\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_policy(bad)
    good = tmp_path / "good.yaml"
    good.write_text("mode: dry_run\nthresholds: {f1: 0.5}\n")
    assert load_policy(good).mode == "dry_run"
    assert load_policy(good, mode="enabled").mode == "enabled"
    with pytest.raises(ConfigError) as e:
        load_policy(good, mode="yes")
    assert e.value.field == "promotion_mode"


# ---- rules ---------------------------------------------------------------------------


def test_a_good_first_candidate_passes_every_rule():
    d = decide()
    assert d.outcome == PROMOTE and all(r.passed for r in d.rules)
    assert [r.rule for r in d.rules] == [
        "compatibility",
        "threshold.roc_auc",
        "threshold.balanced_accuracy",
        "champion.roc_auc",
        "champion.balanced_accuracy",
        "churn",
        "fallback",
        "quantum_lift.roc_auc",
        "calibration_age",
        "kernel_agreement",
        "lineage.dataset_digest",
        "lineage.calibration_hash",
        "lineage.git_commit",
        "lineage.pipeline_run_id",
    ]
    assert parse_policy({}) == load_policy(DEFAULT_POLICY)  # code defaults = documented file
    assert rule(d, "champion.roc_auc").detail == "no current champion"


def test_an_incompatible_candidate_is_rejected_first_with_its_differences():
    iris = ModelInterface.of(
        [("sepal length (cm)", "double"), ("mean texture", "long")], ["0", "1", "2"]
    )
    d = decide(champion="1", champion_metrics=GOOD, champion_interface=iris)
    assert not d.promoted and d.rules[0].rule == "compatibility"
    detail = d.reasons[0]
    assert detail.startswith("incompatible with champion v1: ")
    assert "1 input column(s) missing: sepal length (cm)" in detail
    assert "1 input column(s) added: mean radius" in detail
    assert "1 column type(s) changed: mean texture long->double" in detail
    assert "labels ['0', '1'] instead of the champion's ['0', '1', '2']" in detail
    assert "task binary instead of multiclass" in detail
    # The same columns in another order break positional clients too.
    swapped = ModelInterface.of(list(reversed(INTERFACE.inputs)), [0, 1])
    d = decide(champion="1", champion_metrics=GOOD, champion_interface=swapped)
    assert "input columns in a different order" in d.reasons[0]
    ok = decide(champion="1", champion_metrics=GOOD)
    assert ok.promoted and "same 2 input columns" in rule(ok, "compatibility").detail
    # Unknown on either side is a refusal, not a pass; no champion: nothing to break.
    unknown = decide(champion="1", champion_metrics=GOOD, champion_interface=ModelInterface())
    assert not unknown.promoted and "no recorded input schema" in unknown.reasons[0]
    assert rule(decide(), "compatibility").detail == "no current champion"
    # Wide schemas are recorded by hash and still compared.
    wide = ModelInterface.of([(f"c{i}", "double") for i in range(400)], [0, 1])
    tags_ = wide.to_tags()
    assert tags_[names.TAG_MODEL_INPUTS].startswith("sha256:")
    assert ModelInterface.from_tags(tags_).digest == wide.digest


def test_identical_retrains_keep_the_champion_unless_better_by_the_margin_or_it_is_old():
    policy = parse_policy({})  # the default: roc_auc, min_improvement 0.002, 30 days
    now = datetime.now(UTC)
    recent = (now - timedelta(days=2)).isoformat()

    def churn(candidate, champion_auc, since=recent, p=policy):
        d = evaluate(
            p,
            Evidence.from_tags("2", tags({**GOOD, "roc_auc": candidate})),
            model_name="m",
            champion_version="1",
            champion_metrics={**GOOD, "roc_auc": champion_auc},
            champion_interface=INTERFACE,
            champion_since=since,
        )
        return d, rule(d, "churn")

    same, r = churn(0.95, 0.95)
    assert not same.promoted and same.kept_champion
    assert r.kind == "choice" and r.verdict == "keep champion v1" and not r.passed
    assert "+0.0000 < min_improvement 0.002" in r.detail and "champion for 2.0 days" in r.detail
    assert same.headline().startswith("KEPT champion v1")
    assert "keep champion v1" in same.to_text() and "FAIL" not in same.to_text()
    better, r = churn(0.953, 0.95)
    assert better.promoted and r.verdict == "replace champion"
    assert not churn(0.951, 0.95)[0].promoted  # +0.001 < 0.002
    old, r = churn(0.95, 0.95, since=(now - timedelta(days=31)).isoformat())
    assert old.promoted and r.verdict == "replace (champion too old)"
    # Margin 0 still needs a strict improvement; churn: null switches the rule off.
    zero = parse_policy({"churn": {"min_improvement": 0.0, "max_champion_age_days": None}})
    assert not churn(0.95, 0.95, p=zero)[0].promoted
    assert churn(0.9501, 0.95, p=zero)[0].promoted
    assert churn(0.95, 0.95, p=parse_policy({"churn": None}))[0].promoted
    assert rule(decide(policy), "churn").detail == "no current champion"
    with pytest.raises(ConfigError, match=r"churn\.primary_metric"):
        parse_policy({"churn": {"primary_metric": "auc"}})


def test_the_verdict_shows_candidate_champion_and_baseline_and_choices_as_choices():
    # The quantum model lost to its baseline by 0.0002: the classical baseline was
    # registered; its lift rule is the choice it made, not a "pass".
    d = decide(
        champion="1",
        champion_metrics={**GOOD, "roc_auc": 0.94},
        kind="classical",
        quantum_metrics={**GOOD, "roc_auc": 0.9498},
        metrics=GOOD,
    )
    lift = rule(d, "quantum_lift.roc_auc")
    assert lift.kind == "choice" and lift.verdict == "classical baseline"
    assert lift.observed == pytest.approx(-0.0002)
    md = d.to_markdown()
    assert "| quantum_lift.roc_auc | -0.0002 | 0.0000 | chose: classical baseline |" in md
    assert "| metric | candidate v2 | champion v1 | baseline | threshold | result |" in md
    assert "| roc_auc | 0.9500 | 0.9400 | 0.9500 | >= 0.9, >= champion - 0.0 | pass |" in md
    assert d.reasons[0] == "every check passed"
    assert any(x.startswith("quantum_lift.roc_auc: ") for x in d.reasons[1:])
    text = d.to_text().splitlines()
    header = next(line for line in text if line.strip().startswith("metric"))
    row = next(line for line in text if line.strip().startswith("roc_auc"))
    # aligned columns: every value starts under its header
    assert row.index("0.9400") == header.index("champion v1")
    assert row.index("0.9500", row.index("0.9400")) == header.index("baseline")
    failing = decide(champion="1", champion_metrics={**GOOD, "roc_auc": 0.97})
    assert "| roc_auc | 0.9500 | 0.9700 |" in failing.to_markdown()
    assert "**FAIL**" in failing.to_markdown()


def test_threshold_fails_below_and_when_the_metric_is_missing():
    policy = parse_policy({"thresholds": {"roc_auc": 0.96, "f1": 0.5}, "champion": {}})
    d = decide(policy)
    assert d.outcome == REJECT and d.reasons == ["roc_auc=0.9500 < 0.96"]
    assert (rule(d, "threshold.roc_auc").observed, rule(d, "threshold.roc_auc").threshold) == (
        0.95,
        0.96,
    )
    d = decide(policy, metrics={"roc_auc": 0.97})
    assert d.reasons == ["candidate has no f1"]


def test_champion_max_regression_and_min_delta():
    tolerant = parse_policy({"champion": {"roc_auc": {"max_regression": 0.03}}, "churn": None})
    strict = parse_policy({"champion": {"roc_auc": {"min_delta": 0.01}}, "churn": None})
    assert list(strict.champion) == ["roc_auc"]  # a given section replaces the default
    assert decide(champion="1", champion_metrics={"roc_auc": 0.95}).promoted  # equal: ok
    d = decide(champion="1", champion_metrics={"roc_auc": 0.97})
    assert not d.promoted and "champion v1 0.9700 - max_regression 0.0" in d.reasons[0]
    assert decide(tolerant, champion="1", champion_metrics={"roc_auc": 0.97}).promoted
    d = decide(strict, champion="1", champion_metrics={"roc_auc": 0.945})
    assert not d.promoted and rule(d, "champion.roc_auc").threshold == pytest.approx(0.955)
    assert decide(strict, champion="1", champion_metrics={"roc_auc": 0.93}).promoted
    d = decide(champion="1", champion_metrics={})
    assert d.promoted and "has no roc_auc: not compared" in rule(d, "champion.roc_auc").detail
    assert (
        rule(decide(champion="2", version="2"), "champion.roc_auc").detail
        == "candidate is the champion"
    )


def test_quantum_lift_rejects_or_hands_over_to_the_classical_model():
    reject = parse_policy(
        {"quantum": {"min_lift": {"roc_auc": 0.01}, "when_baseline_wins": "reject"}}
    )
    d = decide(reject, baseline={**GOOD, "roc_auc": 0.945})
    assert not d.promoted and "= +0.0050 < 0.01" in d.reasons[0]
    assert decide(reject, baseline={**GOOD, "roc_auc": 0.93}).promoted
    # register_classical: the publisher registers the baseline; its rule records why, passes
    hand_over = parse_policy({"quantum": {"min_lift": {"roc_auc": 0.01}}})
    assert baseline_wins(hand_over, {"roc_auc": 0.95}, {"roc_auc": 0.945})
    assert not baseline_wins(hand_over, {"roc_auc": 0.96}, {"roc_auc": 0.945})
    assert not baseline_wins(reject, {"roc_auc": 0.95}, {"roc_auc": 0.945})
    d = decide(
        hand_over, kind="classical", quantum_metrics={**GOOD, "roc_auc": 0.951}, baseline=GOOD
    )
    r = rule(d, "quantum_lift.roc_auc")
    assert d.promoted and r.passed and "classical baseline registered instead" in r.detail
    d = decide(hand_over, enabled=False, kind="classical")
    assert rule(d, "quantum_lift").detail == "not applicable: quantum step off"


def test_fallback_runs_are_promoted_only_when_the_policy_allows():
    d = decide(kind="classical", fallback=True)
    assert not d.promoted and "fell back (unavailable: HTTP 503)" in d.reasons[0]
    allow = parse_policy({"quantum": {"allow_fallback": True}})
    assert decide(allow, kind="classical", fallback=True).promoted


def test_calibration_age_applies_to_devices_and_noisy_simulators_only():
    fresh = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    stale = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    d = decide(backend_kind="hardware", calibrated=fresh)
    assert d.promoted and rule(d, "calibration_age").observed == pytest.approx(2.0, abs=0.1)
    d = decide(backend_kind="noisy-simulator", calibrated=stale)
    assert not d.promoted and "calibrated 30.0 h ago > 24.0 h" in d.reasons[0]
    d = decide(backend_kind="hardware", calibrated="none (hardware)")
    assert not d.promoted and "calibration time unknown" in d.reasons[0]
    no_limit = parse_policy({"quantum": {"max_calibration_age_hours": None}})
    assert decide(no_limit, backend_kind="hardware", calibrated=stale).promoted
    assert (
        "not applicable: exact-simulator"
        in rule(decide(calibrated=stale), "calibration_age").detail
    )


def test_kernel_agreement_is_recorded_and_judged_only_when_the_policy_says():
    fresh = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    device = dict(backend_kind="hardware", calibrated=fresh)
    aligned = {names.TAG_QUANTUM_KERNEL_ALIGNMENT: "0.970000"}
    d = decide(**device, **aligned)
    assert d.promoted and rule(d, "kernel_agreement").observed == pytest.approx(0.97)
    assert "not judged" in rule(d, "kernel_agreement").detail
    strict = parse_policy({"quantum": {"min_kernel_alignment": 0.98}})
    d = decide(strict, **device, **aligned)
    assert not d.promoted
    assert "alignment with the exact simulation 0.9700 < 0.98" in d.reasons[0]
    assert decide(parse_policy({"quantum": {"min_kernel_alignment": 0.9}}), **device, **aligned)
    assert not decide(strict, **device).promoted  # nothing recorded: refused, not assumed
    # Exact backends serve with the very kernel they trained on.
    assert "not applicable" in rule(decide(strict), "kernel_agreement").detail
    assert decide(strict).promoted
    with pytest.raises(ConfigError, match="min_kernel_alignment"):
        parse_policy({"quantum": {"min_kernel_alignment": 1.5}})


@pytest.mark.parametrize(
    "item,tag",
    [
        ("dataset_digest", names.TAG_DATASET_SHA256),
        ("calibration_hash", names.TAG_QUANTUM_CALIBRATION_HASH),
        ("git_commit", names.TAG_GIT_COMMIT),
        ("pipeline_run_id", names.TAG_KFP_JOB_ID),
    ],
)
def test_missing_lineage_rejects(item, tag):
    d = decide(**{tag: ""})
    assert not d.promoted and d.reasons == [f"{item} MISSING ({tag})"]
    d = decide(**{tag: "unknown"})
    assert not d.promoted
    relaxed = parse_policy(
        {
            "lineage": {
                "required": [
                    i
                    for i in ("dataset_digest", "calibration_hash", "git_commit", "pipeline_run_id")
                    if i != item
                ]
            }
        }
    )
    assert decide(relaxed, **{tag: ""}).promoted


def test_classical_models_need_no_calibration_hash():
    d = decide(kind="classical", enabled=False, **{names.TAG_QUANTUM_CALIBRATION_HASH: ""})
    assert d.promoted and "not applicable" in rule(d, "lineage.calibration_hash").detail


def test_modes():
    disabled = decide(parse_policy({"mode": "disabled"}), metrics={"roc_auc": 0.1})
    assert disabled.outcome == SKIPPED and disabled.rules == []
    assert "gate disabled" in disabled.reasons[0] and "DISABLED" in disabled.headline()
    dry = decide(parse_policy({"mode": "dry_run"}))
    assert dry.outcome == PROMOTE and dry.headline() == "DRY RUN: would promote; aliases untouched"
    md = dry.to_markdown()
    assert "| threshold.roc_auc | 0.9500 | 0.9000 | pass |" in md and "mode `dry_run`" in md
    record = dry.to_dict()
    assert record["policy_hash"] == dry.policy.hash and record["mode"] == "dry_run"
    assert {r["rule"] for r in record["rules"]} >= {"threshold.roc_auc", "lineage.git_commit"}


# ---- history -------------------------------------------------------------------------


def _entry(seq, at, action, version, previous):
    return HistoryEntry(seq=seq, at=at, action=action, version=version, previous=previous)


HISTORY = [
    _entry(1, "2026-01-01T00:00:00+00:00", "promote", "1", None),
    _entry(2, "2026-02-01T00:00:00+00:00", "promote", "3", "1"),
    _entry(3, "2026-03-01T00:00:00+00:00", "promote", "4", "3"),
    _entry(4, "2026-03-02T00:00:00+00:00", "rollback", "3", "4"),
]


def test_champion_at_a_time():
    assert champion_at(HISTORY, "2025-12-31T00:00:00Z") is None
    assert champion_at(HISTORY, "2026-01-15T00:00:00Z").version == "1"
    assert champion_at(HISTORY, "2026-03-01T12:00:00").version == "4"  # naive = UTC
    assert champion_at(HISTORY, "2026-04-01T00:00:00+00:00").action == "rollback"
    with pytest.raises(RegistryError, match="not an ISO-8601 time"):
        champion_at(HISTORY, "yesterday")


def test_rollback_steps_back_through_promotions_not_toggling():
    assert rollback_target(HISTORY[:3], "4") == "3"
    assert rollback_target(HISTORY, "3") == "1"  # v3's promotion came after v1, not v4
    with pytest.raises(RegistryError, match="first champion"):
        rollback_target(HISTORY[:1], "1")
    with pytest.raises(RegistryError, match="moved outside the gate"):
        rollback_target(HISTORY, "9")
    with pytest.raises(RegistryError, match="no champion"):
        rollback_target(HISTORY, None)


def test_history_entries_round_trip_through_tags():
    tags_ = {e.key: e.to_json() for e in HISTORY} | {"other": "x", "gate.history.bad": "{"}
    assert parse_history(tags_) == HISTORY


def test_decisions_are_their_own_records_and_history_is_an_aligned_table():
    from components.registry.history import HistoryReport

    dry = HistoryEntry(
        seq=5,
        at="2026-03-03T10:00:00.123456+00:00",
        action="decision",
        version="5",
        previous="3",
        actor="cli:someone-with-a-long-name@build-host-0123456789.example.org",
        reason="every check passed",
        mode="dry_run",
        policy_hash="0123456789abcdef",
        outcome="promote",
    )
    history = [*HISTORY, dry]
    assert dry.kind == "dry run: would promote" and not dry.moves
    # A decision that moved nothing changes neither the champion at a time nor rollback.
    assert champion_at(history, "2026-04-01T00:00:00Z").version == "3"
    assert rollback_target(history, "3") == "1"
    assert parse_history({e.key: e.to_json() for e in history}) == history
    text = HistoryReport("m", history, "3").to_text().splitlines()
    header, rows = text[2], text[3:]
    assert len(rows) == 5
    # Every cell starts exactly under its column's header (cells are 2+ spaces apart).
    for row in rows:
        assert _starts(row)[: len(_starts(header))] == _starts(header), row
    assert "dry run: would promote" in rows[-1] and dry.actor in rows[-1]  # not cut
    assert "2026-03-03 10:00:00  " in rows[-1]  # seconds, then a gap: columns never touch


def _starts(line):
    import re

    return [m.start() for m in re.finditer(r"(?:^ *|(?<=  ))(?=\S)", line)]
