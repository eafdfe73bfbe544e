"""`marketsense run start|list|status|retry|cancel`: pipeline runs through the orchestrator API."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from marketsense.cli.defaults import last_weekday

console = Console()
err = Console(stderr=True)

DEFAULT_ORCHESTRATOR_URL = "http://127.0.0.1:8000"

OrchestratorUrl = Annotated[
    str,
    typer.Option("--url", envvar="MARKETSENSE_ORCHESTRATOR_URL", help="Orchestrator base URL."),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="MARKETSENSE_API_KEY",
        help="API key; prefer the environment variable, which keeps it out of shell history.",
        show_default=False,
    ),
]
Reason = Annotated[str, typer.Option(help="Why, for the audit log.")]
RunId = Annotated[str, typer.Argument(help="Run id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")]


def register(app: typer.Typer) -> None:
    """Add the `run` command group to the `marketsense` command."""
    run_app = typer.Typer(help="Start, watch, retry and cancel pipeline runs (orchestrator API).")
    app.add_typer(run_app, name="run")
    run_app.command("start")(run_start)
    run_app.command("list")(run_list)
    run_app.command("status")(run_status)
    run_app.command("retry")(run_retry)
    run_app.command("cancel")(run_cancel)


def run_start(
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. AAPL,MSFT.")],
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Trading day (default: last weekday)."),
    ] = None,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Start a run and print its id (needs a publisher key)."""
    day = as_of.date() if as_of else last_weekday()
    body = {"as_of": day.isoformat(), "universe": [s for s in symbols.split(",") if s]}
    response = _call("POST", url, "/v1/runs", api_key, json=body)
    console.print(response["id"])


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
    params: dict[str, str | int] = {"limit": limit}
    if state:
        params["state"] = state.upper()
    if as_of:
        params["as_of"] = as_of.date().isoformat()
    page = _call("GET", url, "/v1/runs", api_key, params=params)
    if as_json:
        console.print_json(json.dumps(page))
        return
    table = Table("id", "as_of", "state", "symbols", "created", "finished")
    for run in page["items"]:
        table.add_row(
            run["id"],
            run["as_of"],
            run["state"],
            str(run["symbols"]),
            run["created_at"][:19],
            (run["finished_at"] or "")[:19],
        )
    console.print(table)


def run_status(
    run_id: RunId,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Print a run's state, task counts per stage and failed symbols as JSON."""
    console.print_json(json.dumps(_call("GET", url, f"/v1/runs/{run_id}", api_key)))


def run_retry(
    run_id: RunId,
    reason: Reason,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Re-queue a run's failed tasks (needs a publisher key)."""
    done = _call("POST", url, f"/v1/runs/{run_id}/retry", api_key, json={"reason": reason})
    console.print(f"re-queued {done['tasks']} failed tasks; run {run_id} is {done['run']['state']}")


def run_cancel(
    run_id: RunId,
    reason: Reason,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Cancel a live run and its unfinished tasks (needs a publisher key)."""
    done = _call("POST", url, f"/v1/runs/{run_id}/cancel", api_key, json={"reason": reason})
    console.print(f"cancelled run {run_id} and {done['tasks']} unfinished tasks")


def _call(method: str, url: str, path: str, api_key: str | None, **kwargs: Any) -> Any:
    """One request to the orchestrator; any failure is one red line and exit code 1."""
    headers = {"X-API-Key": api_key} if api_key else {}
    target = f"{url.rstrip('/')}{path}"
    try:
        response = httpx.request(method, target, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url} ({exc}); is the orchestrator running?") from exc
    if response.status_code >= 400:
        raise _fail(f"{response.status_code} from {method} {path}: {_detail(response)}")
    try:
        return response.json()
    except ValueError as exc:
        raise _fail(f"{url} did not answer JSON; is it the orchestrator?") from exc


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:300]
    if isinstance(detail, list):  # validation errors: name each bad field
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
        )
    return str(detail)


def _fail(message: str) -> typer.Exit:
    """Print one line saying what to fix and return the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)
