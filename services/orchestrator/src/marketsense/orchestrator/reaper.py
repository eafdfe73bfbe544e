"""The reaper: fails tasks whose worker was lost, alerts on stuck runs, refreshes task gauges."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import func, select

from marketsense.common.db.models import LIVE_RUN_STATES, Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, TaskFailed
from marketsense.common.metrics import TASKS_BY_STATE
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState, move_task
from marketsense.orchestrator.alerting import raise_alert, stuck_run_alert
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.operations import MissingInput, requeue_task
from marketsense.orchestrator.service import settle_run

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


class Reaper:
    """Finds timed-out tasks and stuck runs on a clock that tests may replace."""

    def __init__(self, runtime: Runtime, settings: OrchestratorSettings, *, clock: Clock = utc_now):
        self.runtime = runtime
        self.settings = settings
        self.clock = clock

    async def run_forever(self) -> None:
        """Reap every `reaper_interval_seconds` until cancelled; one failed pass is only logged."""
        while True:
            try:
                await self.reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reaper pass failed; trying again next interval")
            await asyncio.sleep(self.settings.reaper_interval_seconds)

    async def reap_once(self) -> tuple[int, int]:
        """One pass: (timed-out tasks handled, stuck runs alerted); task gauges refreshed."""
        reaped = await self.reap_timed_out_tasks()
        stuck = await self.alert_stuck_runs()
        await self.refresh_gauges()
        return reaped, stuck

    async def reap_timed_out_tasks(self) -> int:
        """Fail every task RUNNING past its timeout: re-queue it under the attempt limit."""
        cutoff = self.clock() - dt.timedelta(seconds=self.settings.task_timeout_seconds)
        async with self.runtime.database.session() as session:
            overdue = list(
                await session.execute(
                    select(Task.run_id, Task.symbol, Task.stage)
                    .join(Run, Run.id == Task.run_id)
                    .where(
                        Run.state == RunState.RUNNING,
                        Task.state == TaskState.RUNNING,
                        Task.updated_at < _stored(self.runtime, cutoff),
                    )
                )
            )
        handled = 0
        for run_id, symbol, stage in overdue:
            if await self._time_out(run_id, symbol, Stage(stage)):
                handled += 1
        return handled

    async def _time_out(self, run_id: str, symbol: str, stage: Stage) -> bool:
        limit = self.settings.handler_max_attempts
        settle = False
        async with self.runtime.transaction() as session:
            run = await session.get(Run, run_id)
            task = await session.scalar(
                select(Task).where(
                    Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage
                )
            )
            if run is None or task is None:
                return False
            message = f"timed out after {task.attempts} attempts"
            # RUNNING -> FAILED -> PENDING: both are state-machine transitions, in one transaction.
            if not await move_task(
                session,
                run_id=run_id,
                symbol=symbol,
                stage=stage,
                source={TaskState.RUNNING},
                target=TaskState.FAILED,
                error=message,
            ):
                return False
            await session.refresh(task)
            requeued = False
            if task.attempts < limit:
                try:
                    requeued = await requeue_task(
                        session,
                        self.runtime,
                        run=run,
                        task=task,
                        lookback_days=self.settings.lookback_days,
                        reason="timeout",
                    )
                except MissingInput as exc:
                    message = f"{message}; cannot re-queue: {exc}"
                    task.last_error = message
            if not requeued:
                add_event(
                    session,
                    Envelope.wrap(
                        TaskFailed(
                            stage=stage, error=message, retryable=False, attempts=task.attempts
                        ),
                        run_id=run_id,
                        symbol=symbol,
                    ),
                    source=self.runtime.service,
                )
                settle = True
        log.warning(
            "%s task of %s in run %s timed out after %d attempts: %s",
            stage,
            symbol,
            run_id,
            task.attempts,
            "re-queued" if not settle else "failed",
        )
        if settle:
            await settle_run(runtime=self.runtime, run_id=run_id)
        return True

    async def alert_stuck_runs(self) -> int:
        """Alert once per RUNNING run whose tasks have not changed for `stuck_run_minutes`."""
        minutes = self.settings.stuck_run_minutes
        now = self.clock()
        cutoff = now - dt.timedelta(minutes=minutes)
        async with self.runtime.database.session() as session:
            last_change = func.max(Task.updated_at)
            rows = list(
                await session.execute(
                    select(Run.id, Run.as_of, Run.updated_at, last_change)
                    .join(Task, Task.run_id == Run.id)
                    .where(Run.state == RunState.RUNNING)
                    .group_by(Run.id, Run.as_of, Run.updated_at)
                )
            )
            stuck: list[tuple[str, dt.date, float, int]] = []
            for run_id, as_of, run_changed, task_changed in rows:
                changed = max(_aware(run_changed), _aware(task_changed))
                if changed >= cutoff:
                    continue
                open_tasks = await session.scalar(
                    select(func.count()).where(
                        Task.run_id == run_id,
                        Task.state.in_([TaskState.PENDING, TaskState.RUNNING]),
                    )
                )
                idle = (now - changed).total_seconds() / 60
                stuck.append((run_id, as_of, idle, open_tasks or 0))
        for run_id, as_of, idle, open_tasks in stuck:
            log.warning("run %s has not moved for %.0f minutes", run_id, idle)
            await raise_alert(
                self.runtime,
                stuck_run_alert(
                    run_id=run_id, as_of=as_of, idle_minutes=idle, open_tasks=open_tasks
                ),
            )
        return len(stuck)

    async def refresh_gauges(self) -> None:
        """Set the tasks gauge to the live runs' task counts by stage and state."""
        async with self.runtime.database.session() as session:
            rows = await session.execute(
                select(Task.stage, Task.state, func.count())
                .join(Run, Run.id == Task.run_id)
                .where(Run.state.in_(LIVE_RUN_STATES))
                .group_by(Task.stage, Task.state)
            )
            counts = {(stage, state): n for stage, state, n in rows}
        for stage in Stage:
            for state in TaskState:
                TASKS_BY_STATE.labels(stage.value, state.value).set(
                    counts.get((stage.value, state.value), 0)
                )


def _aware(value: dt.datetime | None) -> dt.datetime:
    """A stored time as aware UTC (SQLite returns naive UTC); the distant past for None."""
    if value is None:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _stored(runtime: Runtime, moment: dt.datetime) -> dt.datetime:
    """A time as the database compares it: SQLite stores naive UTC text."""
    if runtime.database.is_sqlite:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment
