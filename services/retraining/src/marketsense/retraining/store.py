"""The `retrains` table as the worker and the API use it: requests recorded once, taken under a
lease, and moved only by the worker holding the latest attempt (compare-and-set)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.api_models import CURSOR_INVALID
from marketsense.common.db.models import Retrain
from marketsense.common.events import RetrainRequested
from marketsense.common.runtime import Runtime
from marketsense.retraining.states import TAKEN_AGAIN, RetrainState, lease_cutoff


class LeaseLost(RuntimeError):
    """Another worker took the request after this one's lease ran out."""


@dataclass(frozen=True)
class Claim:
    """A request a worker holds: its attempt number is the token every update checks."""

    id: str
    model_name: str
    reason: str
    window_start: dt.date
    window_end: dt.date
    attempts: int


async def record_request(
    runtime: Runtime, *, event_id: str, request: RetrainRequested, now: dt.datetime
) -> tuple[str, bool]:
    """Record a request once per event; its id, and whether this call recorded it."""
    try:
        async with runtime.transaction() as session:
            row = Retrain(
                id=str(uuid.uuid4()),
                model_name=request.model_name,
                request_event_id=event_id,
                reason=request.reason,
                window_start=request.window_start,
                window_end=request.window_end,
                state=RetrainState.REQUESTED.value,
                attempts=0,
                runs=[],
                requested_at=now,
                updated_at=now,
            )
            session.add(row)
        return row.id, True
    except IntegrityError:
        # Delivered before: the unique event id holds the first recording.
        async with runtime.database.session() as session:
            found = await session.scalar(
                select(Retrain.id).where(Retrain.request_event_id == event_id)
            )
        if found is None:
            raise
        return found, False


async def release_waiting(runtime: Runtime, *, now: dt.datetime) -> int:
    """Make every waiting request takeable again (a run finished); how many there were."""
    async with runtime.transaction() as session:
        result = await session.execute(
            update(Retrain)
            .where(Retrain.state == RetrainState.WAITING.value)
            .values(state=RetrainState.REQUESTED.value, claimed_at=None, updated_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_next(runtime: Runtime, *, now: dt.datetime, lease_seconds: float) -> Claim | None:
    """Take the oldest request whose lease is free, counting an attempt; None when there is none
    (or another worker took the one found first)."""
    cutoff = lease_cutoff(now, lease_seconds)
    async with runtime.transaction() as session:
        row = await session.scalar(
            select(Retrain)
            .where(
                Retrain.state.in_([s.value for s in TAKEN_AGAIN]),
                or_(Retrain.claimed_at.is_(None), Retrain.claimed_at <= cutoff),
            )
            .order_by(Retrain.requested_at, Retrain.id)
            .limit(1)
        )
        if row is None:
            return None
        seen = row.attempts
        taken = await session.execute(
            update(Retrain)
            .where(Retrain.id == row.id, Retrain.attempts == seen)
            .values(
                attempts=seen + 1,
                claimed_at=now,
                state=RetrainState.TRAINING.value,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(taken, "rowcount", 0):
            return None
    return Claim(
        id=row.id,
        model_name=row.model_name,
        reason=row.reason,
        window_start=row.window_start,
        window_end=row.window_end,
        attempts=seen + 1,
    )


async def retake(runtime: Runtime, claim: Claim, *, now: dt.datetime) -> Claim:
    """Count another attempt at a held request (a retry after a failure)."""
    await move(
        runtime,
        claim,
        now=now,
        attempts=claim.attempts + 1,
        claimed_at=now,
        state=RetrainState.TRAINING.value,
    )
    return Claim(**{**claim.__dict__, "attempts": claim.attempts + 1})


async def move(runtime: Runtime, claim: Claim, *, now: dt.datetime, **values: Any) -> None:
    """Update a held request; LeaseLost when another worker has taken it since."""
    async with runtime.transaction() as session:
        result = await session.execute(
            update(Retrain)
            .where(Retrain.id == claim.id, Retrain.attempts == claim.attempts)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
    if not getattr(result, "rowcount", 0):
        raise LeaseLost(
            f"retrain {claim.id} was taken by another worker after attempt "
            f"{claim.attempts}'s lease ran out"
        )


async def get_retrain(session: AsyncSession, retrain_id: str) -> Retrain | None:
    """One request by id."""
    return await session.get(Retrain, retrain_id)


async def list_retrains(
    session: AsyncSession, *, model: str | None, limit: int, after: str | None
) -> list[Retrain]:
    """Up to `limit + 1` requests, newest first, after the request `after` (a page's last);
    an unknown `after` gives ValueError."""
    query = select(Retrain)
    if model is not None:
        query = query.where(Retrain.model_name == model)
    if after is not None:
        last = await session.get(Retrain, after)
        if last is None:
            raise ValueError(CURSOR_INVALID)
        query = query.where(
            or_(
                Retrain.requested_at < last.requested_at,
                and_(Retrain.requested_at == last.requested_at, Retrain.id < last.id),
            )
        )
    rows = await session.scalars(
        query.order_by(Retrain.requested_at.desc(), Retrain.id.desc()).limit(limit + 1)
    )
    return list(rows)
