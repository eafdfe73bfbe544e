"""The `retrains` table on every database: an event is recorded once, a request is taken by one
worker at a time, its lease frees it only once run out, and a worker whose lease was taken over
can no longer move it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.events import RetrainRequested
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.retraining import store
from marketsense.retraining.states import RetrainState
from tests.service_support import service_runtime

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
REQUEST = RetrainRequested(
    model_name="m",
    reason="decay",
    window_start=dt.date(2026, 6, 1),
    window_end=dt.date(2026, 6, 30),
)


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on the test's database."""
    async with service_runtime(
        service="retraining", database_url=database_url, store=store, home=tmp_path
    ) as made:
        yield made


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_one_request_per_event_one_worker_per_lease_and_a_lost_lease_moves_nothing(
    runtime: Runtime,
) -> None:
    event = str(uuid.uuid4())
    first, created = await store.record_request(runtime, event_id=event, request=REQUEST, now=NOW)
    again, created_again = await store.record_request(
        runtime, event_id=event, request=REQUEST, now=NOW
    )
    assert (again, created, created_again) == (first, True, False)

    taken = await store.claim_next(runtime, now=NOW, lease_seconds=60)
    assert taken is not None
    assert (taken.id, taken.attempts) == (first, 1)
    # Held: nobody else takes it until the lease runs out, then the next taker counts attempt 2.
    assert (
        await store.claim_next(runtime, now=NOW + dt.timedelta(seconds=59), lease_seconds=60)
        is None
    )
    later = NOW + dt.timedelta(seconds=61)
    retaken = await store.claim_next(runtime, now=later, lease_seconds=60)
    assert retaken is not None
    assert retaken.attempts == 2

    with pytest.raises(store.LeaseLost, match="taken by another worker"):
        await store.move(runtime, taken, now=later, state=RetrainState.DONE.value)
    await store.move(runtime, retaken, now=later, state=RetrainState.WAITING.value)
    assert await store.claim_next(runtime, now=later, lease_seconds=0) is None
    assert await store.release_waiting(runtime, now=later) == 1
    assert await store.claim_next(runtime, now=later, lease_seconds=0) is not None
    async with runtime.database.session() as session:
        [row] = await store.list_retrains(session, model="m", limit=10, after=None)
    assert (row.state, row.attempts) == (RetrainState.TRAINING.value, 3)
