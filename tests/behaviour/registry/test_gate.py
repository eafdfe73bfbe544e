"""The production gate's judgement: the served variant's measurement against the champion's on
one evaluation set, a floor for a first production version, archived versions refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from marketsense.common.db.models import EvaluationSet, ModelVersion
from marketsense.registry.config import RegistrySettings
from marketsense.registry.gate import (
    Contender,
    GatePolicy,
    floor_setting,
    judge,
    no_set_refusal,
    refuse_archived,
)
from marketsense.registry.service import Conflict

SET = EvaluationSet(id=4, kind="sentiment", name="heldout-v2", sha256="0" * 64)
POLICY = GatePolicy(
    sentiment_variant="int8",
    floors={"sentiment": 0.6, "predictor": 0.5},
    work_dir=Path("/nonexistent"),
)


def sentiment(version: int, *, fp32: float, int8: float | None, served: str = "int8") -> Contender:
    """A sentiment version measured per variant."""
    metrics = {"fp32": {"heldout_macro_f1": fp32}}
    if int8 is not None:
        metrics["int8"] = {"heldout_macro_f1": int8}
    return Contender(version=version, variant=served, metrics=metrics)  # type: ignore[arg-type]


def test_the_served_variant_decides_even_when_the_other_graph_is_better() -> None:
    champion = sentiment(1, fp32=0.80, int8=0.80)
    # fp32 improved, int8 (what processing serves) got worse: refused.
    challenger = sentiment(2, fp32=0.90, int8=0.70)

    with pytest.raises(Conflict) as refused:
        judge(
            kind="sentiment",
            policy=POLICY,
            evaluation_set=SET,
            candidate=challenger,
            champion=champion,
        )

    message = str(refused.value)
    assert "version 2 (int8) has heldout_macro_f1 0.7000" in message
    assert "below production version 1's 0.8000 (int8)" in message
    assert "'heldout-v2' (id 4)" in message
    assert "force: true" in message


def test_equal_or_better_measurements_pass() -> None:
    champion = sentiment(1, fp32=0.80, int8=0.79)
    for int8 in (0.79, 0.85):
        judge(
            kind="sentiment",
            policy=POLICY,
            evaluation_set=SET,
            candidate=sentiment(2, fp32=0.5, int8=int8),
            champion=champion,
        )


def test_a_first_production_version_is_held_to_the_floor_of_its_kind() -> None:
    judge(
        kind="sentiment",
        policy=POLICY,
        evaluation_set=SET,
        candidate=sentiment(1, fp32=0.6, int8=0.6),
        champion=None,
    )
    with pytest.raises(Conflict) as refused:
        judge(
            kind="sentiment",
            policy=POLICY,
            evaluation_set=SET,
            candidate=sentiment(1, fp32=0.9, int8=0.59),
            champion=None,
        )
    assert "below the floor 0.6000" in str(refused.value)
    assert "MARKETSENSE_REGISTRY_MIN_HELDOUT_MACRO_F1" in str(refused.value)


def test_a_version_without_a_measurement_of_its_served_variant_is_refused() -> None:
    unmeasured = Contender(version=3, variant="fp32", metrics={"int8": {"heldout_macro_f1": 0.9}})

    with pytest.raises(Conflict) as candidate:
        judge(
            kind="sentiment", policy=POLICY, evaluation_set=SET, candidate=unmeasured, champion=None
        )
    with pytest.raises(Conflict) as champion:
        judge(
            kind="sentiment",
            policy=POLICY,
            evaluation_set=SET,
            candidate=sentiment(4, fp32=0.9, int8=0.9),
            champion=unmeasured,
        )

    assert "version 3 has no heldout_macro_f1 for its fp32 graph" in str(candidate.value)
    assert "production version 3 has no heldout_macro_f1" in str(champion.value)


def test_the_policy_follows_the_settings(tmp_path: Path) -> None:
    settings = RegistrySettings(
        home=tmp_path,
        registry_sentiment_variant="fp32",
        registry_min_heldout_macro_f1=0.7,
        registry_min_holdout_auc=0.55,
    )

    policy = GatePolicy.from_settings(settings)

    assert policy.sentiment_variant == "fp32"
    assert policy.floors == {"sentiment": 0.7, "predictor": 0.55}
    assert policy.work_dir == tmp_path / "uploads"
    assert floor_setting("predictor") == "MARKETSENSE_REGISTRY_MIN_HOLDOUT_AUC"


def test_refusals_name_what_would_fix_them() -> None:
    archived = ModelVersion(
        model_name="m",
        version=5,
        archived_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        archive_reason="inflated metrics",
    )

    with pytest.raises(Conflict) as refused:
        refuse_archived(archived)
    refuse_archived(ModelVersion(model_name="m", version=6))

    assert "version 5 of 'm' is archived (inflated metrics)" in str(refused.value)
    assert "POST /v1/evaluation-sets?kind=predictor" in str(no_set_refusal("predictor"))
    assert "kind=sentiment" in str(no_set_refusal("sentiment"))
