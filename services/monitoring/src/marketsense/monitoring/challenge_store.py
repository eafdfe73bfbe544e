"""The challenges table and what a challenge reads: the model's aliases, the days both versions
predicted, each challenge's row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from marketsense.common.db.models import Challenge, ModelAlias, Outcome
from marketsense.common.runtime import Runtime

CHALLENGER = "challenger"
"""The alias whose version is shadow-scored and challenges production."""
PRODUCTION = "production"


class ChallengeState(StrEnum):
    """Where a challenge is."""

    SHADOWING = "SHADOWING"
    """Scored beside production until enough shared outcome days exist (or a registry call
    that failed in passing is retried)."""
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    """Won; waits for an approver (promotion mode `approval`)."""
    PROMOTED = "PROMOTED"
    """Now production, through the registry's gate."""
    REJECTED = "REJECTED"
    """Lost, refused by the gate or by an approver; the version is archived."""


OPEN = (ChallengeState.SHADOWING.value, ChallengeState.AWAITING_APPROVAL.value)
"""States of a challenge not decided yet."""


async def alias_versions(runtime: Runtime, model: str) -> dict[str, str]:
    """The version each alias of a model points at (read only: changes go through the API)."""
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.model_name == model)
        )
        return {alias: str(version) for alias, version in rows}


async def challengers(runtime: Runtime, model: str) -> set[str]:
    """Versions shadow-scored but never promoted: the challenger alias's, and those of
    challenges not PROMOTED (a rejected one may still have predicted in the run)."""
    async with runtime.database.session() as session:
        rows = await session.scalars(
            select(Challenge.challenger_version).where(
                Challenge.model_name == model, Challenge.state != ChallengeState.PROMOTED.value
            )
        )
        found = set(rows)
    aliased = (await alias_versions(runtime, model)).get(CHALLENGER)
    return found | ({aliased} if aliased is not None else set())


async def open_challenge(
    runtime: Runtime, *, model: str, champion: str, challenger: str, margin: float
) -> Challenge:
    """The challenge of a challenger version, opened if it has none (once, however many
    replicas try)."""
    row = {
        "model_name": model,
        "champion_version": champion,
        "challenger_version": challenger,
        "state": ChallengeState.SHADOWING.value,
        "days": 0,
        "margin": margin,
    }
    keys = ["model_name", "challenger_version"]
    async with runtime.transaction() as session:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(
                sqlite.insert(Challenge).values(row).on_conflict_do_nothing(index_elements=keys)
            )
        else:
            await session.execute(
                postgresql.insert(Challenge).values(row).on_conflict_do_nothing(index_elements=keys)
            )
    async with runtime.database.session() as session:
        found = await session.scalar(
            select(Challenge).where(
                Challenge.model_name == model, Challenge.challenger_version == challenger
            )
        )
    assert found is not None  # inserted above or by whoever won the race
    return found


async def shadowed_as_of(
    runtime: Runtime, *, model: str, version: str, outcome_days: Sequence[dt.date]
) -> tuple[dt.date, dt.date]:
    """The first and last prediction day (`as_of`) of a version's outcomes on the given outcome
    days: the window the registry builds the gate's evaluation set from."""
    async with runtime.database.session() as session:
        first, last = (
            await session.execute(
                select(func.min(Outcome.as_of), func.max(Outcome.as_of)).where(
                    Outcome.model_name == model,
                    Outcome.model_version == version,
                    Outcome.outcome_day >= min(outcome_days),
                    Outcome.outcome_day <= max(outcome_days),
                )
            )
        ).one()
    if first is None or last is None:
        raise LookupError(f"{model} {version} has no outcomes on {outcome_days[0]}..")
    return first, last


async def challenge_by_id(runtime: Runtime, challenge_id: int) -> Challenge | None:
    """One challenge, or None."""
    async with runtime.database.session() as session:
        return await session.get(Challenge, challenge_id)


async def list_challenges(
    runtime: Runtime, *, model: str | None = None, limit: int = 100
) -> list[Challenge]:
    """Challenges, newest first."""
    query = select(Challenge).order_by(Challenge.id.desc()).limit(limit)
    if model is not None:
        query = query.where(Challenge.model_name == model)
    async with runtime.database.session() as session:
        return list(await session.scalars(query))


async def save_challenge(
    runtime: Runtime, challenge: Challenge, *, only_if: Sequence[str] = OPEN, **fields: object
) -> Challenge | None:
    """Write fields of a challenge still in one of the `only_if` states; the row as stored, or
    None when another replica or an approver decided it meanwhile."""
    async with runtime.transaction() as session:
        row = await session.get(Challenge, challenge.id, with_for_update=True)
        if row is None or row.state not in only_if:
            return None
        for name, value in fields.items():
            setattr(row, name, value)
    async with runtime.database.session() as session:
        return await session.get(Challenge, challenge.id)


def now() -> dt.datetime:
    """The time a decision is recorded with."""
    return dt.datetime.now(dt.UTC)
