"""Operator holds: a held run keeps every object and row, whatever its age."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RetentionHold, Run


class NoSuchRun(LookupError):
    """No run has the id: a hold names a run that exists."""


async def hold_run(database: Database, *, run_id: str, reason: str, actor: str) -> bool:
    """Hold a run; False when it was held already (the first hold's reason stays)."""
    async with database.session() as session:
        # Locking the run makes a hold wait for a retention batch deleting from that run, so
        # the batch either sees the hold or commits before it.
        run = await session.scalar(select(Run.id).where(Run.id == run_id).with_for_update())
        if run is None:
            raise NoSuchRun(f"no run {run_id}: see `marketsense run list` for run ids")
        if await session.get(RetentionHold, run_id) is not None:
            return False
        session.add(
            RetentionHold(
                run_id=run_id, reason=reason, actor=actor, created_at=dt.datetime.now(dt.UTC)
            )
        )
        await session.commit()
    return True


async def release_run(database: Database, *, run_id: str) -> bool:
    """Release a run's hold; False when it had none."""
    async with database.session() as session:
        result = await session.execute(delete(RetentionHold).where(RetentionHold.run_id == run_id))
        await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def list_holds(database: Database) -> list[RetentionHold]:
    """Every hold, oldest first."""
    async with database.session() as session:
        rows = await session.scalars(select(RetentionHold).order_by(RetentionHold.created_at))
        return list(rows.all())
