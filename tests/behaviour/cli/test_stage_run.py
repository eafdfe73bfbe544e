"""One stage of one symbol run alone, after a run of the whole pipeline: a dry run changes no
row, object or event; a written run produces what the service produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from marketsense.cli.embedded import PipelineSettings, build_pipeline_app
from marketsense.cli.inspect_commands import inspect
from marketsense.cli.stage_run import StageRefused, StageSettings, run_stage
from marketsense.common.auth import Role
from marketsense.common.db.base import Base
from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Task
from marketsense.common.states import Stage, TaskState
from marketsense.common.store import store_from_settings
from marketsense.common.store.base import ObjectStore, sha256_hex
from tests.backends import real_servers
from tests.conftest import INTEGRATION, TEST_AS_OF, eventually
from tests.model_registry_rows import new_api_key

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def values(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> dict[str, Any]:
    """Settings of the embedded default (SQLite, folder, in-process bus) or the real servers."""
    found: dict[str, Any] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        "predictor_path": predictor_dir,
        "sentiment_model_path": sentiment_model_dir,
    }
    if request.param == "real":
        found |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return found


async def _run_pipeline(settings: PipelineSettings) -> str:
    """One daily run of SYMBOLS through every service; its id once it ended."""
    app = build_pipeline_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        api.headers["X-API-Key"] = await new_api_key(
            app.state.runtime.database, role=Role.PUBLISHER
        )
        body = {"as_of": TEST_AS_OF.isoformat(), "symbols": SYMBOLS}
        run_id: str = (await api.post("/v1/runs", json=body)).json()["id"]

        async def ended() -> bool:
            state: str = (await api.get(f"/v1/runs/{run_id}")).json()["state"]
            return state == "SUCCESS"

        await eventually(ended, timeout=90, interval=0.1)
    return run_id


async def _footprint(database: Database) -> dict[str, Any]:
    """Row counts of every table, and every task's state, attempts and notes."""
    async with database.session() as session:
        counts = {
            table.name: await session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        tasks = (
            await session.execute(
                select(Task.run_id, Task.symbol, Task.stage, Task.state, Task.attempts, Task.notes)
            )
        ).all()
    return {"counts": counts, "tasks": sorted(tuple(t) for t in tasks)}


async def _features(database: Database, run_id: str, symbol: str) -> tuple[str, str, int] | None:
    async with database.session() as session:
        row = await session.scalar(
            select(FeatureSet).where(FeatureSet.run_id == run_id, FeatureSet.symbol == symbol)
        )
    return None if row is None else (row.uri, row.sha256, row.size)


async def _as_if_never_processed(
    database: Database, store: ObjectStore, *, run_id: str, symbol: str
) -> None:
    """Take processing's output for the symbol away and put its task back to PENDING."""
    served = await _features(database, run_id, symbol)
    assert served is not None
    await store.delete(store.key_for(served[0]))
    async with database.session() as session:
        await session.execute(
            delete(FeatureSet).where(FeatureSet.run_id == run_id, FeatureSet.symbol == symbol)
        )
        await session.execute(
            update(Task)
            .where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == Stage.PROCESS)
            .values(state=TaskState.PENDING)
        )
        await session.commit()


async def _dry_predict_and_inspect(
    settings: StageSettings,
    database: Database,
    store: ObjectStore,
    *,
    run_id: str,
    served: tuple[str, str, int],
) -> None:
    """A dry prediction leaves every row as it was; inspect finds CCC's objects intact, then the
    feature file overwritten behind the database's back."""
    key = store.key_for(served[0])
    # A dry prediction scores the features the run recorded, and leaves the rows as they were.
    before = await _footprint(database)
    dry = await run_stage(settings, stage=Stage.PREDICT, run_id=run_id, symbol="AAA", write=False)
    assert dry.error is None, dry.error
    assert [read.key for read in dry.reads] == [f"features/{TEST_AS_OF}/{run_id}/AAA.parquet"]
    assert [(e.topic, e.key) for e in dry.events] == [("predictions.ready", "AAA")]
    assert [c.after for c in dry.rows if c.table == "predictions"] == [1]
    assert await _footprint(database) == before

    # Inspect reads every object back; one overwritten behind the database's back shows.
    seen = await inspect(settings, run_id=run_id, symbol="CCC")
    assert [(t.stage, t.state) for t in seen.tasks] == [
        (stage, TaskState.SUCCESS) for stage in Stage
    ]
    assert [o.check for o in seen.objects] == ["checksum ok"] * 3
    await store.put(key, b"not the features")
    seen = await inspect(settings, run_id=run_id, symbol="CCC")
    assert [o.uri for o in seen.damaged] == [served[0]]
    assert seen.damaged[0].check.startswith("checksum mismatch")


async def test_a_dry_stage_changes_nothing_and_a_written_one_equals_the_service(
    values: dict[str, Any],
) -> None:
    run_id = await _run_pipeline(PipelineSettings(**values))
    settings = StageSettings(**values)
    database, store = Database(settings.resolved_database_url()), store_from_settings(settings)
    try:
        served = await _features(database, run_id, "CCC")
        assert served is not None
        key = store.key_for(served[0])
        served_bytes = await store.read_key(key)
        untouched = await _footprint(database)

        # A dry re-run of a stage that succeeded reads the raw objects the run recorded and
        # would write the very file the service wrote, byte for byte.
        dry = await run_stage(
            settings, stage=Stage.PROCESS, run_id=run_id, symbol="CCC", write=False
        )
        assert dry.error is None, dry.error
        assert {read.key for read in dry.reads} == {
            f"raw/{TEST_AS_OF}/{run_id}/CCC/bars.parquet",
            f"raw/{TEST_AS_OF}/{run_id}/CCC/texts.parquet",
        }
        assert [(w.key, w.sha256, w.stored) for w in dry.writes] == [(key, served[1], "same")]
        assert [(e.topic, e.key) for e in dry.events] == [("features.ready", "CCC")]
        assert dry.task_before == TaskState.SUCCESS
        assert dry.task_after == TaskState.SUCCESS
        assert await _footprint(database) == untouched
        assert await store.read_key(key) == served_bytes

        await _as_if_never_processed(database, store, run_id=run_id, symbol="CCC")
        emptied = await _footprint(database)
        dry = await run_stage(
            settings, stage=Stage.PROCESS, run_id=run_id, symbol="CCC", write=False
        )
        assert [(w.key, w.stored) for w in dry.writes] == [(key, "new")]
        assert [(c.table, c.before, c.inserted) for c in dry.rows if c.table == "features"] == [
            ("features", 0, 1)
        ]
        assert await _footprint(database) == emptied
        assert not await store.exists(key)

        written = await run_stage(
            settings, stage=Stage.PROCESS, run_id=run_id, symbol="CCC", write=True
        )
        assert written.error is None, written.error
        assert await _features(database, run_id, "CCC") == served
        assert sha256_hex(await store.read_key(key)) == served[1]
        assert written.task_after == TaskState.SUCCESS
        assert [(e.topic, e.type) for e in written.events] == [("features.ready", "features.ready")]
        after = await _footprint(database)
        assert after["counts"]["outbox"] == emptied["counts"]["outbox"] + 1

        with pytest.raises(StageRefused, match="nothing to do"):
            await run_stage(settings, stage=Stage.PROCESS, run_id=run_id, symbol="CCC", write=True)

        await _dry_predict_and_inspect(settings, database, store, run_id=run_id, served=served)
    finally:
        await store.close()
        await database.dispose()
