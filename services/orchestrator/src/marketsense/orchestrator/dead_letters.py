"""The dead-letter index: record every dead-lettered record, alert once, and replay on request."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.alerts import Alert
from marketsense.common.bus import Record, Subscription
from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.db.models import DeadLetter, OutboxMessage, Run
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    ModelPromoted,
    PredictionsReady,
    RawDataReady,
    TaskFailed,
)
from marketsense.common.metrics import DEAD_LETTERS_RECORDED, DEAD_LETTERS_REPLAYED
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState, move_run, move_task
from marketsense.orchestrator.audit import record_action
from marketsense.orchestrator.service import announce_run_state

log = logging.getLogger(__name__)

WATCHED_TOPICS = (
    IngestRequested.topic,
    RawDataReady.topic,
    FeaturesReady.topic,
    PredictionsReady.topic,
    TaskFailed.topic,
    ModelPromoted.topic,
)
"""Topics whose dead letters are indexed: every stage's input and what the services follow."""

STAGE_OF_TOPIC = {
    IngestRequested.topic: Stage.INGEST,
    RawDataReady.topic: Stage.PROCESS,
    FeaturesReady.topic: Stage.PREDICT,
}
"""The stage a topic's events start; replaying one re-opens that stage's failed task."""

REOPENABLE_RUN_STATES = frozenset({RunState.RUNNING, RunState.PARTIAL, RunState.FAILED})
"""Runs whose failed tasks a replay may put back to work (not cancelled or successful ones)."""


class NoSuchDeadLetter(LookupError):
    """Some requested ids are not in the index."""


class NothingToReplay(Exception):
    """Every selected dead letter was replayed before, or none matched."""


def dead_letter_subscriptions(runtime: Runtime) -> list[Subscription]:
    """Raw consumers of every watched `.dlq` topic (records there may not even parse)."""

    async def on_record(record: Record) -> None:
        await record_dead_letter(runtime, record)

    group = runtime.group("orchestrator-dead-letters")
    return [
        Subscription(topic=topic + DLQ_SUFFIX, group=group, raw_handler=on_record)
        for topic in WATCHED_TOPICS
    ]


@dataclass(frozen=True)
class _Parsed:
    event_type: str | None
    run_id: str | None
    symbol: str | None


def _parse(value: bytes) -> _Parsed:
    """What the record says about itself, as far as it can be read."""
    try:
        envelope = Envelope.model_validate_json(value)
        return _Parsed(envelope.type, envelope.run_id, envelope.symbol)
    except ValidationError:
        pass
    try:
        loose = json.loads(value)
    except ValueError:
        return _Parsed(None, None, None)
    if not isinstance(loose, dict):
        return _Parsed(None, None, None)

    def text(name: str) -> str | None:
        found = loose.get(name)
        return found if isinstance(found, str) else None

    return _Parsed(text("type"), text("run_id"), text("symbol"))


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def _failed_at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


async def record_dead_letter(runtime: Runtime, record: Record) -> DeadLetter | None:
    """Index one dead-lettered record and alert about it; None if it was indexed before."""
    prefix = runtime.bus.topic_prefix
    original = (record.header("x-dlq-original-topic") or "").removeprefix(prefix)
    original = original or record.topic.removeprefix(prefix).removesuffix(DLQ_SUFFIX)
    parsed = _parse(record.value)
    try:
        attempts = int(record.header("x-dlq-attempts") or 0)
    except ValueError:
        attempts = 0
    row = DeadLetter(
        # The full name: with the deployment's prefix, (topic, partition, offset) is unique.
        dlq_topic=record.topic[:255],
        dlq_partition=record.partition,
        dlq_offset=record.offset,
        original_topic=original[:255],
        key=_clip(record.key, 255),
        value=record.value,
        headers=json.dumps(
            {k: v.decode(errors="replace") for k, v in record.headers if k.startswith("x-dlq-")},
            sort_keys=True,
        ),
        error=record.header("x-dlq-error") or "",
        attempts=attempts,
        event_type=_clip(parsed.event_type, 64),
        run_id=_clip(parsed.run_id, 36),
        symbol=_clip(parsed.symbol, 32),
        failed_at=_failed_at(record.header("x-dlq-failed-at")),
        recorded_at=dt.datetime.now(dt.UTC),
    )
    try:
        async with runtime.database.session() as session:
            session.add(row)
            await session.commit()
    except IntegrityError:
        # A redelivery of a record already indexed (and alerted about).
        return None
    DEAD_LETTERS_RECORDED.labels(original).inc()
    log.warning("dead letter %d recorded from %s: %s", row.id, original, row.error)
    await runtime.alerter.notify(dead_letter_alert(row))
    return row


def dead_letter_alert(row: DeadLetter) -> Alert:
    """The alert for one dead letter, saying what failed and how to replay it."""
    what = row.event_type or "an unreadable record"
    where = f"{row.symbol or 'no symbol'} (run {row.run_id or 'unknown'})"
    return Alert(
        key=f"dead-letter:{row.original_topic}:{row.run_id or '-'}:{row.symbol or '-'}"[:255],
        severity="warning",
        title=f"Dead letter on {row.original_topic}: {what} for {where}",
        text=(
            f"{what} for {where} was dead-lettered from {row.original_topic} after "
            f"{row.attempts} attempt(s).\nError: {row.error or 'unknown'}\n"
            f"Fix the cause, then replay it: "
            f'marketsense dlq replay --id {row.id} --reason "..."'
        ),
    )


async def list_dead_letters(
    session: AsyncSession,
    *,
    run_id: str | None = None,
    topic: str | None = None,
    replayed: bool | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[DeadLetter]:
    """Dead letters newest first, filtered; `before_id` continues after a previous page."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if run_id is not None:
        query = query.where(DeadLetter.run_id == run_id)
    if topic is not None:
        query = query.where(DeadLetter.original_topic == topic.removesuffix(DLQ_SUFFIX))
    if replayed is not None:
        query = query.where(
            DeadLetter.replayed_at.is_not(None) if replayed else DeadLetter.replayed_at.is_(None)
        )
    if before_id is not None:
        query = query.where(DeadLetter.id < before_id)
    return list(await session.scalars(query))


@dataclass(frozen=True)
class ReplayResult:
    """Dead letters a replay republished, and those it skipped with why."""

    replayed: list[DeadLetter]
    skipped: list[tuple[int, str]]


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
        query = select(DeadLetter).order_by(DeadLetter.id)
        if ids is not None:
            query = query.where(DeadLetter.id.in_(sorted(set(ids))))
        else:
            query = query.where(DeadLetter.run_id == run_id)
        selected = list(await session.scalars(query))
        if ids is not None:
            missing = sorted(set(ids) - {row.id for row in selected})
            if missing:
                raise NoSuchDeadLetter(f"no dead letters with ids {missing[:20]}")
        replayed: list[DeadLetter] = []
        skipped: list[tuple[int, str]] = []
        for row in selected:
            if await _claim_replay(session, row, actor=actor, now=now, force=force):
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


async def _claim_replay(
    session: AsyncSession, row: DeadLetter, *, actor: str, now: dt.datetime, force: bool
) -> bool:
    """Mark a dead letter replayed unless it was (compare-and-set: concurrent replays race)."""
    query = update(DeadLetter).where(DeadLetter.id == row.id)
    if not force:
        query = query.where(DeadLetter.replayed_at.is_(None))
    result = await session.execute(
        query.values(replayed_at=now, replayed_by=actor).execution_options(
            synchronize_session=False
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    row.replayed_at, row.replayed_by = now, actor
    return True


async def _reopen_tasks(
    session: AsyncSession, runtime: Runtime, rows: list[DeadLetter]
) -> list[str]:
    """Put each replayed stage input's FAILED task back to PENDING, so its handler claims it.

    A PARTIAL or FAILED run goes back to RUNNING, and settles again when the tasks finish.
    """
    reopened: list[str] = []
    states: dict[str, RunState | None] = {}
    runs: dict[str, Run] = {}
    for row in rows:
        stage = STAGE_OF_TOPIC.get(row.original_topic)
        if stage is None or row.run_id is None or row.symbol is None:
            continue
        if row.run_id not in states:
            found = await session.get(Run, row.run_id)
            states[row.run_id] = None if found is None else RunState(found.state)
            if found is not None:
                runs[row.run_id] = found
        state = states[row.run_id]
        if state is None or state not in REOPENABLE_RUN_STATES:
            continue
        moved = await move_task(
            session,
            run_id=row.run_id,
            symbol=row.symbol,
            stage=stage,
            source={TaskState.FAILED},
            target=TaskState.PENDING,
        )
        if not moved:
            continue
        reopened.append(f"{row.symbol}/{stage.value}")
        if state != RunState.RUNNING and await move_run(
            session, run_id=row.run_id, source={state}, target=RunState.RUNNING
        ):
            run = runs[row.run_id]
            announce_run_state(session, runtime, run.id, run.as_of, state, RunState.RUNNING)
            states[row.run_id] = RunState.RUNNING
    return reopened
