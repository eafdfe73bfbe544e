"""Fixtures shared by every test: backends (embedded and real), per-test isolation."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

import marketsense.common.app
import marketsense.common.runtime
from marketsense.common.bus import EventBus, InProcessBus
from marketsense.common.bus.kafka import KafkaBus
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Base
from marketsense.common.store import FileStore, ObjectStore
from marketsense.common.store.s3 import S3Store

INTEGRATION = pytest.mark.integration

TEST_AS_OF = dt.date(2026, 11, 20)
"""The trading day pipeline tests run for."""


def infra(name: str) -> str:
    """Address of a real server the test command started; fail loudly if it is not there."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests through scripts/test.sh, which starts it")
    return value


class _YoungCollections:
    """The `gc` an app's start-up sees in this process: its full collection before freezing
    collects the young generations only."""

    freeze = staticmethod(gc.freeze)
    unfreeze = staticmethod(gc.unfreeze)

    @staticmethod
    def collect() -> int:
        """Collect the two young generations."""
        return gc.collect(1)


@pytest.fixture(scope="session", autouse=True)
def young_collections_at_app_start() -> Iterator[None]:
    """A service process starts its app once, and a full collection then costs it little; this
    process starts hundreds while it holds every library the tests import, and a full collection
    of that heap took 0.5 s of each start. Start-up garbage is mostly young, so collecting the
    young generations still keeps it out of what the app freezes (and the app unfreezes it all
    when it stops, so nothing a test leaves behind escapes the collector for good)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marketsense.common.app, "gc", _YoungCollections)
        yield


@pytest.fixture
def prefix() -> str:
    """A topic and group prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(params=["memory", pytest.param("kafka", marks=INTEGRATION)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    """Which bus implementation a behavioural test runs on."""
    return str(request.param)


@pytest.fixture
async def make_bus(bus_kind: str, prefix: str) -> AsyncIterator[Callable[..., EventBus]]:
    """Build buses of the current kind sharing one topic prefix; stops them after the test."""
    made: list[EventBus] = []
    shared_memory: list[InProcessBus] = []

    def build(*, max_attempts: int = 3, retry_base: float = 0.01) -> EventBus:
        bus: EventBus
        if bus_kind == "kafka":
            bus = KafkaBus(
                bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"),
                topic_prefix=prefix,
                max_attempts=max_attempts,
                retry_base=retry_base,
            )
        else:
            # In-process buses only see each other when they are the same object.
            if shared_memory:
                first = shared_memory[0]
                if (first.max_attempts, first.retry_base) != (max_attempts, retry_base):
                    raise ValueError("in-process buses of one test share one retry policy")
                return first
            bus = InProcessBus(
                topic_prefix=prefix, max_attempts=max_attempts, retry_base=retry_base
            )
            shared_memory.append(bus)
        made.append(bus)
        return bus

    yield build
    for bus in made:
        await bus.stop()


@pytest.fixture(params=["file", pytest.param("s3", marks=INTEGRATION)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """An empty object store of each kind."""
    instance: ObjectStore
    if request.param == "s3":
        instance = S3Store(
            f"s3://marketsense-test/{uuid.uuid4().hex[:10]}",
            endpoint_url=infra("MARKETSENSE_TEST_S3_ENDPOINT"),
            access_key_id="test",
            secret_access_key="test",
        )
    else:
        instance = FileStore((tmp_path / "objects").as_uri())
    await instance.start()
    yield instance
    await instance.close()


@contextlib.asynccontextmanager
async def migrated_pg_database(dsn: str, *, prefix: str = "marketsense_test") -> AsyncIterator[str]:
    """A new database on the PostgreSQL server at `dsn`, at the newest migration, dropped
    afterwards (whoever still uses it is disconnected); yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{dsn}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{dsn.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    database = Database(url)
    await upgrade(database)
    await database.dispose()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(f"{dsn}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def pg_database_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (tables emptied per test by
    `database`)."""
    async with migrated_pg_database(infra("MARKETSENSE_TEST_PG_DSN")) as url:
        yield url


@pytest.fixture
async def fresh_pg_database_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test alone: for tests whose processes or runtimes
    keep state (live runs, registered models) that must not meet another test's."""
    async with migrated_pg_database(infra("MARKETSENSE_TEST_PG_DSN")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=INTEGRATION)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database URL of each kind, emptied before the test."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_database_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


async def _migrate_and_empty(database: Database) -> None:
    """Bring a database to the newest migration and delete every row."""
    await upgrade(database)
    async with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated and emptied once per session: a test's copy of the file is
    what migrating a new one gives, without the 50 ms of CPU it took per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    template = Database(f"sqlite+aiosqlite:///{path}")
    await _migrate_and_empty(template)
    # Disposed, the last connection checkpoints the write-ahead log into the file itself.
    await template.dispose()
    return path


def _copied_template(template: Path, database_url: str) -> bool:
    """Copy the migrated template to a SQLite URL's file not yet there; whether it did."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return False
    path = Path(url.database)
    if not path.is_absolute() or path.exists() or not path.parent.is_dir():
        return False
    shutil.copyfile(template, path)
    return True


@pytest.fixture(scope="session", autouse=True)
def embedded_databases_from_the_template(sqlite_template: Path) -> Iterator[None]:
    """An app on the embedded default migrates its new SQLite file as it starts: hundreds of
    tests start one, and migrating each took a tenth of a second of CPU and several fsyncs.
    A new file here starts as a copy of the template, so the start's migration finds it at the
    newest revision (`test_runtime` starts one unseeded, to show that a start migrates)."""

    async def upgrade_from_template(database: Database, revision: str = "head") -> None:
        _copied_template(sqlite_template, database.url)
        await upgrade(database, revision)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marketsense.common.runtime, "upgrade", upgrade_from_template)
        yield


@pytest.fixture
async def database(database_url: str, sqlite_template: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of each kind."""
    db = Database(database_url)
    if not _copied_template(sqlite_template, database_url):
        await _migrate_and_empty(db)
    yield db
    await db.dispose()


async def eventually(
    check: Callable[[], object],
    *,
    timeout: float = 30,  # noqa: ASYNC109 - a deadline that fails the test, not a cancellation
    interval: float = 0.05,
) -> None:
    """Wait until `check()` is truthy (awaiting it if needed), or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def build_sentiment_model(directory: Path) -> Path:
    """The default sentiment model, built from the packaged weights into `directory`."""
    from marketsense.modelkit.sentiment_build import build_default_sentiment_model
    from tests.artifacts import list_manifest_files

    directory.mkdir(parents=True, exist_ok=True)
    build_default_sentiment_model(directory)
    return list_manifest_files(directory)


def build_predictor(directory: Path, sentiment_model: Path) -> Path:
    """A baseline predictor trained on simulated bars and texts scored by `sentiment_model`."""
    from rich.console import Console

    from marketsense.cli.training import build_baseline
    from marketsense.ingestion.sources.simulated import SimulatedMarket
    from marketsense.models.sentiment import SentimentModel
    from tests.artifacts import list_manifest_files

    directory.mkdir(parents=True, exist_ok=True)
    build_baseline(
        directory,
        as_of=TEST_AS_OF,
        symbols=8,
        market=SimulatedMarket(seed=7),
        sentiment=SentimentModel(sentiment_model, quantized=True, threads=2),
        console=Console(quiet=True),
    )
    return list_manifest_files(directory)


@pytest.fixture(scope="session")
def sentiment_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default sentiment model, built once per test session from the packaged weights."""
    return build_sentiment_model(tmp_path_factory.mktemp("sentiment"))


@pytest.fixture(scope="session")
def predictor_dir(tmp_path_factory: pytest.TempPathFactory, sentiment_model_dir: Path) -> Path:
    """A baseline predictor trained once per session on simulated bars and scored texts."""
    return build_predictor(tmp_path_factory.mktemp("predictor"), sentiment_model_dir)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the fault tests last: they stop and restart the Kafka and PostgreSQL servers that
    every other integration test shares, and no test after them should meet the aftermath."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/chaos/"))
