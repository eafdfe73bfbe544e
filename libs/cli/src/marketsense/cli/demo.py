"""`marketsense demo`: one run through every stage, in one process, on the embedded default."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketsense.cli.embedded import PipelineSettings, build_pipeline_app, prepare_models
from marketsense.cli.registration import temporary_key
from marketsense.common.api_client import error_detail
from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.calendar import exchange_calendar
from marketsense.common.logs import configure_logging
from marketsense.common.states import FINISHED_RUN_STATES, RunState

DEMO_UNIVERSE = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "META",
    "TSLA",
    "AVGO",
    "JPM",
    "V",
    "XOM",
    "UNH",
    "JNJ",
    "WMT",
    "PG",
    "MA",
    "HD",
    "COST",
    "ABBV",
    "KO",
    "PEP",
    "MRK",
    "CVX",
    "BAC",
    "ADBE",
    "CRM",
    "NFLX",
    "AMD",
    "ORCL",
    "INTC",
]
"""Tickers the demo runs; their prices come from the simulated market, not the real one."""


def demo_symbols(count: int) -> list[str]:
    """The first `count` demo tickers, padded with simulated names past the list."""
    names = list(DEMO_UNIVERSE[:count])
    names += [f"SIM{i:03d}" for i in range(count - len(names))]
    return names


async def run_demo(*, home: Path, as_of: dt.date, count: int, console: Console) -> int:
    """Run the pipeline once; print the run's state and its predictions; return an exit code."""
    configure_logging(level="WARNING", json_lines=False)
    settings = PipelineSettings(home=home)
    calendar = exchange_calendar(settings.exchange)
    if not calendar.is_session(as_of):
        # Refused before any model is built: the orchestrator would refuse the run anyway.
        console.print(f"[red]error:[/] {calendar.not_a_session(as_of)}")
        return 1
    await prepare_models(settings, as_of=as_of, console=console)
    app = build_pipeline_app(settings)
    symbols = demo_symbols(count)
    async with (
        app.router.lifespan_context(app),
        temporary_key(app.state.runtime, Role.PUBLISHER, "demo") as key,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://demo",
            headers={KEY_HEADER: key},
        ) as api,
    ):
        response = await api.post("/v1/runs", json={"as_of": as_of.isoformat(), "symbols": symbols})
        if response.status_code != 201:
            console.print(f"[red]the orchestrator refused the run:[/] {error_detail(response)}")
            return 1
        run = await _follow(api, response.json()["id"], len(symbols), console)
        predictions = [(await api.get(f"/v1/predictions/{s}/latest")).json() for s in symbols]
    console.print(
        f"run [bold]{run['id']}[/] for {as_of}: [bold]{run['state']}[/] ({len(symbols)} symbols)"
    )
    for failure in run["failed"]:
        console.print(
            f"  failed {failure['symbol']} at {failure['stage']}: {failure['last_error']}"
        )
    console.print(_table([p for p in predictions if "prob_up" in p]))
    console.print(f"data, objects and models are under {home}")
    return 0 if run["state"] == RunState.SUCCESS else 1


async def _follow(
    api: httpx.AsyncClient, run_id: str, total: int, console: Console
) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + 300
    with Progress(*columns, console=console, transient=True) as progress:
        bars = {s: progress.add_task(s, total=total) for s in ("ingest", "process", "predict")}
        while True:
            run: dict[str, Any] = (await api.get(f"/v1/runs/{run_id}")).json()
            for stage in run["stages"]:
                done = sum(v for k, v in stage["counts"].items() if k in {"SUCCESS", "FAILED"})
                progress.update(bars[stage["stage"]], completed=done)
            if run["state"] in FINISHED_RUN_STATES or time.monotonic() > deadline:
                return run
            await asyncio.sleep(0.2)


def _table(predictions: list[dict[str, Any]]) -> Table:
    table = Table(title="predictions (simulated market data)")
    for column in ("symbol", "as_of", "prob_up", "signal", "model"):
        table.add_column(column, justify="right" if column == "prob_up" else "left")
    for p in sorted(predictions, key=lambda p: -float(p["prob_up"])):
        table.add_row(
            str(p["symbol"]),
            str(p["as_of"]),
            f"{float(p['prob_up']):.3f}",
            str(p["signal"]),
            f"{p['model_name']} v{p['model_version']}",
        )
    return table
