"""Indexing a dead letter (and alerting about it once), and replaying chosen ones: each flow owns
its transaction, re-opens the tasks and runs a replay puts back to work, and audits."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.alerts import Notifier
from marketsense.common.bus import Record
from marketsense.common.db.models import DeadLetter, OutboxMessage, Run
from marketsense.common.metrics import DEAD_LETTERS_RECORDED, DEAD_LETTERS_REPLAYED
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, TaskState, move_task
from marketsense.orchestrator.alerts.service import dead_letter_alert
from marketsense.orchestrator.audit.service import record_action
from marketsense.orchestrator.dead_letters.service import (
    STAGE_OF_TOPIC,
    claim_replay,
    dead_letter_row,
    selected_dead_letters,
)
from marketsense.orchestrator.runs.service import change_state
from marketsense.orchestrator.tasks.service import unskip_tasks

log = logging.getLogger(__name__)

REOPENABLE_RUN_STATES = frozenset({RunState.RUNNING, RunState.PARTIAL, RunState.FAILED})
"""Runs whose failed tasks a replay may put back to work (not cancelled or successful ones)."""


class NoSuchDeadLetter(LookupError):
    """Some requested ids are not in the index."""


class NothingToReplay(Exception):
    """Every selected dead letter was replayed before, or none matched."""


@dataclass(frozen=True)
class ReplayResult:
    """Dead letters a replay republished, and those it skipped with why."""

    replayed: list[DeadLetter]
    skipped: list[tuple[int, str]]


async def index_dead_letter(
    runtime: Runtime, notifier: Notifier, record: Record
) -> DeadLetter | None:
    """Index one dead-lettered record and alert about it; None if it was indexed before."""
    row = dead_letter_row(record, topic_prefix=runtime.bus.topic_prefix)
    try:
        async with runtime.transaction() as session:
            session.add(row)
    except IntegrityError:
        # A redelivery of a record already indexed (and alerted about).
        return None
    DEAD_LETTERS_RECORDED.labels(row.original_topic).inc()
    log.warning("dead letter %d recorded from %s: %s", row.id, row.original_topic, row.error)
    await notifier.notify(dead_letter_alert(row))
    return row


async def replay_dead_letters(
    *,
    runtime: Runtime,
    ids: list[int] | None = None,
    run_id: str | None = None,
    actor: str,
    reason: str,
    force: bool = False,
) -> ReplayResult:
    """Republish dead letters unchanged to their original topics, and re-open their tasks.

    Marking them replayed, re-opening FAILED tasks (and their run) and queueing the records in
    the outbox commit together, so a replay is never half done. Raises NoSuchDeadLetter for
    unknown ids and NothingToReplay when nothing is left to replay.
    """
    now = dt.datetime.now(dt.UTC)
    async with runtime.transaction() as session:
        selected = await selected_dead_letters(session, ids=ids, run_id=run_id)
        if ids is not None:
            missing = sorted(set(ids) - {row.id for row in selected})
            if missing:
                raise NoSuchDeadLetter(f"no dead letters with ids {missing[:20]}")
        replayed: list[DeadLetter] = []
        skipped: list[tuple[int, str]] = []
        for row in selected:
            if await claim_replay(session, row, actor=actor, now=now, force=force):
                replayed.append(row)
            else:
                skipped.append((row.id, "replayed before; pass force to replay it again"))
        if not replayed:
            raise NothingToReplay(
                "nothing to replay: every selected dead letter was replayed before (use force)"
                if selected
                else f"run {run_id} has no dead letters"
            )
        reopened = await _reopen_tasks(session, runtime, replayed)
        for row in replayed:
            session.add(
                OutboxMessage(
                    source=runtime.service, topic=row.original_topic, key=row.key, value=row.value
                )
            )
        record_action(
            session,
            action="replay",
            target="dead-letters",
            actor=actor,
            reason=reason,
            details={
                "ids": [row.id for row in replayed],
                "skipped": [id_ for id_, _ in skipped],
                "run_id": run_id,
                "force": force,
                "tasks_reopened": reopened,
            },
        )
    for row in replayed:
        DEAD_LETTERS_REPLAYED.labels(row.original_topic).inc()
    log.info("%s replayed %d dead letter(s), skipped %d", actor, len(replayed), len(skipped))
    return ReplayResult(replayed, skipped)


async def _reopen_tasks(
    session: AsyncSession, runtime: Runtime, rows: list[DeadLetter]
) -> list[str]:
    """Put each replayed stage input's FAILED task back to PENDING, so its handler claims it.

    A PARTIAL or FAILED run goes back to RUNNING, and settles again when the tasks finish.
    """
    reopened: list[str] = []
    runs: dict[str, Run | None] = {}
    for row in rows:
        stage = STAGE_OF_TOPIC.get(row.original_topic)
        if stage is None or row.run_id is None or row.symbol is None:
            continue
        if row.run_id not in runs:
            runs[row.run_id] = await session.get(Run, row.run_id)
        run = runs[row.run_id]
        if run is None or RunState(run.state) not in REOPENABLE_RUN_STATES:
            continue
        if not await move_task(
            session,
            run_id=run.id,
            symbol=row.symbol,
            stage=stage,
            source={TaskState.FAILED},
            target=TaskState.PENDING,
        ):
            continue
        # The symbol's later stages, skipped when the run ended, wait for this one again.
        await unskip_tasks(session, run_id=run.id, symbol=row.symbol)
        reopened.append(f"{row.symbol}/{stage.value}")
        if run.state != RunState.RUNNING:
            await change_state(session, source=runtime.service, run=run, target=RunState.RUNNING)
    return reopened
