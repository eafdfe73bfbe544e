"""The reaper: recovers tasks whose worker or event was lost, settles runs from their tasks,
alerts on stuck runs, refreshes task gauges."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from marketsense.common.alerts import Notifier
from marketsense.common.clock import Clock, utc_now
from marketsense.common.metrics import TASKS_BY_STATE
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.orchestrator.alerts.service import raise_alert, stuck_run_alert
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.runs.flows import settle_run
from marketsense.orchestrator.runs.service import idle_runs, settleable_runs
from marketsense.orchestrator.tasks.flows import time_out_task
from marketsense.orchestrator.tasks.service import (
    live_task_counts,
    open_task_count,
    overdue_tasks,
    stranded_tasks,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReaperPass:
    """What one reaper pass did."""

    reaped: int
    """Timed-out or stranded tasks re-queued or failed for good."""
    settled: int
    """Runs settled from their tasks' states."""
    stuck: int
    """Stuck runs alerted."""


class Reaper:
    """Recovers lost tasks, settles finished runs and finds stuck ones, on a clock that tests
    may replace."""

    def __init__(
        self,
        runtime: Runtime,
        settings: OrchestratorSettings,
        notifier: Notifier,
        *,
        clock: Clock = utc_now,
    ):
        self.runtime = runtime
        self.settings = settings
        self.notifier = notifier
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

    async def reap_once(self) -> ReaperPass:
        """One pass: tasks recovered, runs settled, stuck runs alerted; task gauges refreshed."""
        reaped = await self.reap_timed_out_tasks()
        settled = await self.settle_finished_runs()
        stuck = await self.alert_stuck_runs()
        await self.refresh_gauges()
        return ReaperPass(reaped=reaped, settled=settled, stuck=stuck)

    async def reap_timed_out_tasks(self) -> int:
        """Fail every task RUNNING past its timeout, or PENDING past the pending timeout with its
        event presumed lost: re-queue it under the attempt limit; how many were handled."""
        now = self.clock()
        running_cutoff = now - dt.timedelta(seconds=self.settings.task_timeout_seconds)
        pending_cutoff = now - dt.timedelta(seconds=self.settings.pending_timeout_seconds)
        async with self.runtime.database.session() as session:
            overdue = [
                (task, TaskState.RUNNING, running_cutoff)
                for task in await overdue_tasks(session, cutoff=running_cutoff)
            ]
            overdue += [
                (task, TaskState.PENDING, pending_cutoff)
                for task in await stranded_tasks(session, cutoff=pending_cutoff)
            ]
        handled = 0
        for (run_id, symbol, stage), state, cutoff in overdue:
            failed_for_good = await time_out_task(
                runtime=self.runtime,
                run_id=run_id,
                symbol=symbol,
                stage=stage,
                max_attempts=self.settings.handler_max_attempts,
                lookback_days=self.settings.lookback_days,
                stranded_in=state,
                unchanged_since=cutoff,
            )
            if failed_for_good is None:
                continue
            handled += 1
            if failed_for_good:
                await settle_run(runtime=self.runtime, notifier=self.notifier, run_id=run_id)
        return handled

    async def settle_finished_runs(self) -> int:
        """Settle every RUNNING run whose symbols have all predicted or failed, whichever events
        were lost on the way; how many this replica settled."""
        async with self.runtime.database.session() as session:
            run_ids = await settleable_runs(session)
        settled = 0
        for run_id in run_ids:
            if await settle_run(runtime=self.runtime, notifier=self.notifier, run_id=run_id):
                settled += 1
        return settled

    async def alert_stuck_runs(self) -> int:
        """Alert once per RUNNING run whose tasks have not changed for `stuck_run_minutes`."""
        now = self.clock()
        cutoff = now - dt.timedelta(minutes=self.settings.stuck_run_minutes)
        async with self.runtime.database.session() as session:
            stuck = []
            for run, changed in await idle_runs(session, cutoff=cutoff):
                open_tasks = await open_task_count(session, run_id=run.id)
                stuck.append((run.id, run.as_of, (now - changed).total_seconds() / 60, open_tasks))
        for run_id, as_of, idle, open_tasks in stuck:
            log.warning("run %s has not moved for %.0f minutes", run_id, idle)
            await raise_alert(
                self.notifier,
                stuck_run_alert(
                    run_id=run_id, as_of=as_of, idle_minutes=idle, open_tasks=open_tasks
                ),
            )
        return len(stuck)

    async def refresh_gauges(self) -> None:
        """Set the tasks gauge to the live runs' task counts by stage and state."""
        async with self.runtime.database.session() as session:
            counts = await live_task_counts(session)
        for stage in Stage:
            for state in TaskState:
                TASKS_BY_STATE.labels(stage.value, state.value).set(
                    counts.get((stage.value, state.value), 0)
                )
