"""`marketsense retention apply|hold|release|holds`: the retention policy against the configured
database and object store (MARKETSENSE_DATABASE_URL, MARKETSENSE_OBJECT_STORE_URL)."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from marketsense.cli.output import AsJson, console, err, fail
from marketsense.common.db.engine import Database
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.holds import NoSuchRun, hold_run, list_holds, release_run
from marketsense.common.retention.passes import PassResult, run_pass
from marketsense.common.store import ObjectStore, store_from_settings

RunId = Annotated[str, typer.Argument(help="Id of the run.", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the `retention` command group to the `marketsense` command."""
    retention_app = typer.Typer(
        help="Delete expired data under the retention policy; hold runs it must keep."
    )
    app.add_typer(retention_app, name="retention")
    retention_app.command("apply")(retention_apply)
    retention_app.command("hold")(retention_hold)
    retention_app.command("release")(retention_release)
    retention_app.command("holds")(retention_holds)


@asynccontextmanager
async def _database() -> AsyncIterator[Database]:
    database = Database(RetentionSettings().resolved_database_url())
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def _configured() -> AsyncIterator[tuple[Database, ObjectStore, RetentionSettings]]:
    settings = RetentionSettings()
    database = Database(settings.resolved_database_url())
    store = store_from_settings(settings)
    try:
        await store.start()
        yield database, store, settings
    finally:
        await store.close()
        await database.dispose()


def retention_apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what the pass would delete; delete nothing.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Delete what the retention policy lets go: objects first, then their rows."""
    try:
        result = asyncio.run(_apply(dry_run=dry_run))
    except DBAPIError as exc:
        raise fail(
            f"the database refused the pass: {exc.orig}; if a table is missing, run "
            "`marketsense db upgrade`"
        ) from exc
    except OSError as exc:
        raise fail(
            f"cannot reach the database or store: {exc}; check MARKETSENSE_DATABASE_URL "
            "and MARKETSENSE_OBJECT_STORE_URL"
        ) from exc
    counts = result.tally.as_json()
    if as_json:
        listed = [
            {"table": d.table, "id": d.id, "key": d.key, "size": d.size} for d in result.plan.all()
        ]
        typer.echo(
            json.dumps(
                {
                    "pass": result.pass_id,
                    "dry_run": dry_run,
                    "counts": counts,
                    "bytes": result.tally.bytes_freed,
                    "items": listed,
                },
                indent=2,
            )
        )
        return
    if dry_run:
        for item in result.plan.all():
            what = item.key if item.key is not None else f"{item.table} row {item.id}"
            console.print(f"would delete {escape(what)}")
    verb = "would delete" if dry_run else "deleted"
    table = Table("prefix or table", verb, "bytes")
    for prefix, figures in counts["prefixes"].items():
        table.add_row(prefix, str(figures["objects"]), str(figures["bytes"]))
    for name, rows in counts["tables"].items():
        table.add_row(name, str(rows), "")
    console.print(table)
    kept = ", ".join(f"{n} {reason}" for reason, n in counts["kept"].items()) or "none"
    console.print(f"pass {result.pass_id}: expired but kept: {kept}")


async def _apply(*, dry_run: bool) -> PassResult:
    columns = (TextColumn("retention"), BarColumn(), MofNCompleteColumn())
    async with _configured() as (database, store, settings):
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("retention", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await run_pass(database, store, settings, dry_run=dry_run, progress=advance)


def retention_hold(
    run_id: RunId,
    reason: Annotated[str, typer.Option(help="Why it must be kept, for the next operator.")] = "",
) -> None:
    """Keep every object and row of a run, whatever the policy says, until released."""

    async def hold() -> bool:
        async with _database() as database:
            return await hold_run(database, run_id=run_id, reason=reason, actor=_actor())

    try:
        added = asyncio.run(hold())
    except NoSuchRun as exc:
        raise fail(str(exc)) from exc
    console.print(f"run {run_id} held" if added else f"run {run_id} was already held")


def retention_release(run_id: RunId) -> None:
    """Release a run's hold: the policy applies to it again at the next pass."""

    async def release() -> bool:
        async with _database() as database:
            return await release_run(database, run_id=run_id)

    if not asyncio.run(release()):
        raise fail(f"run {run_id} has no hold; `marketsense retention holds` lists them")
    console.print(f"run {run_id} released")


def retention_holds(as_json: AsJson = False) -> None:
    """List the runs under a hold."""

    async def read() -> list[dict[str, str]]:
        async with _database() as database:
            rows = await list_holds(database)
        return [
            {
                "run_id": r.run_id,
                "reason": r.reason,
                "actor": r.actor,
                "since": r.created_at.isoformat(timespec="seconds"),
            }
            for r in rows
        ]

    holds = asyncio.run(read())
    if as_json:
        typer.echo(json.dumps(holds, indent=2))
        return
    if not holds:
        console.print("no holds")
        return
    table = Table("run", "since", "by", "reason")
    for hold in holds:
        table.add_row(hold["run_id"], hold["since"], hold["actor"], escape(hold["reason"]))
    console.print(table)


def _actor() -> str:
    """Who places a hold: the operating-system user, as the audit of a CLI action."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
