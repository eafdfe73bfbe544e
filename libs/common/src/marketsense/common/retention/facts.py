"""What retention reads from the database: runs, holds and the registry's lineage windows."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import ModelVersion, RetentionHold, Run, Task
from marketsense.common.retention.policy import FAILED_TASK, RunFacts, Window, lineage_windows


async def run_facts(
    session: AsyncSession, run_ids: Collection[str] | None = None
) -> dict[str, RunFacts]:
    """State, end and whether a task failed, of the given runs (of every run when None)."""
    failed = (
        exists().where(Task.run_id == Run.id, Task.state == FAILED_TASK).correlate(Run).label("f")
    )
    query = select(Run.id, Run.state, Run.finished_at, failed)
    if run_ids is not None:
        query = query.where(Run.id.in_(list(run_ids)))
    rows = (await session.execute(query)).all()
    return {row[0]: RunFacts(row[0], row[1], row[2], bool(row[3])) for row in rows}


async def held_runs(session: AsyncSession, run_ids: Collection[str] | None = None) -> set[str]:
    """Ids of the runs under an operator hold (among the given ones when not None)."""
    query = select(RetentionHold.run_id)
    if run_ids is not None:
        query = query.where(RetentionHold.run_id.in_(list(run_ids)))
    return set((await session.scalars(query)).all())


async def registry_windows(session: AsyncSession) -> list[Window]:
    """The training and evaluation windows of every version the registry holds, archived ones
    included: lineage must still be reproducible for a version no longer served."""
    rows = await session.execute(
        select(
            ModelVersion.model_name,
            ModelVersion.version,
            ModelVersion.manifest,
            ModelVersion.evaluation_window,
        )
    )
    windows: list[Window] = []
    for name, version, manifest, evaluation_window in rows:
        windows += lineage_windows(f"{name} v{version}", manifest, evaluation_window)
    return windows
