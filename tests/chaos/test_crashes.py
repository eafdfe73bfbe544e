"""The issue's crashes: PostgreSQL and Kafka SIGKILLed at a random moment of a run, with
durability on, then started again. Nothing may be dead-lettered, nobody paged, no symbol
predicted twice, and the pipeline must move again within seconds of the server's return."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DeadLetter, Prediction, Run, Task
from marketsense.common.events import TaskFailed
from tests.chaos.conftest import CHAOS_SEED, SYMBOL_COUNT, start_deployment
from tests.chaos.deployment import LIVE_STATES, Deployment, infra_script, read_topic, wait_run
from tests.chaos.test_faults import STAGE_TOPICS, SYMBOLS, audit, day, report
from tests.conftest import infra

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    # A run of 1,000 symbols takes about a minute; a stuck one is waited for a few more.
    pytest.mark.timeout(600 + SYMBOL_COUNT // 2),
]

STALL_LIMIT = 10.0
"""Seconds within which the pipeline must move again once the crashed server is back."""

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
"""Settings of a production server: a commit it acknowledged survives its crash."""


async def _set_durability(durable: bool) -> dict[str, str]:
    """Turn the test server's durability on (or back to its configured off), reload, and
    return the settings a new session sees. All three take effect without a restart."""
    admin = await asyncpg.connect(f"{infra('MARKETSENSE_TEST_PG_DSN')}/postgres")
    try:
        for name, value in DURABLE.items():
            # ALTER SYSTEM takes no bind parameters; the names and values are ours.
            await admin.execute(
                f"ALTER SYSTEM SET {name} = '{value}'" if durable else f"ALTER SYSTEM RESET {name}"
            )
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()
    await asyncio.sleep(0.5)  # the reload signal reaches the backends asynchronously
    check = await asyncpg.connect(f"{infra('MARKETSENSE_TEST_PG_DSN')}/postgres")
    try:
        return {name: await check.fetchval(f"SHOW {name}") for name in DURABLE}
    finally:
        await check.close()


@pytest.fixture(scope="module", autouse=True)
async def durable_postgres() -> AsyncIterator[None]:
    """Durability on for this module's crashes, as in production; back to the test server's
    speed after (a crash with `synchronous_commit` off loses commits it acknowledged)."""
    assert await _set_durability(True) == DURABLE
    try:
        yield
    finally:
        await asyncio.to_thread(infra_script, "postgres", "start")
        await _set_durability(False)


@pytest.fixture(scope="module")
async def deployment(
    chaos_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    predictor_dir: Path,
    sentiment_model_dir: Path,
    make_httpserver: HTTPServer,
) -> AsyncIterator[Deployment]:
    """One deployment for the module's crashes, each test's run on its own day: starting the
    four services takes longer than most of the crashes (40 s on a busy 2-core machine)."""
    database = Database(chaos_database_url)
    deployment = await start_deployment(
        database_url=chaos_database_url,
        database=database,
        logs_dir=tmp_path_factory.mktemp("crashes"),
        prefix=f"t{uuid.uuid4().hex[:10]}.",
        predictor_dir=predictor_dir,
        sentiment_model_dir=sentiment_model_dir,
        common_env={"MARKETSENSE_ALERT_WEBHOOK_URL": make_httpserver.url_for("/alerts")},
    )
    try:
        yield deployment
    finally:
        deployment.stop_all()
        await database.dispose()


@pytest.fixture(autouse=True)
def servers_back() -> Iterator[None]:
    """Whatever happens in a test, Kafka and PostgreSQL run again after it."""
    try:
        yield
    finally:
        infra_script("kafka", "start")
        infra_script("postgres", "start")


def _tasks_done(run: dict[str, Any]) -> int:
    """Tasks of every stage that succeeded so far."""
    return sum(int(entry["counts"].get("SUCCESS", 0)) for entry in run["stages"])


async def _first_move_after(
    database: Database,
    run_id: str,
    since: dt.datetime,
    *,
    timeout: float = 120,  # noqa: ASYNC109 - a deadline that ends the wait, not a cancellation
) -> dt.datetime | None:
    """When the run first moved at or after `since`: a task changed state, a prediction was
    stored, or the run ended; None if nothing moved before the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with database.engine.connect() as conn:
                moves = [
                    await conn.scalar(
                        select(func.min(column)).where(where == run_id, column >= since)
                    )
                    for column, where in (
                        (Task.updated_at, Task.run_id),
                        (Prediction.created_at, Prediction.run_id),
                        (Run.finished_at, Run.id),
                    )
                ]
        except (OSError, SQLAlchemyError):  # the server is still coming back
            moves = []
        if found := [m for m in moves if m is not None]:
            return min(found)
        await asyncio.sleep(0.1)
    return None


async def _dead_letters(deployment: Deployment, run_id: str) -> dict[str, int]:
    """The run's dead letters: rows the orchestrator indexed, records on the `.dlq` topics."""
    async with deployment.database.engine.connect() as conn:
        rows = await conn.scalar(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.run_id == run_id)
        )
    prefix = deployment.env["MARKETSENSE_TOPIC_PREFIX"]
    records = 0
    for topic in (*STAGE_TOPICS, TaskFailed.topic):
        found = await read_topic(
            infra("MARKETSENSE_TEST_KAFKA"), f"{prefix}{topic}.dlq", run_id=run_id
        )
        records += found.total
    return {"dead_letter_rows": int(rows or 0), "dead_letter_records": records}


def _alerts(httpserver: HTTPServer, run_id: str) -> dict[str, list[str]]:
    """Alerts sent so far, by key: about the run's work (false after a crash the run survives)
    or about a dependency (the one outage alert the issue allows)."""
    keys = [json.loads(request.get_data())["key"] for request, _ in httpserver.log]
    about_work = ("dead-letter:", "run-ended:", "stuck-run:")
    false = [k for k in keys if k.startswith(about_work) or run_id in k]
    return {"false_alerts": false, "outage_alerts": [k for k in keys if k not in false]}


async def _crash_run(
    deployment: Deployment,
    httpserver: HTTPServer,
    *,
    as_of: dt.date,
    scenario: str,
    server: str,
    outage: float,
) -> None:
    """SIGKILL `server` after a random number of tasks done (from the printed seed), start it
    again `outage` seconds later, and check the run ends as if nothing had happened."""
    total = 3 * len(SYMBOLS)
    at = random.Random(f"{CHAOS_SEED}:{scenario}").randint(total // 20, total * 9 // 10)
    print(f"{scenario}: seed {CHAOS_SEED} (MARKETSENSE_CHAOS_SEED), crash after {at}/{total} tasks")
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    async with httpx.AsyncClient(timeout=10) as client:
        await deployment.wait_ready(client)
        started = time.monotonic()
        run_id = await deployment.start_run(client, as_of=as_of, symbols=SYMBOLS)
        crash = await wait_run(deployment, client, run_id, until=lambda r: _tasks_done(r) >= at)
        crashed = time.monotonic()
        await asyncio.to_thread(infra_script, server, "kill")
        await asyncio.sleep(outage)  # the outage itself, not a wait for something to happen
        restarting = time.monotonic()
        await asyncio.to_thread(infra_script, server, "start")
        back, back_wall = time.monotonic(), dt.datetime.now(dt.UTC)
        await deployment.database.engine.dispose()  # its pooled connections died with the server
        moved = await _first_move_after(deployment.database, run_id, back_wall)
        run = await _run_when_ended(deployment, client, run_id, timeout=120 + len(SYMBOLS) / 5)
        ended = time.monotonic()
        await asyncio.sleep(3)  # dead letters and alerts follow the work by a moment
        figures = {
            "seed": CHAOS_SEED,
            "crash_after_tasks": _tasks_done(crash),
            "run_state": run["state"],
            "stall_after_return_seconds": (
                None if moved is None else round(max((moved - back_wall).total_seconds(), 0), 1)
            ),
            **await _dead_letters(deployment, run_id),
            **_alerts(httpserver, run_id),
            "predictions": await _prediction_rows(deployment.database, run_id),
            "outage_seconds": round(back - crashed, 1),
            "restart_seconds": round(back - restarting, 1),
            "fault_to_end_seconds": round(ended - crashed, 1),
            "wall_seconds": round(ended - started, 1),
        }
        report(scenario, figures)
        said = json.dumps(figures)  # in full: pytest shortens a dict in an assertion message
        assert figures["stall_after_return_seconds"] is not None, f"nothing moved: {said}"
        assert figures["stall_after_return_seconds"] <= STALL_LIMIT, said
        assert figures["dead_letter_rows"] == figures["dead_letter_records"] == 0, said
        assert figures["false_alerts"] == [], said
        assert run["state"] == "SUCCESS", f"{said}\n{str(run)[:2000]}"
        assert figures["predictions"] == len(SYMBOLS), said
        await audit(deployment, run_id)


async def _run_when_ended(
    deployment: Deployment,
    client: httpx.AsyncClient,
    run_id: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline that ends the wait, not a cancellation
) -> dict[str, Any]:
    """The run once it has ended, or as it stands after `timeout` (still RUNNING: stuck)."""
    try:
        return await wait_run(deployment, client, run_id, timeout=timeout)
    except AssertionError:
        run = await wait_run(deployment, client, run_id, until=lambda r: True, timeout=30)
        assert run["state"] in LIVE_STATES
        return run


async def _prediction_rows(database: Database, run_id: str) -> int:
    """The run's prediction rows (one per symbol when nothing was predicted twice)."""
    async with database.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)
        )
    return int(count or 0)


async def test_postgres_sigkilled_for_five_seconds_mid_run_costs_nothing(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    await _crash_run(
        deployment,
        httpserver,
        as_of=day(1),
        scenario="postgres-sigkill-5s",
        server="postgres",
        outage=5,
    )


async def test_postgres_sigkilled_for_sixty_seconds_mid_run_costs_nothing(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    await _crash_run(
        deployment,
        httpserver,
        as_of=day(2),
        scenario="postgres-sigkill-60s",
        server="postgres",
        outage=60,
    )


async def test_kafka_sigkilled_for_ten_seconds_mid_run_costs_nothing(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    await _crash_run(
        deployment,
        httpserver,
        as_of=day(3),
        scenario="kafka-sigkill-10s",
        server="kafka",
        outage=10,
    )
