"""The promotion gate: pure decision logic, no I/O.

A candidate is promoted to ``champion`` only when every rule passes:
- ``threshold``: its primary metric is at least ``min_value``;
- ``not_worse_than_champion``: its primary metric is not below the current champion's by more
  than ``max_regression`` (0 by default: equal or better);
- ``not_fallback``: a model produced by a quantum step that fell back is never promoted as a
  quantum model.
The decision lists every rule with the observed value, the threshold and pass/fail.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from components.errors import ConfigError
from components.training.metrics import METRIC_NAMES

PROMOTE = "promote"
REJECT = "reject"


@dataclass(frozen=True)
class PromotionPolicy:
    metric: str = "roc_auc"
    min_value: float = 0.9
    max_regression: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES:
            raise ConfigError(f"unknown metric {self.metric!r}; use one of {list(METRIC_NAMES)}",
                              field="promotion_metric")
        if not 0.0 <= float(self.min_value) <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {self.min_value}",
                              field="promotion_threshold")
        if float(self.max_regression) < 0.0:
            raise ConfigError(f"must be >= 0, got {self.max_regression}",
                              field="max_regression")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    observed: float | str | None
    threshold: float | str | None
    passed: bool
    detail: str


@dataclass
class GateDecision:
    outcome: str
    rules: list[RuleResult]
    policy: PromotionPolicy
    champion_version: str | None
    metric: str
    candidate_value: float
    champion_value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.outcome == PROMOTE

    @property
    def reasons(self) -> list[str]:
        return [r.detail for r in self.rules if self.promoted or not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "metric": self.metric,
                "candidate_value": self.candidate_value, "champion_version": self.champion_version,
                "champion_value": self.champion_value, "policy": self.policy.to_dict(),
                "policy_hash": self.policy.hash, "rules": [asdict(r) for r in self.rules],
                "reasons": self.reasons, **self.extra}

    def to_markdown(self) -> str:
        head = "PROMOTED to champion" if self.promoted else "NOT promoted"
        lines = [f"### Promotion decision: **{head}**", "",
                 f"policy `{self.policy.hash}`: `{self.metric} >= {self.policy.min_value}`, "
                 f"max regression vs. champion {self.policy.max_regression}; champion at "
                 f"decision time: {self.champion_version or 'none'}", "",
                 "| rule | observed | threshold | result |", "|---|---|---|---|"]
        for r in self.rules:
            lines.append(f"| {r.rule} | {_fmt(r.observed)} | {_fmt(r.threshold)} | "
                         f"{'pass' if r.passed else '**FAIL**'} |")
        return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("—" if v is None else str(v))


def evaluate_promotion(candidate_metrics: dict[str, float], policy: PromotionPolicy, *,
                       champion_version: str | None = None,
                       champion_metrics: dict[str, float] | None = None,
                       fallback: bool = False) -> GateDecision:
    """Decide whether the candidate replaces the champion under ``policy``."""
    metric = policy.metric
    if metric not in candidate_metrics:
        raise ConfigError(f"candidate has no metric {metric!r} (has {sorted(candidate_metrics)})",
                          field="promotion_metric")
    value = float(candidate_metrics[metric])
    rules = [RuleResult("threshold", value, float(policy.min_value), value >= policy.min_value,
                        f"{metric}={value:.4f} {'>=' if value >= policy.min_value else '<'} "
                        f"threshold {policy.min_value}")]
    champ_value = None
    if champion_version is None:
        rules.append(RuleResult("not_worse_than_champion", value, None, True,
                                "no current champion"))
    else:
        champ_value = (champion_metrics or {}).get(metric)
        if champ_value is None:
            rules.append(RuleResult("not_worse_than_champion", value, None, True,
                                    f"champion v{champion_version} has no {metric}; "
                                    "comparison skipped"))
        else:
            floor = float(champ_value) - float(policy.max_regression)
            ok = value >= floor
            rules.append(RuleResult(
                "not_worse_than_champion", value, floor, ok,
                f"{metric}={value:.4f} {'>=' if ok else '<'} champion v{champion_version} "
                f"{float(champ_value):.4f} - {policy.max_regression}"))
    rules.append(RuleResult("not_fallback", str(fallback).lower(), "false", not fallback,
                            "quantum step fell back to classical" if fallback
                            else "no quantum fallback"))
    outcome = PROMOTE if all(r.passed for r in rules) else REJECT
    return GateDecision(outcome, rules, policy, champion_version, metric, value,
                        None if champ_value is None else float(champ_value))
