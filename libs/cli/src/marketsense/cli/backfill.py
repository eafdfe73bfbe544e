"""`marketsense backfill`: history through the real services as one run, in this process on the
embedded default or through an orchestrator's API, with a progress bar; the same command again
resumes it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from marketsense.cli.output import console, err
from marketsense.common.api_client import error_detail
from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import BACKFILL_RUN, Run, Task
from marketsense.common.logs import configure_logging
from marketsense.common.states import FINISHED_RUN_STATES, RunState, Stage, TaskState, move_task

DONE_TASK_STATES = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED}
)
"""Task states the progress bar counts as done."""

POLL_SECONDS = 0.5
"""How often the command reads the run's progress."""


class BackfillRefused(Exception):
    """The orchestrator refused the request; the message says what to fix."""


def parse_day(text: str, *, option: str) -> dt.date:
    """A YYYY-MM-DD day, or BackfillRefused naming the option."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise BackfillRefused(f"{option} {text!r} is not a day: write YYYY-MM-DD") from exc


def parse_symbols(text: str) -> list[str]:
    """Comma-separated symbols, upper case, without blanks; BackfillRefused when none."""
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise BackfillRefused("--symbols names no symbol: write e.g. --symbols AAPL,MSFT")
    return symbols


async def release_orphaned_tasks(database: Database) -> int:
    """Put the RUNNING tasks of live backfills back to PENDING through FAILED; how many.

    Only for an embedded home before its pipeline starts: no process works on it then, so a
    RUNNING task's worker died with the command that ran it (killed, say), and its event with
    the in-process bus. The request that follows sends the PENDING tasks' events again.
    """
    released = 0
    async with database.session() as session:
        orphans = list(
            await session.execute(
                select(Task.run_id, Task.symbol, Task.stage)
                .join(Run, Run.id == Task.run_id)
                .where(
                    Run.kind == BACKFILL_RUN,
                    Run.state.in_((RunState.PENDING, RunState.RUNNING)),
                    Task.state == TaskState.RUNNING,
                )
            )
        )
        for run_id, symbol, stage in orphans:
            for source, target in (
                (TaskState.RUNNING, TaskState.FAILED),
                (TaskState.FAILED, TaskState.PENDING),
            ):
                await move_task(
                    session,
                    run_id=run_id,
                    symbol=symbol,
                    stage=Stage(stage),
                    source={source},
                    target=target,
                    error="its process stopped; resumed",
                )
            released += 1
        await session.commit()
    return released


async def request(
    api: httpx.AsyncClient, *, start: dt.date, end: dt.date, symbols: list[str]
) -> dict[str, Any]:
    """POST the backfill and return the answer; BackfillRefused with the API's reason."""
    body = {"start": start.isoformat(), "end": end.isoformat(), "symbols": symbols}
    response = await api.post("/v1/backfills", json=body)
    if response.status_code not in (200, 201):
        raise BackfillRefused(f"{response.status_code}: {error_detail(response)}")
    answer: dict[str, Any] = response.json()
    return answer


async def follow(api: httpx.AsyncClient, run_id: str, console: Console) -> dict[str, Any]:
    """Show tasks done out of all until the run ends; return the backfill as last read."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(f"backfill {run_id[:8]} tasks", total=None)
        while True:
            response = await api.get(f"/v1/backfills/{run_id}")
            if response.status_code != 200:
                raise BackfillRefused(f"{response.status_code}: {error_detail(response)}")
            backfill: dict[str, Any] = response.json()
            counts = [stage["counts"] for stage in backfill["run"]["stages"]]
            total = sum(sum(c.values()) for c in counts)
            done = sum(n for c in counts for state, n in c.items() if state in DONE_TASK_STATES)
            progress.update(bar, completed=done, total=total)
            if backfill["run"]["state"] in FINISHED_RUN_STATES:
                return backfill
            await asyncio.sleep(POLL_SECONDS)


def summary(backfill: dict[str, Any]) -> str:
    """The closing line: run id, range, state and predictions written."""
    run = backfill["run"]
    return (
        f"backfill {run['id']} {run['start']} to {run['as_of']}: {run['state']}, "
        f"{backfill['predictions']} predictions written ({run['symbols']} symbols x "
        f"{backfill['sessions']} sessions)"
    )


async def run_backfill(
    api: httpx.AsyncClient,
    *,
    start: dt.date,
    end: dt.date,
    symbols: list[str],
    console: Console,
) -> dict[str, Any]:
    """Request the backfill, print how it was read, and follow it to its end."""
    answer = await request(api, start=start, end=end, symbols=symbols)
    for note in answer["notes"]:
        console.print(f"note: {note}")
    if answer["tasks_requeued"]:
        console.print(
            f"resuming backfill {answer['run']['id']}: {answer['tasks_requeued']} tasks sent again"
        )
    return await follow(api, answer["run"]["id"], console)


@asynccontextmanager
async def embedded_api(
    home: Path, *, train_as_of: dt.date, console: Console
) -> AsyncIterator[httpx.AsyncClient]:
    """The pipeline in this process on the embedded default under `home`, its models built and
    registered, its orphaned backfill tasks released, and a client holding a publisher key."""
    from marketsense.cli.embedded import PipelineSettings, build_pipeline_app, prepare_models
    from marketsense.cli.registration import temporary_key

    settings = PipelineSettings(home=home)
    await prepare_models(settings, as_of=train_as_of, console=console)
    # Before the pipeline starts, so no task of this process is taken for an orphan.
    database = Database(settings.resolved_database_url())
    try:
        await upgrade(database)
        await release_orphaned_tasks(database)
    finally:
        await database.dispose()
    app = build_pipeline_app(settings)
    async with (
        app.router.lifespan_context(app),
        temporary_key(app.state.runtime, Role.PUBLISHER, "backfill") as key,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://pipeline",
            headers={KEY_HEADER: key},
            timeout=120,
        ) as api,
    ):
        yield api


@asynccontextmanager
async def remote_api(url: str, api_key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an orchestrator's API at `url`."""
    headers = {KEY_HEADER: api_key} if api_key else {}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60) as api:
        yield api


async def backfill_command(
    *, start: str, end: str, symbols: str, api: str | None, api_key: str | None, home: Path
) -> int:
    """The `backfill` command: 0 when the run ends SUCCESS; BackfillRefused for bad input."""
    first, last = parse_day(start, option="--from"), parse_day(end, option="--to")
    if first > last:
        raise BackfillRefused(f"--from {first} is after --to {last}")
    if last > dt.datetime.now(dt.UTC).date():
        raise BackfillRefused(f"--to {last} is in the future")
    names = parse_symbols(symbols)
    if api is None:
        configure_logging(level="WARNING", json_lines=False)
        client = embedded_api(home, train_as_of=first, console=err)
    else:
        client = remote_api(api, api_key)
    try:
        async with client as orchestrator:
            backfill = await run_backfill(
                orchestrator, start=first, end=last, symbols=names, console=err
            )
    except httpx.TransportError as exc:
        raise BackfillRefused(f"cannot reach the orchestrator at {api}: {exc}") from exc
    console.print(summary(backfill), soft_wrap=True)
    return 0 if backfill["run"]["state"] == RunState.SUCCESS else 1
