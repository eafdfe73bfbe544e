"""The production gate: a version reaches production only when the registry's own measurement
of the variant the services serve is no worse than the champion's on the same evaluation set,
and a model's first production version clears an absolute floor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from marketsense.common.db.models import EvaluationSet, ModelVersion
from marketsense.models.kinds import PRIMARY_METRIC, ModelKind, Variant
from marketsense.registry.config import RegistrySettings
from marketsense.registry.measure import ADD_SET
from marketsense.registry.service import Conflict

FORCE_HINT = "; to move it anyway send force: true with a reason"
"""How a refused move can still be made, audited as forced."""


@dataclass(frozen=True)
class GatePolicy:
    """What the gate compares and the floors a first production version must clear."""

    sentiment_variant: Variant
    floors: dict[ModelKind, float]
    work_dir: Path
    """Where stored versions are unpacked to be measured."""

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> GatePolicy:
        """The policy the registry's settings describe."""
        return cls(
            sentiment_variant=settings.registry_sentiment_variant,
            floors={
                "sentiment": settings.registry_min_heldout_macro_f1,
                "predictor": settings.registry_min_holdout_auc,
            },
            work_dir=settings.home / "uploads",
        )


def floor_setting(kind: ModelKind) -> str:
    """The environment variable that sets a kind's floor."""
    suffix = "MIN_HELDOUT_MACRO_F1" if kind == "sentiment" else "MIN_HOLDOUT_AUC"
    return f"MARKETSENSE_REGISTRY_{suffix}"


@dataclass(frozen=True)
class Contender:
    """A version as the gate sees it: its number, served variant and measured metrics."""

    version: int
    variant: Variant
    metrics: dict[Variant, dict[str, float]]

    def primary(self, kind: ModelKind) -> float | None:
        """The kind's primary metric of the served variant, if measured."""
        return self.metrics.get(self.variant, {}).get(PRIMARY_METRIC[kind])


def judge(
    *,
    kind: ModelKind,
    policy: GatePolicy,
    evaluation_set: EvaluationSet,
    candidate: Contender,
    champion: Contender | None,
) -> None:
    """Refuse with Conflict a production move the measurements do not support."""
    metric = PRIMARY_METRIC[kind]
    on_set = f"on evaluation set {evaluation_set.name!r} (id {evaluation_set.id})"
    new = candidate.primary(kind)
    if new is None:
        raise Conflict(
            f"version {candidate.version} has no {metric} for its {candidate.variant} graph "
            f"{on_set}; measuring it failed, try again"
        )
    if champion is None:
        floor = policy.floors[kind]
        if new < floor:
            raise Conflict(
                f"version {candidate.version} ({candidate.variant}) has {metric} {new:.4f} "
                f"{on_set}, below the floor {floor:.4f} a first production version must reach "
                f"(setting {floor_setting(kind)}){FORCE_HINT}"
            )
        return
    old = champion.primary(kind)
    if old is None:
        raise Conflict(
            f"production version {champion.version} has no {metric} for its "
            f"{champion.variant} graph {on_set}; measuring it failed, try again"
        )
    if new < old:
        raise Conflict(
            f"version {candidate.version} ({candidate.variant}) has {metric} {new:.4f} "
            f"{on_set}, below production version {champion.version}'s {old:.4f} "
            f"({champion.variant}){FORCE_HINT}"
        )


def no_set_refusal(kind: ModelKind) -> Conflict:
    """The refusal when the registry has no evaluation set to measure a kind on."""
    return Conflict(
        f"the registry has no {kind} evaluation set, so it cannot measure versions for the "
        f"production gate; {ADD_SET[kind]}{FORCE_HINT}"
    )


def refuse_archived(row: ModelVersion) -> None:
    """Archived versions never move to an alias again."""
    if row.archived_at is not None:
        raise Conflict(
            f"version {row.version} of {row.model_name!r} is archived "
            f"({row.archive_reason or 'no reason given'}) and can never be promoted again; "
            "it stays readable and downloadable for audit"
        )
