"""Retention passes on the embedded default and on PostgreSQL and S3: a pass deletes exactly
the expired rest of a history with a run in flight, a model's lineage and a hold; a dry run
lists what the real pass then deletes; a pass killed half-way and run again leaves objects and
rows consistent."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DeadLetter, RetentionPass, Run, Task
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.deleting import delete_planned
from marketsense.common.retention.holds import hold_run
from marketsense.common.retention.passes import latest_pass, run_pass
from marketsense.common.retention.planning import plan_pass
from marketsense.common.retention.tally import Tally
from marketsense.common.store import FileStore, ObjectStore
from tests.backends import s3_store
from tests.conftest import INTEGRATION, _copied_template, _migrate_and_empty
from tests.retention_support import NOW, consistent, present, store_history

SETTINGS = RetentionSettings(retention_batch_size=3)
"""The default policy, in batches of three objects so that a pass takes several."""


@pytest.fixture(params=["embedded", pytest.param("servers", marks=INTEGRATION)])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL database of the servers' case; None for the embedded default."""
    if request.param == "servers":
        url: str = request.getfixturevalue("pg_database_url")
        return url
    return None


@pytest.fixture
async def backends(
    backend_url: str | None, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[tuple[Database, ObjectStore]]:
    """SQLite and a folder, or PostgreSQL and S3; empty."""
    store: ObjectStore
    if backend_url is not None:
        database = Database(backend_url)
        await _migrate_and_empty(database)
        store = s3_store(f"s3://marketsense-test/retention-{uuid.uuid4().hex[:10]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}"
        assert _copied_template(sqlite_template, url)
        database, store = Database(url), FileStore((tmp_path / "objects").as_uri())
    await store.start()
    yield database, store
    await store.close()
    await database.dispose()


class DyingStore(FileStore):
    """Deletes `allowed` objects through the real store, then raises, as a killed pass would."""

    def __init__(self, inner: ObjectStore, allowed: int):
        self.inner, self.allowed, self.base_uri = inner, allowed, inner.base_uri

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete what is still allowed, then fail when keys are left."""
        now, self.allowed = list(keys[: self.allowed]), max(0, self.allowed - len(keys))
        await self.inner.delete_many(now)
        if len(now) < len(keys):
            raise RuntimeError(f"killed after deleting {len(now)} of {len(keys)} objects")


async def test_a_pass_deletes_exactly_the_expired_rest_and_the_dry_run_listed_it(
    backends: tuple[Database, ObjectStore],
) -> None:
    database, store = backends
    stored = await store_history(database, store)
    expected = (
        stored.keys_of("raw-expired", "raw_objects")
        | stored.keys_of("lineage", "raw_objects")
        | stored.keys_of("ancient")
    )

    dry = await run_pass(database, store, SETTINGS, dry_run=True, now=NOW)
    assert await present(store, list(stored.objects)) == set(stored.objects)
    real = await run_pass(database, store, SETTINGS, dry_run=False, now=NOW)

    assert real.plan.all() == dry.plan.all()
    assert {d.key for d in dry.plan.objects} == expected
    assert await present(store, list(stored.objects)) == set(stored.objects) - expected
    assert await consistent(database, store, list(stored.objects)) == []
    assert dry.tally.as_json() == real.tally.as_json()
    assert real.tally.kept == {"lineage": 2, "held": 4, "live": 4, "retryable": 2}
    async with database.session() as session:
        runs = set((await session.scalars(select(Run.id))).all())
        tasks = await session.scalar(select(func.count()).select_from(Task))
        letters = await session.scalar(select(func.count()).select_from(DeadLetter))
    assert runs == set(stored.runs.values()) - {stored.runs["ancient"]}
    assert (tasks, letters) == (12, 1)
    row = await latest_pass(database)
    assert row is not None
    assert row.id == real.pass_id
    assert row.error is None
    assert row.counts["prefixes"] == {
        prefix: {
            "objects": sum(1 for key in expected if key.startswith(prefix)),
            "bytes": sum(d.size for d in real.plan.objects if d.key and d.key.startswith(prefix)),
        }
        for prefix in ("features/", "raw/")
    }
    assert row.counts["tables"]["runs"] == 1
    assert row.counts["tables"]["dead_letters"] == 1
    assert row.bytes_freed == sum(d.size for d in real.plan.objects) > 0


async def test_a_pass_killed_half_way_then_run_again_leaves_objects_and_rows_consistent(
    backends: tuple[Database, ObjectStore],
) -> None:
    database, store = backends
    stored = await store_history(database, store)
    seed = random.randrange(2**32)
    doomed = 8  # 6 raw objects (3 runs of 2 symbols) and the features of `ancient`
    allowed = random.Random(seed).randrange(1, doomed)
    print(f"killing the pass after {allowed} deletes (seed {seed})")

    with pytest.raises(RuntimeError, match="killed after deleting"):
        await run_pass(database, DyingStore(store, allowed), SETTINGS, dry_run=False, now=NOW)
    async with database.session() as session:
        killed = await session.scalar(select(RetentionPass).where(RetentionPass.error.is_not(None)))
    assert killed is not None
    assert "killed after deleting" in (killed.error or "")
    again = await run_pass(database, store, SETTINGS, dry_run=False, now=NOW)

    assert await consistent(database, store, list(stored.objects)) == []
    assert len(await present(store, list(stored.objects))) == len(stored.objects) - doomed
    assert again.tally.rows["raw_objects"] + again.tally.rows["features"] >= doomed - allowed


@pytest.mark.parametrize("change", ["hold", "retry"])
async def test_a_run_held_or_put_back_to_work_after_planning_keeps_everything(
    backends: tuple[Database, ObjectStore], change: str
) -> None:
    database, store = backends
    stored = await store_history(database, store)
    async with database.session() as session:
        plan = await plan_pass(session, SETTINGS, now=NOW, key_for=store.key_for)
    ancient = stored.runs["ancient"]
    assert stored.keys_of("ancient") <= {d.key for d in plan.objects}

    if change == "hold":
        await hold_run(database, run_id=ancient, reason="late audit", actor="ops")
    else:  # an operator's retry or a resumed backfill moves it back to RUNNING meanwhile
        async with database.session() as session:
            await session.execute(update(Run).where(Run.id == ancient).values(state="RUNNING"))
            await session.commit()
    await delete_planned(database, store, plan, SETTINGS, now=NOW, tally=Tally())

    left = await present(store, list(stored.objects))
    assert stored.keys_of("ancient") <= left
    assert not stored.keys_of("raw-expired", "raw_objects") & left
    assert await consistent(database, store, list(stored.objects)) == []
    async with database.session() as session:
        assert await session.get(Run, ancient) is not None
