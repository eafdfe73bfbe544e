"""The evaluation sets the registry owns: stored with their sha256, the newest of a kind in use,
the project's held-out texts installed as the first sentiment set."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import EvaluationSet
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore, sha256_hex
from marketsense.models.evaluation import (
    HELDOUT_SET_PATH,
    PredictorSet,
    SentimentSet,
    read_predictor_set,
    read_sentiment_set,
)
from marketsense.models.kinds import ModelKind
from marketsense.registry.audit import record

log = logging.getLogger(__name__)

DEFAULT_SENTIMENT_SET = "marketsense-heldout-300"
"""Name of the sentiment set a registry starts with: the texts `marketsense.models` ships."""
SYSTEM_ACTOR = "registry"
"""Who installs the default set."""


def set_key(kind: str, sha256: str) -> str:
    """Object store key of an evaluation set's bytes: content-addressed, never overwritten."""
    return f"evaluation-sets/{kind}/{sha256}"


def parse_set(kind: ModelKind, data: bytes) -> SentimentSet | PredictorSet:
    """The set's rows, checked; InvalidEvaluationSet says what is wrong."""
    return read_sentiment_set(data) if kind == "sentiment" else read_predictor_set(data)


async def add_set(
    runtime: Runtime, *, kind: ModelKind, name: str, data: bytes, source: str, actor: str
) -> EvaluationSet:
    """Check and store a set; the same bytes again return the stored set, not a new one."""
    row, _ = await store_set(runtime, kind=kind, name=name, data=data, source=source, actor=actor)
    return row


async def store_set(
    runtime: Runtime, *, kind: ModelKind, name: str, data: bytes, source: str, actor: str
) -> tuple[EvaluationSet, bool]:
    """`add_set`, also saying whether the set is new (False: these bytes were stored before)."""
    parsed = await asyncio.to_thread(parse_set, kind, data)
    rows = len(parsed.texts) if isinstance(parsed, SentimentSet) else len(parsed.frame)
    digest = sha256_hex(data)
    async with runtime.transaction() as session:
        existing = await _by_hash(session, kind, digest)
        if existing is not None:
            return existing, False
    ref = await runtime.store.put(set_key(kind, digest), data)
    try:
        async with runtime.transaction() as session:
            row = EvaluationSet(
                kind=kind,
                name=name,
                uri=ref.uri,
                sha256=digest,
                size=ref.size,
                rows=rows,
                source=source,
                created_by=actor,
            )
            session.add(row)
            record(
                session,
                model_name=f"evaluation-set:{kind}",
                action="evaluation_set_added",
                actor=actor,
                detail=f"{name} sha256 {digest}, {rows} rows; {source}",
            )
            await session.flush()
            return row, True
    except IntegrityError:  # the same set added concurrently: theirs is the same bytes
        async with runtime.transaction() as session:
            found = await _by_hash(session, kind, digest)
        if found is None:
            raise
        return found, False


async def active_set(runtime: Runtime, kind: ModelKind) -> EvaluationSet | None:
    """The set versions of `kind` are measured on now: the newest added. A registry with no
    sentiment set gets the shipped held-out texts; a predictor set must be added."""
    async with runtime.database.session() as session:
        newest = await session.scalar(
            select(EvaluationSet)
            .where(EvaluationSet.kind == kind)
            .order_by(EvaluationSet.id.desc())
            .limit(1)
        )
    if newest is not None or kind != "sentiment":
        return newest
    data = await asyncio.to_thread(HELDOUT_SET_PATH.read_bytes)
    log.info("installing the shipped held-out texts as the first sentiment evaluation set")
    return await add_set(
        runtime,
        kind="sentiment",
        name=DEFAULT_SENTIMENT_SET,
        data=data,
        source="the held-out texts shipped with marketsense.models",
        actor=SYSTEM_ACTOR,
    )


async def read_set(store: ObjectStore, row: EvaluationSet) -> SentimentSet | PredictorSet:
    """A stored set's rows, its bytes verified against the recorded sha256."""
    data = await set_bytes(store, row)
    kind: ModelKind = "sentiment" if row.kind == "sentiment" else "predictor"
    return await asyncio.to_thread(parse_set, kind, data)


async def set_page(
    session: AsyncSession, *, kind: ModelKind | None, limit: int, cursor: int | None
) -> tuple[list[EvaluationSet], int | None]:
    """Sets newest first (of one kind, or all), `limit` at a time after the id `cursor`;
    with the cursor of the next page, None on the last."""
    query = select(EvaluationSet).order_by(EvaluationSet.id.desc()).limit(limit + 1)
    if kind is not None:
        query = query.where(EvaluationSet.kind == kind)
    if cursor is not None:
        query = query.where(EvaluationSet.id < cursor)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    return rows[:limit], rows[limit - 1].id if more else None


async def set_by_id(session: AsyncSession, set_id: int) -> EvaluationSet | None:
    """One set by its id."""
    return await session.get(EvaluationSet, set_id)


async def active_ids(session: AsyncSession) -> set[int]:
    """Ids of the sets in use now: the newest of each kind."""
    newest = await session.execute(
        select(EvaluationSet.kind, func.max(EvaluationSet.id)).group_by(EvaluationSet.kind)
    )
    return {set_id for _, set_id in newest}


async def set_bytes(store: ObjectStore, row: EvaluationSet) -> bytes:
    """A stored set's bytes, verified against the recorded sha256."""
    data = await store.read_key(set_key(row.kind, row.sha256))
    if sha256_hex(data) != row.sha256:
        raise ValueError(f"evaluation set {row.id} does not match its recorded sha256")
    return data


async def _by_hash(session: AsyncSession, kind: str, digest: str) -> EvaluationSet | None:
    return await session.scalar(
        select(EvaluationSet).where(EvaluationSet.kind == kind, EvaluationSet.sha256 == digest)
    )
