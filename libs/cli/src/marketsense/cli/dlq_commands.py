"""`marketsense dlq list|replay`: dead letters through the orchestrator API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marketsense.cli.output import ApiKey, AsJson, console, fail, print_json
from marketsense.cli.run_commands import DEFAULT_ORCHESTRATOR_URL, OrchestratorUrl, orchestrator


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
    with orchestrator(url, api_key) as client:
        page = client.list_dead_letters(
            run_id=run_id or None, topic=topic or None, replayed=replayed, limit=limit
        )
    if as_json:
        print_json(page)
        return
    if not page.items:
        console.print("no dead letters")
        return
    table = Table("id", "topic", "symbol", "run", "attempts", "failed at", "replayed", "error")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.original_topic,
            item.symbol or "-",
            item.run_id or "-",
            str(item.attempts),
            _when(item.failed_at),
            f"{_when(item.replayed_at)} by {item.replayed_by}" if item.replayed_at else "no",
            escape(item.error[:120]),
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
        raise fail("give --id (one or more) or --run-id, not both")
    with orchestrator(url, api_key) as client:
        result = client.replay_dead_letters(
            reason=reason, ids=ids or None, run_id=run_id or None, force=force
        )
    if as_json:
        print_json(result)
        return
    replayed = [str(item.id) for item in result.replayed]
    console.print(f"replayed {len(replayed)} dead letter(s): {', '.join(replayed)}")
    for skipped in result.skipped:
        console.print(f"skipped {skipped.id}: {escape(skipped.reason)}")


def _when(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.isoformat()
