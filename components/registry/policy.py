"""The promotion policy: a YAML file, validated once when it is loaded.

The repository's documented default is ``components/registry/policies/default.yaml``; the
``promotion_policy`` pipeline parameter (and ``qubeflow promote --policy``) names another file.
Every key is checked (unknown keys too) and an invalid policy is a :class:`ConfigError` naming
the key, e.g. ``promotion_policy: thresholds.roc_auc: must be in [0, 1], got 1.5``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.errors import ConfigError
from components.training.metrics import METRIC_NAMES

FIELD = "promotion_policy"
MODES = ("disabled", "dry_run", "enabled")
Mode = Literal["disabled", "dry_run", "enabled"]
Metric = Literal[METRIC_NAMES]  # type: ignore[valid-type]
LineageItem = Literal["dataset_digest", "calibration_hash", "git_commit", "pipeline_run_id"]
LINEAGE_ITEMS: tuple[str, ...] = LineageItem.__args__  # type: ignore[attr-defined]
#: The documented default, relative to the directory that holds the ``components`` package.
DEFAULT_POLICY = "components/registry/policies/default.yaml"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChampionRule(_Strict):
    """Exactly one of: beat the champion by ``min_delta``; regress by at most ``max_regression``."""

    min_delta: float | None = Field(default=None, ge=0.0, le=1.0)
    max_regression: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _exactly_one(self) -> ChampionRule:
        if (self.min_delta is None) == (self.max_regression is None):
            raise ValueError("give exactly one of min_delta or max_regression")
        return self


class QuantumRules(_Strict):
    min_lift: dict[Metric, float] = Field(default_factory=lambda: {"roc_auc": 0.0})
    when_baseline_wins: Literal["register_classical", "reject"] = "register_classical"
    max_calibration_age_hours: float | None = Field(default=24.0, gt=0.0)
    allow_fallback: bool = False
    #: A model trained on a shot-based backend serves with the exact simulation of its map:
    #: refuse it when the measured kernel's alignment with the exact one is below this.
    #: None (the default): the agreement is recorded, not judged.
    min_kernel_alignment: float | None = Field(default=None, ge=0.0, le=1.0)


class LineageRules(_Strict):
    required: list[LineageItem] = Field(default_factory=lambda: list(LINEAGE_ITEMS))


class ChurnRules(_Strict):
    """Keep the champion unless the candidate is better on ``primary_metric`` by at least
    ``min_improvement`` (and strictly better), or the champion is older than
    ``max_champion_age_days`` (null: age never replaces it). Identical retrains keep it."""

    primary_metric: Metric = "roc_auc"
    min_improvement: float = Field(default=0.002, ge=0.0, le=1.0)
    max_champion_age_days: float | None = Field(default=30.0, gt=0.0)


class ConcurrencyRules(_Strict):
    lock_timeout_seconds: float = Field(default=300.0, gt=0.0, le=3600.0)
    lock_lease_seconds: float = Field(default=120.0, gt=0.0, le=3600.0)


class PromotionPolicy(_Strict):
    version: Literal[1] = 1
    mode: Mode = "enabled"
    # Keys a policy file leaves out take these values (the same as policies/default.yaml).
    thresholds: dict[Metric, float] = Field(
        default_factory=lambda: {"roc_auc": 0.9, "balanced_accuracy": 0.85}
    )
    champion: dict[Metric, ChampionRule] = Field(
        default_factory=lambda: {
            "roc_auc": ChampionRule(max_regression=0.0),
            "balanced_accuracy": ChampionRule(max_regression=0.01),
        }
    )
    #: null: any candidate that passes the other rules replaces the champion.
    churn: ChurnRules | None = Field(default_factory=ChurnRules)
    quantum: QuantumRules = Field(default_factory=QuantumRules)
    lineage: LineageRules = Field(default_factory=LineageRules)
    concurrency: ConcurrencyRules = Field(default_factory=ConcurrencyRules)

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> PromotionPolicy:
        for metric, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds.{metric}: must be in [0, 1], got {value}")
        return self

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        """sha256 (16 hex digits) of the canonical policy, mode excluded: a dry run and the
        enabled run of the same rules share it."""
        rules = {k: v for k, v in self.to_dict().items() if k != "mode"}
        return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:16]

    def with_mode(self, mode: str) -> PromotionPolicy:
        """The same rules in ``mode`` (empty: unchanged)."""
        if not mode:
            return self
        if mode not in MODES:
            raise ConfigError(
                f"unknown mode {mode!r}; use one of {list(MODES)}", field="promotion_mode"
            )
        return self.model_copy(update={"mode": mode})

    def summary(self) -> str:
        """One line for the decision's Markdown."""
        parts = [f"{m} >= {v}" for m, v in self.thresholds.items()]
        for m, rule in self.champion.items():
            parts.append(
                f"{m} beats champion by >= {rule.min_delta}"
                if rule.min_delta is not None
                else f"{m} regresses <= {rule.max_regression} vs champion"
            )
        if self.churn is not None:
            age = self.churn.max_champion_age_days
            parts.append(
                f"replaces the champion only if {self.churn.primary_metric} improves by "
                f">= {self.churn.min_improvement}"
                + (f" or the champion is older than {age:g} days" if age is not None else "")
            )
        parts += [f"quantum lift {m} >= {v}" for m, v in self.quantum.min_lift.items()]
        return "; ".join(parts) or "no metric rules"


# ---- loading -------------------------------------------------------------------------


def resolve_policy_path(path: str | Path) -> Path:
    """An absolute path as given; a relative one against the working directory, then against
    the directory holding the ``components`` package (so the default works in images)."""
    p = Path(str(path).strip() or DEFAULT_POLICY)
    if p.is_absolute() or p.is_file():
        return p
    packaged = _PROJECT_ROOT / p
    return packaged if packaged.is_file() else p


def parse_policy(data: Any, *, origin: str = "policy") -> PromotionPolicy:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin} must be a mapping of policy keys, got {type(data).__name__}", field=FIELD
        )
    try:
        return PromotionPolicy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_describe(exc)}", field=FIELD) from None


def load_policy(path: str | Path = DEFAULT_POLICY, *, mode: str = "") -> PromotionPolicy:
    """Read and validate a policy file; ``mode`` (if given) overrides the file's mode."""
    p = resolve_policy_path(path)
    if not p.is_file():
        raise ConfigError(f"policy file {str(path)!r} does not exist", field=FIELD)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}", field=FIELD) from None
    return parse_policy(data, origin=str(p)).with_mode(mode)


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``key.path: message`` (first three)."""
    out = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"] if x != "[key]")
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
        out.append(f"{loc}: {msg}{shown}" if loc else msg)
    more = len(exc.errors()) - 3
    return "; ".join(out) + (f" (and {more} more)" if more > 0 else "")
