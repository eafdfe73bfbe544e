"""The recording store a dry stage run writes to, and the transaction it is rolled back in."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from marketsense.cli.stage_sandbox import RecordingStore, rolled_back_session
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Run
from marketsense.common.store.base import sha256_hex
from marketsense.common.store.local import FileStore
from tests.conftest import TEST_AS_OF


async def test_a_dry_write_is_compared_and_recorded_but_never_made(tmp_path: Path) -> None:
    inner = FileStore((tmp_path / "objects").as_uri())
    await inner.start()
    await inner.put("features/a.parquet", b"stored bytes")
    dry = RecordingStore(inner, write=False)

    ref = await dry.put("features/a.parquet", b"other bytes")
    await dry.put("features/b.parquet", b"fresh")
    await dry.put("features/a.parquet", b"stored bytes")
    await dry.delete("features/a.parquet")

    assert ref.sha256 == sha256_hex(b"other bytes")
    assert [(w.key, w.stored) for w in dry.writes] == [
        ("features/a.parquet", "differs"),
        ("features/b.parquet", "new"),
        ("features/a.parquet", "same"),
    ]
    assert await inner.read_key("features/a.parquet") == b"stored bytes"
    assert not await inner.exists("features/b.parquet")
    # Reads go through, checksum verified, and are recorded.
    kept = await inner.put("raw/x.parquet", b"1")
    assert await dry.get(kept) == b"1"
    assert [(r.key, r.size) for r in dry.reads][-1] == ("raw/x.parquet", 1)


async def test_a_written_put_goes_through(tmp_path: Path) -> None:
    inner = FileStore((tmp_path / "objects").as_uri())
    await inner.start()
    store = RecordingStore(inner, write=True)

    await store.put("raw/bars.parquet", b"bars")

    assert await inner.read_key("raw/bars.parquet") == b"bars"
    assert [(w.key, w.stored) for w in store.writes] == [("raw/bars.parquet", "new")]


async def test_what_is_committed_inside_the_sandbox_is_rolled_back(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await upgrade(database)
    try:
        async with rolled_back_session(database) as session:
            session.add(Run(id="r1", as_of=TEST_AS_OF, state="RUNNING", symbols=1))
            await session.commit()
            assert await session.scalar(select(func.count()).select_from(Run)) == 1
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(Run)) == 0
    finally:
        await database.dispose()
