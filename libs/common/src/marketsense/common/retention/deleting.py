"""Deleting what a plan lists, batch by batch: each batch locks its runs, checks again that
nothing protects them, deletes the objects, then the rows, in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    DeadLetter,
    FeatureSet,
    Outcome,
    Prediction,
    RawObject,
    Run,
    Task,
)
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.facts import held_runs, registry_windows, run_facts
from marketsense.common.retention.planning import (
    AUDIT_TABLES,
    Doomed,
    Facts,
    Plan,
    rows_per_run,
)
from marketsense.common.retention.policy import object_keep_reason
from marketsense.common.retention.tally import Tally
from marketsense.common.store.base import ObjectStore

TABLE_MODELS: dict[str, Any] = {
    "raw_objects": RawObject,
    "features": FeatureSet,
    "outcomes": Outcome,
    "predictions": Prediction,
    "dead_letters": DeadLetter,
    **{table: model for table, model, _ in AUDIT_TABLES},
}
AUDIT_TABLE_NAMES = frozenset(table for table, _, _ in AUDIT_TABLES)
Progress = Callable[[int, int], None]
"""Told, after each batch, how many planned things are settled (deleted, or found protected
meanwhile) and how many the plan lists."""


async def delete_planned(
    database: Database,
    store: ObjectStore,
    plan: Plan,
    settings: RetentionSettings,
    *,
    now: dt.datetime,
    tally: Tally,
    progress: Progress | None = None,
) -> None:
    """Delete what the plan lists, objects before their rows; `tally` counts as it goes, so a
    pass that stops half-way still says what it deleted."""
    size, total, done = settings.retention_batch_size, len(plan.all()), 0
    for batch in _chunks(plan.objects, size):
        async with database.session() as session:
            facts = await _locked_facts(session, batch, settings, now)
            gone = [d for d in batch if _object_may_go(d, facts)]
            await store.delete_many([d.key for d in gone if d.key is not None])
            for table, items in groupby(gone, key=lambda d: d.table):
                await _delete_rows(session, table, [d.id for d in items])
            await session.commit()
        tally.add_objects((d.key, d.size) for d in gone if d.key is not None)
        for table, items in groupby(gone, key=lambda d: d.table):
            tally.add_rows(table, len(list(items)))
        done += len(batch)
        _tell(progress, done, total)
    for table, same_table in groupby(plan.rows, key=lambda d: d.table):
        for batch in _chunks(list(same_table), size):
            async with database.session() as session:
                facts = await _locked_facts(session, batch, settings, now)
                ids = await _rows_that_may_go(session, table, batch, facts)
                await _delete_rows(session, table, ids)
                await session.commit()
            tally.add_rows(table, len(ids))
            done += len(batch)
            _tell(progress, done, total)


async def _locked_facts(
    session: AsyncSession, batch: Sequence[Doomed], settings: RetentionSettings, now: dt.datetime
) -> Facts:
    """Lock the batch's runs, then read their facts again: a retry or a new hold that lands
    meanwhile waits for this transaction, or this one sees it."""
    run_ids = sorted({d.run_id for d in batch if d.run_id is not None})
    if run_ids:
        # A no-op write takes PostgreSQL's row locks and SQLite's write lock alike.
        await session.execute(
            update(Run)
            .where(Run.id.in_(run_ids))
            .values(state=Run.state)
            .execution_options(synchronize_session=False)
        )
    return Facts(
        runs=await run_facts(session, run_ids),
        held=await held_runs(session, run_ids),
        windows=await registry_windows(session) if _has_features(batch) else [],
        now=now,
        retry_days=settings.retention_retry_days,
    )


def _object_may_go(item: Doomed, facts: Facts) -> bool:
    if item.as_of is None:
        return False
    reason = object_keep_reason(
        table=item.table,
        as_of=item.as_of,
        run_reason=facts.run_reason(item.run_id),
        windows=facts.windows,
    )
    return reason is None


async def _rows_that_may_go(
    session: AsyncSession, table: str, batch: Sequence[Doomed], facts: Facts
) -> list[str]:
    if table in AUDIT_TABLE_NAMES:
        return [d.id for d in batch]  # audit rows belong to no run
    free = [d for d in batch if facts.run_reason(d.run_id) is None]
    if table != "runs":
        return [d.id for d in free]
    # A run goes only once nothing that would cascade with it is left.
    left = await rows_per_run(session, [d.id for d in free])
    return [d.id for d in free if left[d.id] == 0]


async def _delete_rows(session: AsyncSession, table: str, ids: Sequence[str]) -> None:
    if not ids:
        return
    if table == "runs":
        await session.execute(delete(Task).where(Task.run_id.in_(list(ids))))
        await session.execute(delete(Run).where(Run.id.in_(list(ids))))
        return
    model = TABLE_MODELS[table]
    await session.execute(delete(model).where(model.id.in_([int(i) for i in ids])))


def _has_features(batch: Sequence[Doomed]) -> bool:
    return any(d.table == "features" for d in batch)


def _chunks(items: Sequence[Doomed], size: int) -> Iterator[Sequence[Doomed]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _tell(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
