"""`marketsense backfill`: a range of days through every service as one run, on the embedded
default, with one line for bad input; the same command again finds its run; and a command
killed mid-way, run again, finishes with one prediction per (symbol, session)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.cli.backfill import (
    BackfillRefused,
    backfill_command,
    parse_day,
    parse_symbols,
    release_orphaned_tasks,
    summary,
)
from marketsense.cli.defaults import holdout_set_path
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Run, Task
from marketsense.common.states import RunState, Stage, TaskState
from tests.cli_support import invoke, one_error_line

START, END = dt.date(2026, 10, 22), dt.date(2026, 11, 20)
"""22 XNYS sessions, Thursday to Friday."""
SYMBOLS = ["AAPL", "MSFT", "NVDA"]


@pytest.fixture
def home(tmp_path: Path, sentiment_model_dir: Path, predictor_dir: Path) -> Path:
    """An embedded home whose models are already built (building them is bootstrap's to test)."""
    home = tmp_path / "backfill-home"
    shutil.copytree(sentiment_model_dir, home / "models" / "sentiment")
    shutil.copytree(predictor_dir, home / "models" / "baseline-predictor")
    # The holdout rows the bootstrap adds as the predictor evaluation set before its push.
    shutil.copy(
        holdout_set_path(predictor_dir), holdout_set_path(home / "models" / "baseline-predictor")
    )
    return home


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger back as it was: the command configures logging for the process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_days_and_symbols_are_read_or_refused_naming_the_option() -> None:
    assert parse_day("2026-10-22", option="--from") == START
    assert parse_symbols(" aapl, MSFT ,,") == ["AAPL", "MSFT"]
    with pytest.raises(BackfillRefused, match="--to '22/10/2026' is not a day"):
        parse_day("22/10/2026", option="--to")
    with pytest.raises(BackfillRefused, match="--symbols names no symbol"):
        parse_symbols(" , ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "2026-13-01", "--to", "2026-11-20"], "--from '2026-13-01' is not a day"),
        (["--from", "2026-10-22", "--to", "2026-11-20", "--symbols", ","], "names no symbol"),
        (["--from", "2026-11-20", "--to", "2026-10-22"], "--from 2026-11-20 is after --to"),
        (["--from", "2026-11-20", "--to", "2099-01-02"], "--to 2099-01-02 is in the future"),
    ],
)
def test_bad_input_is_one_error_line(args: list[str], expected: str, tmp_path: Path) -> None:
    if "--symbols" not in args:
        args = [*args, "--symbols", "AAPL"]
    result = invoke("backfill", *args, "--home", str(tmp_path))

    assert expected in one_error_line(result)
    assert not (tmp_path / "marketsense.db").exists()


def test_a_range_the_orchestrator_refuses_ends_with_its_reason(home: Path) -> None:
    # Thanksgiving alone: no session to backfill.
    result = invoke(
        "backfill", "--from", "2026-11-26", "--to", "2026-11-26", "--symbols", "AAPL",
        "--home", str(home),
    )  # fmt: skip

    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 422")
    assert "no XNYS trading session" in last


def test_an_unreachable_orchestrator_is_one_error_line() -> None:
    result = invoke(
        "backfill", "--from", "2026-10-22", "--to", "2026-11-20", "--symbols", "AAPL",
        "--api", "http://127.0.0.1:9",
    )  # fmt: skip

    assert "cannot reach the orchestrator" in one_error_line(result)


def test_summary_names_run_range_state_and_predictions() -> None:
    backfill = {
        "run": {"id": "r1", "start": "2026-10-22", "as_of": "2026-11-20", "state": "SUCCESS",
                "symbols": 3},
        "sessions": 22,
        "predictions": 66,
    }  # fmt: skip

    assert summary(backfill) == (
        "backfill r1 2026-10-22 to 2026-11-20: SUCCESS, 66 predictions written "
        "(3 symbols x 22 sessions)"
    )


async def _database(home: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{home / 'marketsense.db'}")
    await upgrade(database)
    return database


async def test_orphaned_tasks_of_a_live_backfill_are_released_and_others_left(
    tmp_path: Path,
) -> None:
    database = await _database(tmp_path)
    try:
        async with database.session() as session:
            for run_id, kind, state in (
                ("b-live", "backfill", RunState.RUNNING),
                ("daily", "daily", RunState.RUNNING),
            ):
                session.add(Run(id=run_id, as_of=END, state=state, symbols=1, kind=kind))
                await session.flush()
                for stage, task_state in zip(
                    Stage, (TaskState.SUCCESS, TaskState.RUNNING, TaskState.PENDING), strict=True
                ):
                    session.add(Task(run_id=run_id, symbol="AAPL", stage=stage, state=task_state))
            await session.commit()

        assert await release_orphaned_tasks(database) == 1

        async with database.session() as session:
            states = {(t.run_id, t.stage): t.state for t in await session.scalars(select(Task))}
        assert states[("b-live", "process")] == TaskState.PENDING
        assert states[("daily", "process")] == TaskState.RUNNING
    finally:
        await database.dispose()


async def test_backfill_runs_the_range_and_the_same_command_finds_its_run(home: Path) -> None:
    first = await backfill_command(
        start=START.isoformat(), end=END.isoformat(), symbols=",".join(SYMBOLS), api=None,
        api_key=None, home=home,
    )  # fmt: skip
    again = await backfill_command(
        start=START.isoformat(), end=END.isoformat(), symbols="NVDA,AAPL,MSFT", api=None,
        api_key=None, home=home,
    )  # fmt: skip

    assert (first, again) == (0, 0)
    database = await _database(home)
    try:
        async with database.session() as session:
            runs = list(await session.scalars(select(Run)))
    finally:
        await database.dispose()
    assert len(runs) == 1


def _count(db: Path, sql: str) -> int:
    """One number from the embedded database, read while the command writes it."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as db_:
        try:
            return int(db_.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # the tables are not there yet
            return 0


def _backfill(home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "marketsense"), "backfill",
            "--from", START.isoformat(), "--to", END.isoformat(), "--symbols", ",".join(SYMBOLS),
            "--home", str(home),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MARKETSENSE_HANDLER_MAX_ATTEMPTS": "5"},
    )  # fmt: skip


def test_a_backfill_killed_mid_way_finishes_when_run_again_without_duplicates(
    home: Path,
) -> None:
    seed = random.randrange(2**32)
    total = len(SYMBOLS) * len(Stage)
    kill_after = random.Random(seed).randrange(1, total - 1)
    print(f"seed {seed}: SIGKILL after {kill_after} of {total} tasks done")
    db = home / "marketsense.db"
    done = "SELECT count(*) FROM tasks WHERE state = 'SUCCESS'"

    killed = _backfill(home)
    try:
        while _count(db, done) < kill_after:
            with contextlib.suppress(subprocess.TimeoutExpired):
                killed.wait(timeout=0.02)
                break
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, f"seed {seed}: it ended before the kill"

    resumed = _backfill(home)
    out, errors = resumed.communicate(timeout=600)

    assert resumed.returncode == 0, f"seed {seed}: {out}{errors}"
    sessions = exchange_calendar().sessions(START, END)
    expected = len(SYMBOLS) * len(sessions)
    assert re.search(rf"SUCCESS, {expected} predictions written", out), out
    assert _count(db, "SELECT count(*) FROM runs") == 1
    assert _count(db, "SELECT count(*) FROM predictions") == expected
    distinct = "SELECT count(*) FROM (SELECT DISTINCT symbol, as_of FROM predictions)"
    assert _count(db, distinct) == expected
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        days = [day for (day,) in connection.execute("SELECT DISTINCT as_of FROM predictions")]
    assert sorted(days) == [day.isoformat() for day in sessions]
