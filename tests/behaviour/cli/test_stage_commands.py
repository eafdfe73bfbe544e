"""`marketsense stage run` on the embedded default: clear refusals, and a dry ingest that names
what it would write and leaves the run as it was."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from marketsense.cli.stage_run import StageSettings
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import OutboxMessage, RawObject, Run, Task
from marketsense.common.states import RunState, Stage
from marketsense.orchestrator.tasks.service import add_tasks
from tests.cli_support import invoke, one_error_line
from tests.conftest import TEST_AS_OF

RUN_ID = "00000000-0000-4000-8000-000000000018"


def recorded_run(home: Path, symbols: list[str]) -> Database:
    """An embedded database under `home` holding one RUNNING run with PENDING tasks, as the
    orchestrator creates it."""
    database = Database(StageSettings(home=home).resolved_database_url())

    async def create() -> None:
        await upgrade(database)
        async with database.session() as session:
            session.add(
                Run(id=RUN_ID, as_of=TEST_AS_OF, state=RunState.RUNNING, symbols=len(symbols))
            )
            await session.flush()
            add_tasks(session, run_id=RUN_ID, symbols=symbols)
            await session.commit()
        await database.dispose()

    asyncio.run(create())
    return database


def stage_cli(home: Path, *args: str) -> tuple[int, str, str]:
    """`marketsense ARGS` with the embedded default under `home`: exit code, stdout, stderr."""
    result = invoke(*args, env={"MARKETSENSE_HOME": str(home), "COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def _counts(database: Database) -> tuple[int, int, list[str]]:
    async def read() -> tuple[int, int, list[str]]:
        async with database.session() as session:
            raw = await session.scalar(select(func.count()).select_from(RawObject))
            outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
            states = list(await session.scalars(select(Task.state).order_by(Task.id)))
        await database.dispose()
        return raw or 0, outbox or 0, states

    return asyncio.run(read())


def test_refusals_name_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    recorded_run(home, ["AAA", "BBB"])

    def refused(*args: str) -> str:
        result = invoke(*args, env={"MARKETSENSE_HOME": str(home), "COLUMNS": "250"})
        return one_error_line(result)

    assert "no run nope: `marketsense run list`" in refused(
        "stage", "run", "ingest", "--run-id", "nope", "--symbol", "AAA"
    )
    assert "has no symbol ZZZ; its symbols: AAA, BBB" in refused(
        "stage", "run", "ingest", "--run-id", RUN_ID, "--symbol", "zzz"
    )
    early = refused("stage", "run", "predict", "--run-id", RUN_ID, "--symbol", "AAA")
    assert "the process task of AAA" in early
    assert f"`marketsense stage run process --run-id {RUN_ID} --symbol AAA --write` first" in early


def test_a_dry_ingest_shows_what_it_would_write_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    database = recorded_run(home, ["AAA"])
    before = _counts(database)

    code, out, err = stage_cli(
        home, "stage", "run", "ingest", "--run-id", RUN_ID, "--symbol", "AAA"
    )

    assert code == 0, err
    assert "dry run: ingest of AAA" in out
    assert "task PENDING -> SUCCESS" in out
    for name in ("bars.parquet", "texts.parquet"):
        assert f"raw/{TEST_AS_OF}/{RUN_ID}/AAA/{name} sha256 " in out
    assert out.count("new against the stored object") == 2
    assert "raw_objects: 0 -> 2, 2 inserted" in out
    assert "raw.ready on raw.ready, key AAA" in out
    assert "nothing was written or sent" in out
    assert _counts(database) == before
    assert not (home / "objects" / "raw").exists()
    assert before[2] == ["PENDING"] * len(Stage)


def test_a_written_stage_that_fails_fails_its_task_as_the_service_would(tmp_path: Path) -> None:
    home = tmp_path / "home"
    database = recorded_run(home, ["AAA"])

    result = invoke(
        *("stage", "run", "ingest", "--run-id", RUN_ID, "--symbol", "AAA", "--write"),
        env={"MARKETSENSE_HOME": str(home), "MARKETSENSE_FAIL_SYMBOLS": "AAA"},
    )

    assert "the ingest stage failed: " in one_error_line(result)
    assert "written: ingest of AAA" in result.stdout
    assert "task PENDING -> FAILED" in result.stdout
    assert "task.failed on task.failed, key AAA" in result.stdout
    raw, outbox, states = _counts(database)
    assert (raw, outbox, states) == (0, 1, ["FAILED", "PENDING", "PENDING"])
