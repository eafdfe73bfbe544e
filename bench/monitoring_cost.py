"""What monitoring adds to a daily run: two consecutive daily runs of N symbols with every service
deployed as its own process, and the CPU seconds each process spent on the second run (whose bars
resolve the first run's predictions) until monitoring has stored that day's figures.

Monitoring's share covers resolving the outcomes, the daily figures, every window, the decay
policy and drift; the run's cost is every other process (services and servers) over the same
time. Needs the servers of `infra/up.sh` and their variables:

    . infra/env.sh && PYTHONPATH=. uv run python bench/pipeline_scaling.py --monitoring --sizes 1000
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from tests.chaos.deployment import PIPELINE, Deployment, service_environment, wait_run
from tests.conftest import TEST_AS_OF
from tests.model_registry_rows import new_api_key

from marketsense.common.auth import Role
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Outcome, PerformanceDay
from process_cpu import tree_cpu_seconds

SETTLED_SECONDS = 2.0
"""Monitoring counts as done once its CPU time has not moved for this long."""


async def monitoring_done(database: Database, *, run_id: str, day: Any, size: int) -> bool:
    """Whether the run resolved every symbol's outcome and the day's figures are stored."""
    async with database.session() as session:
        resolved = await session.scalar(
            select(func.count()).select_from(Outcome).where(Outcome.resolved_by_run == run_id)
        )
        figures = await session.scalar(
            select(func.count()).select_from(PerformanceDay).where(PerformanceDay.day == day)
        )
    return (resolved or 0) >= size and (figures or 0) > 0


async def wait_monitoring(database: Database, *, run_id: str, day: dt.date, size: int) -> None:
    """Poll the database until monitoring has judged the run's day."""
    while not await monitoring_done(database, run_id=run_id, day=day, size=size):  # noqa: ASYNC110 - polls another process's writes
        await asyncio.sleep(0.5)


async def settle(pid: int) -> None:
    """Wait until a process's CPU time stops growing."""
    last = tree_cpu_seconds(pid)
    while True:
        await asyncio.sleep(SETTLED_SECONDS)
        now = tree_cpu_seconds(pid)
        if now - last < 0.05:
            return
        last = now


async def monitoring_cost(
    size: int,
    *,
    database_url: str,
    database: Database,
    models: tuple[Path, Path],
    workdir: Path,
    server_pids: dict[str, int],
) -> dict[str, Any]:
    """Deploy every service with monitoring, run two consecutive days, measure the second."""
    sentiment, predictor = models
    logs = workdir / f"logs-monitoring-{size}"
    logs.mkdir()
    env = service_environment(
        database_url=database_url,
        prefix=f"benchm{uuid.uuid4().hex[:8]}.",
        predictor_dir=predictor,
        sentiment_model_dir=sentiment,
        home=workdir / "home",
    ) | {"MARKETSENSE_LOG_LEVEL": "WARNING"}
    key = await new_api_key(database, role=Role.PUBLISHER)
    deployment = Deployment(env=env, logs_dir=logs, database=database, api_key=key)
    for name in (*PIPELINE, "monitoring"):
        deployment.start(name)
    calendar = exchange_calendar()
    second = calendar.previous_session(TEST_AS_OF - dt.timedelta(days=30))
    first = calendar.previous_session(second)
    symbols = [f"M{i:05d}" for i in range(size)]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await deployment.wait_ready(client)
            first_run = await deployment.start_run(client, as_of=first, symbols=symbols)
            await wait_run(deployment, client, first_run, timeout=3600)
            await settle(deployment.processes["monitoring"].pid)
            pids = {name: process.pid for name, process in deployment.processes.items()}
            pids |= server_pids
            before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            run_id = await deployment.start_run(client, as_of=second, symbols=symbols)
            run = await wait_run(deployment, client, run_id, timeout=3600)
            await wait_monitoring(database, run_id=run_id, day=second, size=size)
            await settle(pids["monitoring"])
            wall = time.perf_counter() - started
            cpu = {
                name: round(tree_cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()
            }
    finally:
        deployment.stop_all()
    pipeline = sum(seconds for name, seconds in cpu.items() if name != "monitoring")
    return {
        "symbols": size,
        "state": run["state"],
        "wall_seconds": round(wall, 1),
        "cpu_seconds": cpu,
        "run_cpu_seconds": round(pipeline, 1),
        "monitoring_share": round(cpu["monitoring"] / pipeline, 4),
    }
