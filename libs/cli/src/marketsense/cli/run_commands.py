"""`marketsense run start|list|status|retry|cancel`: pipeline runs through the orchestrator API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from marketsense.cli.defaults import last_session
from marketsense.cli.output import ApiKey, AsJson, console, fail, print_json
from marketsense.common.api_client import ApiError
from marketsense.common.serve import DEFAULT_PORTS
from marketsense.orchestrator.client import OrchestratorClient

DEFAULT_ORCHESTRATOR_URL = f"http://127.0.0.1:{DEFAULT_PORTS['orchestrator']}"

OrchestratorUrl = Annotated[
    str,
    typer.Option("--url", envvar="MARKETSENSE_ORCHESTRATOR_URL", help="Orchestrator base URL."),
]
Reason = Annotated[str, typer.Option(help="Why, for the audit log.")]
RunId = Annotated[str, typer.Argument(help="Run id.")]


def register(app: typer.Typer) -> None:
    """Add the `run` command group to the `marketsense` command."""
    run_app = typer.Typer(help="Start, watch, retry and cancel pipeline runs (orchestrator API).")
    app.add_typer(run_app, name="run")
    run_app.command("start")(run_start)
    run_app.command("list")(run_list)
    run_app.command("status")(run_status)
    run_app.command("retry")(run_retry)
    run_app.command("cancel")(run_cancel)


@contextmanager
def orchestrator(url: str, api_key: str | None) -> Iterator[OrchestratorClient]:
    """A client for `url`; any refusal or failure to reach it is one error line and exit 1."""
    try:
        with OrchestratorClient(url, api_key) as client:
            yield client
    except ApiError as exc:
        if exc.status is None:
            raise fail(f"{exc.detail}; is the orchestrator running?") from exc
        raise fail(f"{exc.status} from {url}: {exc.detail}") from exc


def run_start(
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. AAPL,MSFT.")],
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Trading day (default: the last closed NYSE session)."
        ),
    ] = None,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Start a run and print its id (needs a publisher key)."""
    day = as_of.date() if as_of else last_session()
    with orchestrator(url, api_key) as client:
        run = client.start_run(day, [s.strip() for s in symbols.split(",") if s.strip()])
    console.print(run.id)


def run_list(
    state: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
    as_of: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only runs for this day.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most runs to show.")] = 20,
    as_json: AsJson = False,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """List runs, newest first."""
    with orchestrator(url, api_key) as client:
        page = client.list_runs(
            state=state.upper() if state else None,
            as_of=as_of.date() if as_of else None,
            limit=limit,
        )
    if as_json:
        print_json(page)
        return
    # A backfill shows its range where a daily run shows its day: the kind at no extra width.
    table = Table("id", "as_of", "state", "symbols", "created", "finished")
    for run in page.items:
        table.add_row(
            run.id,
            f"{run.start}..{run.as_of}" if run.start else run.as_of.isoformat(),
            run.state,
            str(run.symbols),
            run.created_at.isoformat()[:19],
            run.finished_at.isoformat()[:19] if run.finished_at else "",
        )
    console.print(table)


def run_status(
    run_id: RunId,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Print a run's state, task counts per stage and failed symbols as JSON."""
    with orchestrator(url, api_key) as client:
        print_json(client.get_run(run_id))


def run_retry(
    run_id: RunId,
    reason: Reason,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Re-queue a run's failed tasks (needs a publisher key)."""
    with orchestrator(url, api_key) as client:
        done = client.retry_run(run_id, reason)
    console.print(f"re-queued {done.tasks} failed tasks; run {run_id} is {done.run.state}")


def run_cancel(
    run_id: RunId,
    reason: Reason,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Cancel a live run and its unfinished tasks (needs a publisher key)."""
    with orchestrator(url, api_key) as client:
        done = client.cancel_run(run_id, reason)
    console.print(f"cancelled run {run_id} and {done.tasks} unfinished tasks")
