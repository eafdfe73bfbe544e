"""A small history for retention tests: runs of every kind at different ages, with their
objects (simulated bars and feature rows as Parquet) and rows, and a registered model whose
training window covers one old run."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    DeadLetter,
    FeatureSet,
    ModelVersion,
    RawObject,
    RegisteredModel,
    RetentionHold,
    Run,
    Task,
)
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.store.base import ObjectStore
from marketsense.ingestion.service import raw_key
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.processing.service import features_key

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
"""The time every pass of these tests runs at."""
SYMBOLS = ("AAPL", "MSFT")


@dataclass(frozen=True)
class PlannedRun:
    """A run of the history: its name, state, age in days, and whether a task failed."""

    name: str
    state: str
    age_days: int
    failed_task: bool = False
    finished_days: int | None = None
    """Days since it finished, when not `age_days` (a backfill of old days that failed lately)."""


HISTORY = (
    PlannedRun("young", "SUCCESS", 5),
    PlannedRun("raw-expired", "SUCCESS", 200),
    PlannedRun("ancient", "SUCCESS", 800),
    PlannedRun("lineage", "SUCCESS", 790),
    PlannedRun("held", "SUCCESS", 805),
    PlannedRun("in-flight", "RUNNING", 812),
    PlannedRun("retryable", "FAILED", 200, failed_task=True, finished_days=10),
)
"""Under the default policy (raw 90 days, features and runs 730, retries 30): `raw-expired`
loses its raw objects, `ancient` loses everything, `lineage` keeps its features (a model was
trained on its day), and `held`, `in-flight` and `retryable` keep everything."""


@dataclass
class Stored:
    """What the history stored: run ids by name, and every object key with its table."""

    runs: dict[str, str]
    objects: dict[str, str]

    def keys_of(self, name: str, table: str | None = None) -> set[str]:
        """Object keys of a run, of one table or both."""
        run_id = self.runs[name]
        return {
            key
            for key, of in self.objects.items()
            if f"/{run_id}/" in key and (table is None or of == table)
        }


async def store_history(
    database: Database, store: ObjectStore, *, seed: int = 3, now: dt.datetime = NOW
) -> Stored:
    """Store HISTORY as of `now`, a hold on `held`, a model trained on `lineage`'s day, and two
    dead letters: one replayed 40 days ago (expired), one 5 days ago."""
    market = SimulatedMarket(seed)
    stored = Stored(runs={}, objects={})
    async with database.session() as session:
        for planned in HISTORY:
            run_id = str(uuid.uuid4())
            stored.runs[planned.name] = run_id
            at = now - dt.timedelta(days=planned.age_days)
            as_of = _weekday(at.date())
            ended = now - dt.timedelta(days=planned.finished_days or planned.age_days)
            finished = None if planned.state == "RUNNING" else ended
            session.add(
                Run(
                    id=run_id,
                    as_of=as_of,
                    state=planned.state,
                    symbols=len(SYMBOLS),
                    created_at=at,
                    updated_at=at,
                    finished_at=finished,
                )
            )
            await session.flush()
            for symbol in SYMBOLS:
                frame = market.daily_bars(symbol, as_of=as_of, days=5)
                bars = to_parquet_bytes(frame)
                # A small stand-in for the feature row: the day's returns, as processing derives.
                returns = frame[["date"]].assign(ret_1d=frame["close"].pct_change().fillna(0.0))
                keys = (
                    raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="bars.parquet"),
                    features_key(as_of=as_of, run_id=run_id, symbol=symbol),
                )
                raw = await store.put(keys[0], bars)
                features = await store.put(keys[1], to_parquet_bytes(returns.tail(1)))
                row = RawObject(
                    run_id=run_id, symbol=symbol, as_of=as_of, kind="bars", rows=5, created_at=at
                )
                row.point_at(raw)
                feature_row = FeatureSet(
                    run_id=run_id, symbol=symbol, as_of=as_of, feature_schema="v1", created_at=at
                )
                feature_row.point_at(features)
                session.add_all([row, feature_row])
                stored.objects |= {keys[0]: "raw_objects", keys[1]: "features"}
                failed = planned.failed_task and symbol == SYMBOLS[0]
                session.add(
                    Task(
                        run_id=run_id,
                        symbol=symbol,
                        stage="ingest",
                        state="FAILED" if failed else "SUCCESS",
                        attempts=1,
                    )
                )
        session.add(
            RetentionHold(run_id=stored.runs["held"], reason="audit", actor="ops", created_at=now)
        )
        await _register_lineage(session, _weekday((now - dt.timedelta(days=790)).date()))
        for days in (40, 5):
            session.add(_dead_letter(stored.runs["young"], now - dt.timedelta(days=days)))
        await session.commit()
    return stored


async def store_expired_runs(
    database: Database, store: ObjectStore, *, now: dt.datetime, count: int
) -> list[str]:
    """`count` finished runs 800 days old and more, past every limit of the default policy, with
    their raw and feature objects and rows; every key stored."""
    keys = []
    async with database.session() as session:
        for i in range(count):
            run_id, at = str(uuid.uuid4()), now - dt.timedelta(days=800 + i)
            as_of = at.date()
            session.add(
                Run(
                    id=run_id,
                    as_of=as_of,
                    state="SUCCESS",
                    symbols=len(SYMBOLS),
                    created_at=at,
                    updated_at=at,
                    finished_at=at,
                )
            )
            await session.flush()
            for symbol in SYMBOLS:
                raw = raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="bars.parquet")
                features = features_key(as_of=as_of, run_id=run_id, symbol=symbol)
                raw_row = RawObject(
                    run_id=run_id, symbol=symbol, as_of=as_of, kind="bars", rows=1, created_at=at
                )
                raw_row.point_at(await store.put(raw, f"bars {run_id} {symbol}".encode()))
                feature_row = FeatureSet(
                    run_id=run_id, symbol=symbol, as_of=as_of, feature_schema="v1", created_at=at
                )
                feature_row.point_at(await store.put(features, f"row {run_id}".encode()))
                session.add_all([raw_row, feature_row])
                keys += [raw, features]
        await session.commit()
    return keys


async def consistent(database: Database, store: ObjectStore, keys: Sequence[str]) -> list[str]:
    """Keys whose object and row disagree: a row without its object or an object without row."""
    async with database.session() as session:
        uris = set((await session.scalars(select(RawObject.uri))).all())
        uris |= set((await session.scalars(select(FeatureSet.uri))).all())
    return [key for key in keys if (store.uri_for(key) in uris) != await store.exists(key)]


async def present(store: ObjectStore, keys: Sequence[str]) -> set[str]:
    """The keys whose objects still exist."""
    return {key for key in keys if await store.exists(key)}


async def _register_lineage(session: AsyncSession, day: dt.date) -> None:
    session.add(RegisteredModel(name="predictor", kind="predictor", created_by="ds"))
    await session.flush()
    training = {
        "train_start": (day - dt.timedelta(days=3)).isoformat(),
        "train_end": day.isoformat(),
        "holdout_end": (day + dt.timedelta(days=2)).isoformat(),
    }
    session.add(
        ModelVersion(
            model_name="predictor",
            version=1,
            files="[]",
            created_by="ds",
            manifest=json.dumps({"name": "predictor", "training": training}),
        )
    )


def _dead_letter(run_id: str, replayed_at: dt.datetime) -> DeadLetter:
    return DeadLetter(
        dlq_topic="raw.ready.dlq",
        dlq_partition=0,
        dlq_offset=int(replayed_at.timestamp()),
        original_topic="raw.ready",
        value=b"{}",
        run_id=run_id,
        replayed_at=replayed_at,
        replayed_by="ops",
    )


def _weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day
