"""A retention pass as the chart's CronJob runs it (`python -m marketsense.common.retention`) on
PostgreSQL and S3, SIGKILLed mid-pass once a number of rows drawn from a printed seed are gone
(`MARKETSENSE_E2E_SEED` repeats it), then run again: it deletes exactly what the dry run listed,
and no row is left without its object nor an object without its row."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from marketsense.common.clock import utc_now
from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, RawObject, RetentionPass
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.passes import run_pass
from marketsense.common.store import ObjectStore
from tests.backends import as_environment, object_store_fields, s3_store
from tests.retention_support import (
    SYMBOLS,
    consistent,
    present,
    store_expired_runs,
    store_history,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EXPIRED_RUNS = 60
"""Runs past every limit beside the history, so that the pass takes many batches."""
BATCH = 10


@pytest.fixture
async def backends(fresh_pg_database_url: str) -> AsyncIterator[tuple[Database, ObjectStore]]:
    """An empty migrated PostgreSQL database and a fresh S3 prefix."""
    database = Database(fresh_pg_database_url)
    store = s3_store(f"s3://marketsense-test/retention-kill-{uuid.uuid4().hex[:10]}")
    await store.start()
    yield database, store
    await store.close()
    await database.dispose()


async def _object_rows(database: Database) -> int:
    async with database.session() as session:
        raw = await session.scalar(select(func.count()).select_from(RawObject))
        features = await session.scalar(select(func.count()).select_from(FeatureSet))
    return int(raw or 0) + int(features or 0)


async def test_a_pass_sigkilled_mid_way_and_run_again_deletes_exactly_the_dry_runs_list(
    backends: tuple[Database, ObjectStore],
) -> None:
    database, store = backends
    now = utc_now()
    stored = await store_history(database, store, now=now)
    every_key = [
        *stored.objects,
        *await store_expired_runs(database, store, now=now, count=EXPIRED_RUNS),
    ]
    settings = RetentionSettings(retention_batch_size=BATCH)
    listed = await run_pass(database, store, settings, dry_run=True, now=now)
    doomed = {item.key for item in listed.plan.objects if item.key is not None}
    seed = int(os.environ.get("MARKETSENSE_E2E_SEED", random.randrange(2**32)))
    # Killed after at least one batch and with at least two batches still to go.
    gone_before_kill = random.Random(seed).randrange(1, len(doomed) - 2 * BATCH)
    print(f"SIGKILL once {gone_before_kill} of {len(doomed)} object rows are gone (seed {seed})")
    environment = {
        **os.environ,
        **as_environment(
            {
                "database_url": database.url,
                "retention_batch_size": BATCH,
                **object_store_fields(store.base_uri),
            }
        ),
    }
    rows_before = await _object_rows(database)

    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketsense.common.retention", env=environment
    )
    while await _object_rows(database) > rows_before - gone_before_kill:
        assert first.returncode is None, "the pass ended before it could be killed"
        await asyncio.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    async with database.session() as session:
        killed = (await session.scalars(select(RetentionPass).where(~RetentionPass.dry_run))).one()
    assert killed.finished_at is None  # the process died; nothing recorded its end
    left_between = await consistent(database, store, every_key)
    print(f"after the kill: {len(left_between)} keys with a row and no object, or the reverse")

    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketsense.common.retention", env=environment
    )
    assert await again.wait() == 0

    assert await consistent(database, store, every_key) == []
    assert await present(store, every_key) == set(every_key) - doomed
    assert len(doomed) >= EXPIRED_RUNS * len(SYMBOLS) * 2
