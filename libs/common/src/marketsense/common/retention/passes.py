"""A retention pass: plan, delete (unless it is a dry run) and record it in its audit row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RetentionPass
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.deleting import Progress, delete_planned
from marketsense.common.retention.planning import Plan, plan_pass
from marketsense.common.retention.tally import Tally
from marketsense.common.store.base import ObjectStore


@dataclass(frozen=True)
class PassResult:
    """A finished pass: its audit row's id, its plan and what it deleted (or would)."""

    pass_id: int
    plan: Plan
    tally: Tally


async def run_pass(
    database: Database,
    store: ObjectStore,
    settings: RetentionSettings,
    *,
    dry_run: bool,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> PassResult:
    """Plan what the policy lets go and, unless `dry_run`, delete it; a dry run uses the same
    plan and skips only the deletes. The audit row is written first, so a pass whose process
    dies stays visible (unfinished) in `retention_passes`."""
    started = dt.datetime.now(dt.UTC)
    now = now or started
    async with database.session() as session:
        row = RetentionPass(started_at=started, dry_run=dry_run, counts={}, bytes_freed=0)
        session.add(row)
        await session.commit()
        pass_id = row.id
    tally = Tally()
    try:
        async with database.session() as session:
            plan = await plan_pass(session, settings, now=now, key_for=store.key_for)
        tally.kept.update(plan.kept)
        if dry_run:
            tally.add_objects((d.key, d.size) for d in plan.objects if d.key is not None)
            for item in plan.all():
                tally.add_rows(item.table, 1)
        else:
            await delete_planned(
                database, store, plan, settings, now=now, tally=tally, progress=progress
            )
    except Exception as exc:
        await _finish(database, pass_id, tally, error=f"{type(exc).__name__}: {exc}")
        raise
    await _finish(database, pass_id, tally, error=None)
    return PassResult(pass_id, plan, tally)


async def _finish(database: Database, pass_id: int, tally: Tally, *, error: str | None) -> None:
    async with database.session() as session:
        row = await session.get(RetentionPass, pass_id)
        if row is not None:
            row.finished_at = dt.datetime.now(dt.UTC)
            row.counts = tally.as_json()
            row.bytes_freed = tally.bytes_freed
            row.error = error
            await session.commit()


async def latest_pass(
    database: Database, *, dry_run: bool = False, succeeded: bool = False
) -> RetentionPass | None:
    """The newest finished pass (real ones unless `dry_run`; without error when `succeeded`),
    for the metrics and the CLI."""
    query = select(RetentionPass).where(
        RetentionPass.dry_run == dry_run, RetentionPass.finished_at.is_not(None)
    )
    if succeeded:
        query = query.where(RetentionPass.error.is_(None))
    async with database.session() as session:
        row: RetentionPass | None = await session.scalar(
            query.order_by(RetentionPass.id.desc()).limit(1)
        )
    return row
