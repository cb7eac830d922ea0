"""The promotion gate's rules: pure decision logic, no I/O.

The evidence about a candidate is read from its model-version tags (so a version registered by
the pipeline and a version promoted by hand are judged the same way). The rules, each recorded
with the observed value, the threshold and pass/fail:

- ``threshold.<metric>``: the candidate's held-out metric is at least the policy's value;
- ``champion.<metric>``: against the champion at decision time, beat it by ``min_delta`` or
  regress by at most ``max_regression``;
- ``quantum_lift.<metric>``: when the quantum step ran, the quantum model minus the same run's
  classical baseline is at least ``min_lift`` (when the classical model was registered instead
  because of it, the rule records that and passes);
- ``fallback``: a run whose quantum step fell back may be promoted only if the policy allows;
- ``calibration_age``: hardware and noisy-simulator calibrations at most so many hours old;
- ``lineage.<item>``: dataset digest, calibration hash (quantum models), git commit and
  pipeline run id are present.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from components.registry import mlflow_names as names
from components.registry.compatibility import ModelInterface, differences
from components.registry.policy import PromotionPolicy
from components.training.metrics import METRIC_NAMES

PROMOTE = "promote"
REJECT = "reject"
SKIPPED = "skipped"
#: Backend kinds whose calibration ages (exact and ideal shot simulators have none).
CALIBRATED_KINDS = ("hardware", "hardware-emulation", "noisy-simulator")
#: Backend kinds that train and serve with the same exact kernel.
EXACT_KINDS = ("exact-simulator",)
#: Where each required lineage item lives on the model version.
LINEAGE_TAGS = {
    "dataset_digest": names.TAG_DATASET_SHA256,
    "calibration_hash": names.TAG_QUANTUM_CALIBRATION_HASH,
    "git_commit": names.TAG_GIT_COMMIT,
    "pipeline_run_id": names.TAG_KFP_JOB_ID,
}
_MISSING = {"", "unknown", "none"}


CHECK = "check"
CHOICE = "choice"


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome. A ``check`` passes or fails; a ``choice`` (quantum lift, churn)
    records what it chose, e.g. ``classical baseline`` or ``keep champion v3`` — a choice
    that keeps the champion blocks the promotion without being a failure of the candidate."""

    rule: str
    observed: float | str | None
    threshold: float | str | None
    passed: bool
    detail: str
    kind: str = CHECK
    choice: str = ""

    @property
    def verdict(self) -> str:
        if self.kind == CHOICE:
            return self.choice
        return "pass" if self.passed else "FAIL"


@dataclass(frozen=True)
class Evidence:
    """What the gate knows about a candidate version (from its tags)."""

    version: str
    kind: str  # quantum | classical
    metrics: dict[str, float]
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    #: The quantum model's metrics when it ran but the classical model was registered instead.
    quantum_metrics: dict[str, float] = field(default_factory=dict)
    quantum_enabled: bool = False
    fallback: bool = False
    fallback_reason: str = ""
    backend_kind: str = ""
    calibration_time: str = ""
    lineage: dict[str, str] = field(default_factory=dict)
    #: Shot-based quantum candidates: measured vs. exact kernel alignment (None: not recorded).
    kernel_alignment: float | None = None
    #: Input columns, labels and task its clients depend on.
    interface: ModelInterface = field(default_factory=ModelInterface)

    @classmethod
    def from_tags(cls, version: str, tags: dict[str, str]) -> Evidence:
        def metrics(prefix: str) -> dict[str, float]:
            out = {}
            for key, value in tags.items():
                if key.startswith(prefix) and "." not in key[len(prefix) :]:
                    try:
                        out[key[len(prefix) :]] = float(value)
                    except ValueError:
                        continue
            return out

        return cls(
            version=str(version),
            kind=tags.get(names.TAG_MODEL_KIND, "classical"),
            metrics=metrics(names.TAG_METRIC_PREFIX),
            baseline_metrics=metrics(names.TAG_BASELINE_METRIC_PREFIX),
            quantum_metrics=metrics(names.TAG_QUANTUM_METRIC_PREFIX),
            quantum_enabled=tags.get(names.TAG_QUANTUM_ENABLED) == "true",
            fallback=tags.get(names.TAG_QUANTUM_FALLBACK) == "true",
            fallback_reason=tags.get(names.TAG_QUANTUM_FALLBACK_REASON, ""),
            backend_kind=tags.get(names.TAG_QUANTUM_BACKEND_KIND, ""),
            calibration_time=tags.get(names.TAG_QUANTUM_CALIBRATION_TIME, ""),
            lineage={item: tags.get(tag, "") for item, tag in LINEAGE_TAGS.items()},
            kernel_alignment=_float(tags.get(names.TAG_QUANTUM_KERNEL_ALIGNMENT)),
            interface=ModelInterface.from_tags(tags),
        )

    @classmethod
    def from_run(
        cls,
        version: str,
        version_tags: dict[str, str],
        run_tags: dict[str, str],
        run_metrics: dict[str, float],
    ) -> Evidence:
        """The evidence of a version whose tags are trimmed to what a reader scans: the
        rest is its source run's tags and metrics (``classical.<m>``, ``quantum.<m>``)."""
        tags = {**run_tags, **version_tags}
        kind = tags.get(names.TAG_MODEL_KIND, "classical")

        def of(prefix: str) -> dict[str, float]:
            return {
                m: float(run_metrics[f"{prefix}.{m}"])
                for m in METRIC_NAMES
                if f"{prefix}.{m}" in run_metrics
            }

        base = cls.from_tags(version, tags)
        return dataclasses.replace(
            base,
            metrics=of(kind),
            baseline_metrics=of("classical"),
            quantum_metrics=of("quantum") if kind == "classical" else {},
        )

    @staticmethod
    def legacy(version_tags: dict[str, str]) -> bool:
        """Registered before the version tags were trimmed: the metrics are on the version."""
        return any(k.startswith(names.TAG_METRIC_PREFIX) for k in version_tags)


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@dataclass
class GateDecision:
    outcome: str  # promote | reject | skipped
    mode: str
    rules: list[RuleResult]
    policy: PromotionPolicy
    model_name: str
    candidate_version: str
    candidate_kind: str
    champion_version: str | None
    decided_at: str
    #: Whether the alias move happened: true | false | pending (set by the transaction).
    applied: str = "false"
    actor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Metric -> value, side by side in the verdict: the candidate's, the champion's at
    #: decision time and the same run's classical baseline.
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.outcome == PROMOTE

    @property
    def kept_champion(self) -> bool:
        """Rejected only because the churn rule kept the champion."""
        failing = [r for r in self.rules if not r.passed]
        return bool(failing) and all(r.rule == "churn" for r in failing)

    @property
    def reasons(self) -> list[str]:
        """Rejected: the failing rules' details. Promoted: the choices the rules made (every
        check passed)."""
        if self.outcome == SKIPPED:
            return ["gate disabled: no rule evaluated, no alias moved"]
        failing = [r.detail for r in self.rules if not r.passed]
        if failing:
            return failing
        choices = [  # "candidate": nothing to choose (no champion, rule off)
            f"{r.rule}: {r.detail}"
            for r in self.rules
            if r.kind == CHOICE and r.choice != "candidate"
        ]
        return ["every check passed", *choices]

    def metric_rows(self) -> list[dict[str, Any]]:
        """Per metric: candidate, champion, baseline, the thresholds that apply, and the
        verdict of the rules about it (pass / FAIL)."""
        metrics = list(
            dict.fromkeys(
                [
                    *self.policy.thresholds,
                    *self.policy.champion,
                    *self.candidate_metrics,
                    *self.champion_metrics,
                ]
            )
        )
        rows = []
        for m in metrics:
            related = [r for r in self.rules if r.rule in (f"threshold.{m}", f"champion.{m}")]
            need = []
            if m in self.policy.thresholds:
                need.append(f">= {self.policy.thresholds[m]}")
            rule = self.policy.champion.get(m)
            if rule is not None and self.champion_version not in (None, self.candidate_version):
                need.append(
                    f">= champion + {rule.min_delta}"
                    if rule.min_delta is not None
                    else f">= champion - {rule.max_regression}"
                )
            rows.append(
                {
                    "metric": m,
                    "candidate": self.candidate_metrics.get(m),
                    "champion": self.champion_metrics.get(m),
                    "baseline": self.baseline_metrics.get(m),
                    "threshold": ", ".join(need),
                    "result": (
                        ("pass" if all(r.passed for r in related) else "FAIL") if related else ""
                    ),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "candidate_version": self.candidate_version,
            "candidate_kind": self.candidate_kind,
            "outcome": self.outcome,
            "mode": self.mode,
            "applied": self.applied,
            "champion_version_at_decision": self.champion_version,
            "decided_at": self.decided_at,
            "actor": self.actor,
            "policy_hash": self.policy.hash,
            "policy": self.policy.to_dict(),
            "rules": [asdict(r) | {"verdict": r.verdict} for r in self.rules],
            "metrics": self.metric_rows(),
            "reasons": self.reasons,
            **self.extra,
        }

    def headline(self) -> str:
        if self.outcome == SKIPPED:
            return "gate DISABLED: not evaluated, aliases untouched"
        verdict = "PROMOTE" if self.promoted else "REJECT"
        if self.mode == "dry_run":
            return f"DRY RUN: would {verdict.lower()}; aliases untouched"
        if self.mode == "dry_run" and self.kept_champion:
            return f"DRY RUN: would keep champion v{self.champion_version}; aliases untouched"
        if self.promoted and self.applied == "true":
            return "PROMOTED to champion"
        if self.promoted:
            return f"PROMOTE (alias move: {self.applied})"
        if self.kept_champion:
            return f"KEPT champion v{self.champion_version}: candidate not better by the margin"
        return "REJECTED: champion unchanged"

    def to_text(self) -> str:
        """The verdict as aligned plain text (the CLI and the pipeline log)."""
        champ = f"champion v{self.champion_version}" if self.champion_version else "champion"
        lines = [
            f"{self.model_name} v{self.candidate_version} ({self.candidate_kind}): "
            f"{self.headline()}",
            f"  mode {self.mode}, policy {self.policy.hash}, decided {self.decided_at} "
            f"by {self.actor or 'unknown'}",
        ]
        rows = self.metric_rows()
        if rows and self.outcome != SKIPPED:
            table = [["metric", "candidate", champ, "baseline", "threshold", "result"]] + [
                [
                    r["metric"],
                    _fmt(r["candidate"]),
                    _fmt(r["champion"]),
                    _fmt(r["baseline"]),
                    r["threshold"] or "—",
                    r["result"] or "—",
                ]
                for r in rows
            ]
            lines += ["", *align(table, indent="  ")]
        if self.rules:
            table = [["rule", "observed", "threshold", "verdict", "detail"]] + [
                [
                    r.rule,
                    _fmt(r.observed),
                    _fmt(r.threshold),
                    f"chose: {r.verdict}" if r.kind == CHOICE else r.verdict,
                    r.detail,
                ]
                for r in self.rules
            ]
            lines += ["", *align(table, indent="  ")]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [
            f"### Promotion decision for {self.model_name} v{self.candidate_version} "
            f"({self.candidate_kind}): **{self.headline()}**",
            "",
            f"- mode `{self.mode}`, policy `{self.policy.hash}`: {self.policy.summary()}",
            f"- champion at decision time: "
            f"{'v' + self.champion_version if self.champion_version else 'none'}",
            f"- decided at {self.decided_at} by {self.actor or 'unknown'}",
            "",
        ]
        rows = self.metric_rows()
        if rows and self.outcome != SKIPPED:
            champ = f"champion v{self.champion_version}" if self.champion_version else "champion"
            lines += [
                f"| metric | candidate v{self.candidate_version} | {champ} | baseline "
                "| threshold | result |",
                "|---|---|---|---|---|---|",
            ]
            for r in rows:
                result = "**FAIL**" if r["result"] == "FAIL" else (r["result"] or "—")
                lines.append(
                    f"| {r['metric']} | {_fmt(r['candidate'])} | {_fmt(r['champion'])} | "
                    f"{_fmt(r['baseline'])} | {r['threshold'] or '—'} | {result} |"
                )
            lines.append("")
        if self.rules:
            lines += ["| rule | observed | threshold | verdict | detail |", "|---|---|---|---|---|"]
            for r in self.rules:
                verdict = "**FAIL**" if r.verdict == "FAIL" else r.verdict
                if r.kind == CHOICE:
                    verdict = f"chose: {verdict}"
                lines.append(
                    f"| {r.rule} | {_fmt(r.observed)} | {_fmt(r.threshold)} | "
                    f"{verdict} | {r.detail} |"
                )
        return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("—" if v is None else str(v))


def align(rows: list[list[str]], *, indent: str = "") -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart (the last column unpadded)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths[:-1], strict=True))
        + "  "
        + r[-1]
        for r in rows
    ]


# ---- the rules -------------------------------------------------------------------------


def quantum_lift(
    policy: PromotionPolicy, quantum: dict[str, float], classical: dict[str, float]
) -> list[RuleResult]:
    """``quantum_lift.<metric>`` rules: quantum minus classical baseline >= ``min_lift``."""
    out = []
    for metric, need in policy.quantum.min_lift.items():
        if metric not in quantum or metric not in classical:
            out.append(
                RuleResult(
                    f"quantum_lift.{metric}",
                    None,
                    need,
                    False,
                    f"no {metric} for the quantum model or the baseline",
                )
            )
            continue
        lift = float(quantum[metric]) - float(classical[metric])
        ok = lift >= need
        out.append(
            RuleResult(
                f"quantum_lift.{metric}",
                lift,
                need,
                ok,
                f"quantum {metric} {quantum[metric]:.4f} - classical "
                f"{classical[metric]:.4f} = {lift:+.4f} "
                f"{'>=' if ok else '<'} {need}",
            )
        )
    return out


def baseline_wins(
    policy: PromotionPolicy, quantum: dict[str, float], classical: dict[str, float]
) -> list[str]:
    """The failing lift rules' details when the policy says to register the classical
    baseline instead of the quantum model (``when_baseline_wins: register_classical``);
    empty when the quantum model stays the candidate."""
    if policy.quantum.when_baseline_wins != "register_classical":
        return []
    return [r.detail for r in quantum_lift(policy, quantum, classical) if not r.passed]


def _compatibility(ev: Evidence, champion: str | None, theirs: ModelInterface | None) -> RuleResult:
    """First and not optional: the candidate must take the champion's inputs (names, order,
    types) and predict its label set and task; otherwise every client of ``@champion``
    would break."""
    name = "compatibility"
    if champion is None or champion == ev.version:
        what = "no current champion" if champion is None else "candidate is the champion"
        return RuleResult(name, None, None, True, what)
    if theirs is None or not theirs.known:
        return RuleResult(
            name, None, None, False, f"champion v{champion} has no recorded input schema"
        )
    if not ev.interface.known:
        return RuleResult(name, None, None, False, "candidate has no recorded input schema")
    diffs = differences(ev.interface, theirs)
    if diffs:
        return RuleResult(
            name,
            "incompatible",
            f"v{champion}'s interface",
            False,
            f"incompatible with champion v{champion}: " + "; ".join(diffs),
        )
    cols = len(theirs.inputs or ())
    what = f"same {cols} input columns" if cols else "same input schema"
    if theirs.labels is not None and ev.interface.labels is not None:
        what += ", labels and task"
    return RuleResult(
        name, "compatible", f"v{champion}'s interface", True, f"{what} as champion v{champion}"
    )


def _thresholds(policy: PromotionPolicy, ev: Evidence) -> list[RuleResult]:
    out = []
    for metric, need in policy.thresholds.items():
        value = ev.metrics.get(metric)
        if value is None:
            out.append(
                RuleResult(f"threshold.{metric}", None, need, False, f"candidate has no {metric}")
            )
            continue
        ok = value >= need
        out.append(
            RuleResult(
                f"threshold.{metric}",
                value,
                need,
                ok,
                f"{metric}={value:.4f} {'>=' if ok else '<'} {need}",
            )
        )
    return out


def _champion(
    policy: PromotionPolicy, ev: Evidence, champion: str | None, champion_metrics: dict[str, float]
) -> list[RuleResult]:
    out = []
    for metric, rule in policy.champion.items():
        name = f"champion.{metric}"
        value = ev.metrics.get(metric)
        if champion is None or champion == ev.version:
            what = "no current champion" if champion is None else "candidate is the champion"
            out.append(RuleResult(name, value, None, True, what))
            continue
        theirs = champion_metrics.get(metric)
        if theirs is None:
            out.append(
                RuleResult(
                    name, value, None, True, f"champion v{champion} has no {metric}: not compared"
                )
            )
            continue
        if value is None:
            out.append(RuleResult(name, None, theirs, False, f"candidate has no {metric}"))
            continue
        if rule.min_delta is not None:
            floor, how = theirs + rule.min_delta, f"+ min_delta {rule.min_delta}"
        else:
            floor, how = (
                theirs - float(rule.max_regression or 0.0),
                f"- max_regression {rule.max_regression}",
            )
        ok = value >= floor - 1e-12
        out.append(
            RuleResult(
                name,
                value,
                floor,
                ok,
                f"{metric}={value:.4f} {'>=' if ok else '<'} champion "
                f"v{champion} {theirs:.4f} {how}",
            )
        )
    return out


def _churn(
    policy: PromotionPolicy,
    ev: Evidence,
    champion: str | None,
    champion_metrics: dict[str, float],
    champion_since: str | None,
    now: datetime,
) -> RuleResult:
    """No churn: replace the champion only when the candidate is strictly better on the
    primary metric by at least ``min_improvement``, or the champion is older than
    ``max_champion_age_days``."""
    rule = policy.churn
    if rule is None:
        return RuleResult("churn", None, None, True, "off (churn: null)", CHOICE, "candidate")
    m, margin = rule.primary_metric, rule.min_improvement
    if champion is None or champion == ev.version:
        what = "no current champion" if champion is None else "candidate is the champion"
        return RuleResult("churn", None, None, True, what, CHOICE, "candidate")
    ours, theirs = ev.metrics.get(m), champion_metrics.get(m)
    age_days = None
    if champion_since:
        with contextlib.suppress(ValueError):
            since = datetime.fromisoformat(champion_since.replace("Z", "+00:00"))
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
            age_days = (now - since).total_seconds() / 86400.0
    limit = rule.max_champion_age_days
    age_text = f"champion for {age_days:.1f} days" if age_days is not None else "age unknown"
    if limit is not None and age_days is not None and age_days > limit:
        return RuleResult(
            "churn",
            round(age_days, 2),
            limit,
            True,
            f"{age_text} > max_champion_age_days {limit:g}: may be replaced",
            CHOICE,
            "replace (champion too old)",
        )
    if ours is None or theirs is None:
        return RuleResult(
            "churn",
            ours,
            None,
            True,
            f"no {m} for the {'candidate' if ours is None else 'champion'}: not compared",
            CHOICE,
            "candidate",
        )
    delta = ours - theirs
    better = delta > 1e-12 and delta >= margin - 1e-12
    detail = (
        f"{m} {ours:.4f} vs champion v{champion} {theirs:.4f} = {delta:+.4f} "
        f"{'>=' if better else '<'} min_improvement {margin}"
        + ("" if better or margin > 0 or delta > 1e-12 else " (and not strictly better)")
        + f"; {age_text}"
    )
    return RuleResult(
        "churn",
        delta,
        margin,
        better,
        detail,
        CHOICE,
        "replace champion" if better else f"keep champion v{champion}",
    )


def _quantum(policy: PromotionPolicy, ev: Evidence) -> list[RuleResult]:
    if not ev.quantum_enabled:
        return [RuleResult("quantum_lift", None, None, True, "not applicable: quantum step off")]
    if ev.fallback:
        allowed = policy.quantum.allow_fallback
        return [
            RuleResult(
                "fallback",
                "true",
                "allowed" if allowed else "not allowed",
                allowed,
                f"quantum step fell back ({ev.fallback_reason or 'no reason'}); "
                f"fallback runs {'may' if allowed else 'may not'} be promoted",
            )
        ]
    rules = [RuleResult("fallback", "false", None, True, "no quantum fallback")]
    if ev.kind == "quantum":
        for r in quantum_lift(policy, ev.metrics, ev.baseline_metrics):
            # Met: the rule chose the quantum model. Not met (when_baseline_wins: reject):
            # a failed check of the quantum candidate.
            rules.append(
                dataclasses.replace(r, kind=CHOICE, choice="quantum model") if r.passed else r
            )
    else:  # the quantum model ran but the baseline was registered instead
        for r in quantum_lift(policy, ev.quantum_metrics, ev.metrics):
            rules.append(
                dataclasses.replace(
                    r,
                    passed=True,
                    kind=CHOICE,
                    choice="classical baseline" if not r.passed else "quantum model",
                    detail=f"{r.detail}: classical baseline registered instead"
                    if not r.passed
                    else r.detail,
                )
            )
        return rules
    rules.append(_calibration_age(policy, ev))
    rules.append(_kernel_agreement(policy, ev))
    return rules


def _kernel_agreement(policy: PromotionPolicy, ev: Evidence) -> RuleResult:
    """A shot-based model serves with the exact simulation: its measured kernel must align
    with the exact one at least ``quantum.min_kernel_alignment`` (when the policy sets it)."""
    need = policy.quantum.min_kernel_alignment
    name, seen = "kernel_agreement", ev.kernel_alignment
    if ev.backend_kind in EXACT_KINDS:
        return RuleResult(name, None, need, True, "not applicable: served by the same exact kernel")
    if need is None:
        detail = "recorded, not judged (no min_kernel_alignment in the policy)"
        return RuleResult(name, seen, None, True, f"alignment {_fmt(seen)}: {detail}")
    if seen is None:
        return RuleResult(name, None, need, False, "no measured-vs-exact kernel agreement recorded")
    ok = seen >= need
    return RuleResult(
        name,
        seen,
        need,
        ok,
        f"measured kernel alignment with the exact simulation {seen:.4f} "
        f"{'>=' if ok else '<'} {need}",
    )


def _calibration_age(policy: PromotionPolicy, ev: Evidence) -> RuleResult:
    limit = policy.quantum.max_calibration_age_hours
    if ev.backend_kind not in CALIBRATED_KINDS:
        return RuleResult(
            "calibration_age",
            None,
            limit,
            True,
            f"not applicable: {ev.backend_kind or 'unknown'} backend",
        )
    if limit is None:
        return RuleResult("calibration_age", None, None, True, "no limit in the policy")
    try:
        when = datetime.fromisoformat(ev.calibration_time.replace("Z", "+00:00"))
    except ValueError:
        return RuleResult(
            "calibration_age",
            ev.calibration_time or None,
            limit,
            False,
            f"calibration time unknown ({ev.calibration_time or 'missing'})",
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    hours = (datetime.now(UTC) - when).total_seconds() / 3600.0
    ok = hours <= limit
    return RuleResult(
        "calibration_age",
        round(hours, 2),
        limit,
        ok,
        f"{ev.backend_kind} calibrated {hours:.1f} h ago {'<=' if ok else '>'} {limit} h",
    )


def _lineage(policy: PromotionPolicy, ev: Evidence) -> list[RuleResult]:
    out = []
    for item in policy.lineage.required:
        if item == "calibration_hash" and ev.kind != "quantum":
            out.append(
                RuleResult(
                    f"lineage.{item}", None, "present", True, "not applicable: classical model"
                )
            )
            continue
        value = ev.lineage.get(item, "")
        ok = value.strip().lower() not in _MISSING
        out.append(
            RuleResult(
                f"lineage.{item}",
                value[:24] or None,
                "present",
                ok,
                f"{item} {'recorded' if ok else 'MISSING'} ({LINEAGE_TAGS[item]})",
            )
        )
    return out


def evaluate(
    policy: PromotionPolicy,
    ev: Evidence,
    *,
    model_name: str,
    champion_version: str | None,
    champion_metrics: dict[str, float] | None = None,
    champion_interface: ModelInterface | None = None,
    champion_since: str | None = None,
    actor: str = "",
    decided_at: str | None = None,
) -> GateDecision:
    """Judge ``ev`` under ``policy`` against the champion at decision time (champion since
    ``champion_since``, ISO-8601, for the churn rule's age)."""
    when = decided_at or datetime.now(UTC).isoformat()
    metrics = {
        "candidate_metrics": dict(ev.metrics),
        "champion_metrics": dict(champion_metrics or {}),
        "baseline_metrics": dict(ev.baseline_metrics),
    }
    if policy.mode == "disabled":
        return GateDecision(
            SKIPPED,
            policy.mode,
            [],
            policy,
            model_name,
            ev.version,
            ev.kind,
            champion_version,
            when,
            actor=actor,
            **metrics,
        )
    now = datetime.fromisoformat(when.replace("Z", "+00:00"))
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    rules = [
        _compatibility(ev, champion_version, champion_interface),
        *_thresholds(policy, ev),
        *_champion(policy, ev, champion_version, champion_metrics or {}),
        _churn(policy, ev, champion_version, champion_metrics or {}, champion_since, now),
        *_quantum(policy, ev),
        *_lineage(policy, ev),
    ]
    outcome = PROMOTE if all(r.passed for r in rules) else REJECT
    return GateDecision(
        outcome,
        policy.mode,
        rules,
        policy,
        model_name,
        ev.version,
        ev.kind,
        champion_version,
        when,
        actor=actor,
        **metrics,
    )
