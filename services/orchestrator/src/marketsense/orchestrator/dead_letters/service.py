"""Dead-letter rows in the caller's transaction: built from a record, listed, claimed for replay."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.bus import Record
from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.db.models import DeadLetter
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    ModelPromoted,
    PredictionsReady,
    RawDataReady,
    TaskFailed,
)
from marketsense.common.states import Stage

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


def dead_letter_row(record: Record, *, topic_prefix: str) -> DeadLetter:
    """The index row of a record read from a dead-letter topic, as much as it says of itself."""
    original = (record.header("x-dlq-original-topic") or "").removeprefix(topic_prefix)
    original = original or record.topic.removeprefix(topic_prefix).removesuffix(DLQ_SUFFIX)
    parsed = _parse(record.value)
    try:
        attempts = int(record.header("x-dlq-attempts") or 0)
    except ValueError:
        attempts = 0
    return DeadLetter(
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


async def selected_dead_letters(
    session: AsyncSession, *, ids: list[int] | None, run_id: str | None
) -> list[DeadLetter]:
    """The dead letters with these ids, or else every one of a run, oldest first."""
    query = select(DeadLetter).order_by(DeadLetter.id)
    if ids is not None:
        return list(await session.scalars(query.where(DeadLetter.id.in_(sorted(set(ids))))))
    return list(await session.scalars(query.where(DeadLetter.run_id == run_id)))


async def claim_replay(
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
