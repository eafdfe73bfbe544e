"""What starts, settles, retries or cancels a run: each flow owns its transaction, touches runs and
their tasks together, and audits, alerts and counts what it did."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy.exc import IntegrityError

from marketsense.common.alerts import Notifier
from marketsense.common.db.models import Run
from marketsense.common.events import IngestRequested
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.orchestrator.alerts.service import raise_alert, run_ended_alert
from marketsense.orchestrator.audit.service import record_action
from marketsense.orchestrator.runs.service import (
    add_run,
    change_state,
    failed_symbols,
    final_state,
    finished_symbols,
    live_run_id,
    observe_finished,
    settleable_runs,
)
from marketsense.orchestrator.tasks.service import (
    MissingInput,
    add_tasks,
    cancel_open_tasks,
    failed_tasks,
    queue_stage_input,
    requeue_task,
    skip_open_tasks,
    unskip_tasks,
)

log = logging.getLogger(__name__)

RETRYABLE_RUN_STATES = frozenset({RunState.RUNNING, RunState.PARTIAL, RunState.FAILED})
"""A run whose failed tasks an operator may retry."""


class RunConflict(Exception):
    """A run for the trading day is already PENDING or RUNNING."""

    def __init__(self, as_of: dt.date, run_id: str | None):
        self.as_of = as_of
        self.run_id = run_id
        super().__init__(
            f"run {run_id} for {as_of} is still live; wait for it to finish or cancel it"
            if run_id
            else f"another run for {as_of} is being started"
        )


class NoSuchRun(LookupError):
    """No run has the id."""


class ActionRefused(Exception):
    """The run is not in a state that allows the action."""


async def start_run(
    *,
    runtime: Runtime,
    as_of: dt.date,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
    actor: str,
) -> str:
    """Create a run with a task per (symbol, stage), start it, and request every symbol's data.

    Raises RunConflict while the day has a live run: checked up front for a clear answer, and
    enforced by the database's partial unique index when two requests race.
    """
    run_id = str(uuid.uuid4())
    try:
        async with runtime.transaction() as session:
            live = await live_run_id(session, as_of=as_of)
            if live is not None:
                raise RunConflict(as_of, live)
            run = add_run(
                session,
                run_id=run_id,
                as_of=as_of,
                symbols=len(symbols),
                failure_threshold=failure_threshold,
            )
            await session.flush()
            add_tasks(session, run_id=run_id, symbols=symbols)
            await session.flush()
            await change_state(session, source=runtime.service, run=run, target=RunState.RUNNING)
            request = IngestRequested(as_of=as_of, lookback_days=lookback_days)
            for symbol in symbols:
                queue_stage_input(
                    session, source=runtime.service, run_id=run_id, symbol=symbol, payload=request
                )
            record_action(
                session,
                action="start",
                target=run_id,
                actor=actor,
                details={"as_of": as_of.isoformat(), "symbols": len(symbols)},
            )
    except IntegrityError as exc:
        async with runtime.database.session() as session:
            raise RunConflict(as_of, await live_run_id(session, as_of=as_of)) from exc
    log.info("run %s started for %s with %d symbols", run_id, as_of, len(symbols))
    return run_id


async def settle_run(*, runtime: Runtime, notifier: Notifier, run_id: str) -> RunState | None:
    """Finish a RUNNING run once every symbol has predicted or failed; return its new state.

    The run's tasks still PENDING (stages after a failure) become SKIPPED in the same
    transaction. A run ending PARTIAL or FAILED raises one alert naming its failed symbols;
    only the replica whose compare-and-set moved the run counts and alerts.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None or run.state != RunState.RUNNING:
            return None
        # Stops at the run's first task still to do: cheap on each event of a busy run, where
        # counting its symbols would read every one of its tasks.
        if not await settleable_runs(session, run_id=run_id):
            return None
        predicted, failed = await finished_symbols(session, run_id=run_id)
        if predicted + failed < run.symbols:
            return None
        target = final_state(failed=failed, total=run.symbols, threshold=run.failure_threshold)
        # Compare-and-set: when two replicas race, only one finishes the run.
        if not await change_state(session, source=runtime.service, run=run, target=target):
            return None
        # The stages after a symbol's failure will not run: they end with the run.
        await skip_open_tasks(session, run_id=run_id)
        started, as_of, symbols = run.created_at, run.as_of, run.symbols
    log.info("run %s finished %s", run_id, target)
    observe_finished(target, started)
    if target in (RunState.PARTIAL, RunState.FAILED):
        async with runtime.database.session() as session:
            failed_list = await failed_symbols(session, run_id=run_id)
        await raise_alert(
            notifier,
            run_ended_alert(
                run_id=run_id, as_of=as_of, state=target, symbols=symbols, failed=failed_list
            ),
        )
    return target


async def retry_run(
    *, runtime: Runtime, run_id: str, actor: str, reason: str, lookback_days: int
) -> int:
    """Re-queue every FAILED task of a run, putting the run back to RUNNING and its SKIPPED
    tasks back to PENDING; return how many tasks were re-queued.

    Raises NoSuchRun, or ActionRefused when the run is not RUNNING, PARTIAL or FAILED or has no
    failed task.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None:
            raise NoSuchRun(run_id)
        state = RunState(run.state)
        if state not in RETRYABLE_RUN_STATES:
            raise ActionRefused(f"run {run_id} is {state}: only a RUNNING, PARTIAL or FAILED run")
        failed = await failed_tasks(session, run_id=run_id)
        if not failed:
            raise ActionRefused(f"run {run_id} has no failed task to retry")
        if state != RunState.RUNNING and not await change_state(
            session, source=runtime.service, run=run, target=RunState.RUNNING
        ):
            raise ActionRefused(f"run {run_id} changed state meanwhile; try again")
        requeued: list[str] = []
        for task in failed:
            try:
                if await requeue_task(
                    session,
                    source=runtime.service,
                    run=run,
                    task=task,
                    lookback_days=lookback_days,
                    reason="operator",
                ):
                    requeued.append(f"{task.symbol}/{task.stage}")
            except MissingInput as exc:
                raise ActionRefused(str(exc)) from exc
        # The stages skipped when the run ended wait again for the retried ones.
        await unskip_tasks(session, run_id=run_id)
        record_action(
            session,
            action="retry",
            target=run_id,
            actor=actor,
            reason=reason,
            details={"tasks": requeued, "from_state": state.value},
        )
    log.info("run %s: %s re-queued %d failed tasks", run_id, actor, len(requeued))
    return len(requeued)


async def cancel_run(*, runtime: Runtime, run_id: str, actor: str, reason: str) -> int:
    """Cancel a PENDING or RUNNING run and its unfinished tasks; return how many tasks.

    Handlers skip cancelled tasks (they cannot be claimed). Raises NoSuchRun or ActionRefused.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None:
            raise NoSuchRun(run_id)
        state = RunState(run.state)
        if state not in (RunState.PENDING, RunState.RUNNING):
            raise ActionRefused(f"run {run_id} is {state}: only a PENDING or RUNNING run")
        if not await change_state(
            session, source=runtime.service, run=run, target=RunState.CANCELLED
        ):
            raise ActionRefused(f"run {run_id} changed state meanwhile; try again")
        cancelled = await cancel_open_tasks(session, run_id=run_id)
        record_action(
            session,
            action="cancel",
            target=run_id,
            actor=actor,
            reason=reason,
            details={"tasks": cancelled, "from_state": state.value},
        )
        created_at = run.created_at
    observe_finished(RunState.CANCELLED, created_at)
    log.info("run %s cancelled by %s (%d tasks)", run_id, actor, cancelled)
    return cancelled
