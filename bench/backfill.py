"""CPU of a backfill of a year (about 252 sessions) of 50 symbols against one daily run of the
same 50 symbols, side by side; the goal is at most 5x.

Two set-ups. Embedded: the `marketsense` command as a subprocess on a fresh home whose models are
built beforehand, `demo` for the daily run and `backfill` for the year; CPU is that of the child
processes (resource.getrusage(RUSAGE_CHILDREN)), start-up included, and shown without it too.
Servers: every service its own process on Kafka, PostgreSQL and S3; CPU is that of the service
processes and of the servers, from /proc, from the request to the run's end. Needs the servers
of `infra/up.sh` and their variables for the second set-up:

    . infra/env.sh && PYTHONPATH=. uv run python bench/backfill.py [--only embedded|servers]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.chaos.deployment import PIPELINE, Deployment, service_environment, wait_run
from tests.conftest import build_predictor, build_sentiment_model, migrated_pg_database
from tests.model_registry_rows import new_api_key

from marketsense.cli.demo import demo_symbols
from marketsense.common.auth import Role
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from process_cpu import server_pids, tree_cpu_seconds

SYMBOLS = 50
END = dt.date(2026, 11, 20)
"""Last day of the year backfilled, and the daily run's day."""
START = END - dt.timedelta(days=365)


def children_cpu() -> float:
    """User + system CPU seconds of every child process that has ended so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_command(args: list[str]) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, last output line) of one `marketsense` command."""
    before, started = children_cpu(), time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "marketsense"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MARKETSENSE_LOG_LEVEL": "WARNING"},
    )
    if done.returncode != 0:
        raise SystemExit(
            f"marketsense {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    lines = done.stdout.strip().splitlines()
    return children_cpu() - before, time.perf_counter() - started, lines[-1] if lines else ""


def embedded(models: tuple[Path, Path], workdir: Path) -> dict[str, Any]:
    """The daily run and the year's backfill through the command, each on a fresh home."""
    sentiment, predictor = models
    symbols = demo_symbols(SYMBOLS)
    homes = {}
    for name in ("idle", "daily", "backfill"):
        home = homes[name] = workdir / f"home-{name}"
        shutil.copytree(sentiment, home / "models" / "sentiment")
        shutil.copytree(predictor, home / "models" / "baseline-predictor")
    # Start-up alone: the pipeline started and a one-symbol, one-day backfill.
    idle = timed_command(
        ["backfill", "--from", END.isoformat(), "--to", END.isoformat(), "--symbols", "AAPL",
         "--home", str(homes["idle"])]
    )  # fmt: skip
    daily = timed_command(
        ["demo", "--symbols", str(SYMBOLS), "--as-of", END.isoformat(),
         "--home", str(homes["daily"])]
    )  # fmt: skip
    backfill = timed_command(
        ["backfill", "--from", START.isoformat(), "--to", END.isoformat(),
         "--symbols", ",".join(symbols), "--home", str(homes["backfill"])]
    )  # fmt: skip
    return {
        "daily_cpu_seconds": round(daily[0], 1),
        "backfill_cpu_seconds": round(backfill[0], 1),
        "startup_cpu_seconds": round(idle[0], 1),
        "daily_wall_seconds": round(daily[1], 1),
        "backfill_wall_seconds": round(backfill[1], 1),
        "ratio": round(backfill[0] / daily[0], 2),
        "ratio_without_startup": round((backfill[0] - idle[0]) / max(daily[0] - idle[0], 1e-9), 2),
        "backfill_summary": backfill[2],
    }


async def _measured(
    deployment: Deployment, client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> tuple[float, float, dict[str, Any]]:
    """(CPU seconds of services and servers, wall seconds, run) of one request to the end."""
    pids = {name: process.pid for name, process in deployment.processes.items()}
    pids |= server_pids(Path(os.environ["INFRA_STATE_DIR"]))
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    created = await client.post(
        f"{deployment.url('orchestrator')}{path}",
        json=body,
        headers={"X-API-Key": deployment.api_key},
    )
    assert created.status_code == 201, created.text
    answer = created.json()
    run_id = str(answer["run"]["id"] if "run" in answer else answer["id"])
    run = await wait_run(deployment, client, run_id, timeout=7200)
    wall = time.perf_counter() - started
    cpu = sum(tree_cpu_seconds(pid) - before[name] for name, pid in pids.items())
    return cpu, wall, run


async def servers(models: tuple[Path, Path], workdir: Path) -> dict[str, Any]:
    """The daily run, then the year's backfill, on one deployment of service processes."""
    sentiment, predictor = models
    symbols = demo_symbols(SYMBOLS)
    async with migrated_pg_database(
        os.environ["MARKETSENSE_TEST_PG_DSN"], prefix="marketsense_bench"
    ) as url:
        database = Database(url)
        logs = workdir / "logs"
        logs.mkdir()
        env = service_environment(
            database_url=url,
            prefix=f"bench{uuid.uuid4().hex[:8]}.",
            predictor_dir=predictor,
            sentiment_model_dir=sentiment,
            home=workdir / "home",
        ) | {"MARKETSENSE_LOG_LEVEL": "WARNING"}
        key = await new_api_key(database, role=Role.PUBLISHER)
        deployment = Deployment(env=env, logs_dir=logs, database=database, api_key=key)
        for name in PIPELINE:
            deployment.start(name)
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                await deployment.wait_ready(client)
                daily = await _measured(
                    deployment, client, "/v1/runs", {"as_of": END.isoformat(), "symbols": symbols}
                )
                backfill = await _measured(
                    deployment,
                    client,
                    "/v1/backfills",
                    {"start": START.isoformat(), "end": END.isoformat(), "symbols": symbols},
                )
        finally:
            deployment.stop_all()
            await database.dispose()
    return {
        "daily_cpu_seconds": round(daily[0], 1),
        "backfill_cpu_seconds": round(backfill[0], 1),
        "daily_wall_seconds": round(daily[1], 1),
        "backfill_wall_seconds": round(backfill[1], 1),
        "daily_state": daily[2]["state"],
        "backfill_state": backfill[2]["state"],
        "ratio": round(backfill[0] / daily[0], 2),
    }


def main() -> None:
    """Build the models, run both set-ups (or the embedded one), print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("embedded", "servers"), help="Run one set-up alone.")
    parser.add_argument(
        "--models",
        type=Path,
        help="Folder holding sentiment/ and baseline-predictor/ built before; default: build.",
    )
    args = parser.parse_args()
    sessions = len(exchange_calendar().sessions(START, END))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.models:
            models = (args.models / "sentiment", args.models / "baseline-predictor")
        else:
            sentiment = build_sentiment_model(workdir / "sentiment")
            models = (sentiment, build_predictor(workdir / "predictor", sentiment))
        figures: dict[str, Any] = {}
        if args.only != "servers":
            figures["embedded"] = embedded(models, workdir / "embedded")
        if args.only != "embedded":
            (workdir / "servers").mkdir()
            figures["servers"] = asyncio.run(servers(models, workdir / "servers"))
    print(f"backfill of {sessions} sessions x {SYMBOLS} symbols vs one daily run of {SYMBOLS}")
    print(f"{'set-up':>10} {'daily CPU s':>12} {'backfill CPU s':>15} {'ratio':>6}")
    for name, row in figures.items():
        print(
            f"{name:>10} {row['daily_cpu_seconds']:>12} {row['backfill_cpu_seconds']:>15} "
            f"{row['ratio']:>6}"
        )
    figures |= {
        "benchmark": "backfill",
        "sessions": sessions,
        "symbols": SYMBOLS,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
