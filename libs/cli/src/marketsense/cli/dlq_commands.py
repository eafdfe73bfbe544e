"""`marketsense dlq list|replay`: dead letters through the orchestrator API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from marketsense.cli.run_commands import DEFAULT_ORCHESTRATOR_URL, ApiKey, AsJson, OrchestratorUrl

console = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `dlq` command group to the `marketsense` command."""
    dlq_app = typer.Typer(help="List and replay dead-lettered events (orchestrator API).")
    app.add_typer(dlq_app, name="dlq")
    dlq_app.command("list")(dlq_list)
    dlq_app.command("replay")(dlq_replay)


def dlq_list(
    run_id: Annotated[str | None, typer.Option(help="Only this run's dead letters.")] = None,
    topic: Annotated[str | None, typer.Option(help="Only those that failed on this topic.")] = None,
    replayed: Annotated[
        bool | None,
        typer.Option("--replayed/--not-replayed", help="Only replayed, or never replayed ones."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most dead letters to show.")] = 50,
    as_json: AsJson = False,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """List dead letters, newest first (needs a reader key)."""
    params: dict[str, str | int] = {"limit": limit}
    if run_id:
        params["run_id"] = run_id
    if topic:
        params["topic"] = topic
    if replayed is not None:
        params["replayed"] = str(replayed).lower()
    page = _call("GET", url, "/v1/dead-letters", api_key, params=params)
    if as_json:
        console.print_json(json.dumps(page))
        return
    if not page["items"]:
        console.print("no dead letters")
        return
    table = Table("id", "topic", "symbol", "run", "attempts", "failed at", "replayed", "error")
    for item in page["items"]:
        table.add_row(
            str(item["id"]),
            item["original_topic"],
            item["symbol"] or "-",
            item["run_id"] or "-",
            str(item["attempts"]),
            item["failed_at"] or "-",
            f"{item['replayed_at']} by {item['replayed_by']}" if item["replayed_at"] else "no",
            escape(item["error"][:120]),
        )
    console.print(table)


def dlq_replay(
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="A dead letter to replay (repeatable).")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Replay every dead letter of a run.")] = None,
    force: Annotated[bool, typer.Option(help="Replay ones that were replayed before.")] = False,
    as_json: AsJson = False,
    url: OrchestratorUrl = DEFAULT_ORCHESTRATOR_URL,
    api_key: ApiKey = None,
) -> None:
    """Republish dead letters to their original topics (needs a publisher key)."""
    if bool(ids) == bool(run_id):
        raise _fail("give --id (one or more) or --run-id, not both")
    body: dict[str, Any] = {"reason": reason, "force": force}
    if ids:
        body["ids"] = ids
    else:
        body["run_id"] = run_id
    result = _call("POST", url, "/v1/dead-letters/replay", api_key, json=body)
    if as_json:
        console.print_json(json.dumps(result))
        return
    replayed = [str(item["id"]) for item in result["replayed"]]
    console.print(f"replayed {len(replayed)} dead letter(s): {', '.join(replayed)}")
    for skipped in result["skipped"]:
        console.print(f"skipped {skipped['id']}: {escape(skipped['reason'])}")


def _call(method: str, url: str, path: str, api_key: str | None, **kwargs: Any) -> Any:
    """One request to the orchestrator; any failure is one red line and exit code 1."""
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        response = httpx.request(
            method, f"{url.rstrip('/')}{path}", headers=headers, timeout=30, **kwargs
        )
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
