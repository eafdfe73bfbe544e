"""`marketsense stage run`: one stage of one symbol of a recorded run, in this process."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from marketsense.cli.output import console, fail
from marketsense.common.states import Stage

if TYPE_CHECKING:
    from marketsense.cli.stage_run import StageReport


def register(app: typer.Typer) -> None:
    """Add the `stage` command group to the `marketsense` command."""
    stage_app = typer.Typer(
        help="Run one stage of one symbol of a recorded run in this process, for debugging."
    )
    app.add_typer(stage_app, name="stage")
    stage_app.command("run")(stage_run)


def stage_run(
    stage: Annotated[Stage, typer.Argument(help="The stage to run.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The run whose inputs it reads.")],
    symbol: Annotated[str, typer.Option(help="The symbol to run it for.")],
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Record the result and queue its event as the service would; "
            "by default nothing is written or sent.",
        ),
    ] = False,
) -> None:
    """Run a stage's handler for one symbol of a run against the configured database and store
    (MARKETSENSE_* variables), from the inputs the run recorded; print what it read, what it
    writes (or would write) and the result."""
    # The services' handlers and models: imported only when a stage runs.
    from marketsense.cli.stage_run import StageRefused, StageSettings, run_stage

    try:
        report = asyncio.run(
            run_stage(
                StageSettings(),
                stage=stage,
                run_id=run_id,
                symbol=symbol.strip().upper(),
                write=write,
            )
        )
    except StageRefused as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"cannot reach the database or store: {exc}; check MARKETSENSE_*") from exc
    print_report(report)
    if report.error is not None:
        raise fail(f"the {stage} stage failed: {report.error}")


def print_report(report: StageReport) -> None:
    """What a stage run read, wrote (or would write) and ended with, one line per item."""
    # One line per item, never wrapped, so the output reads the same in a pipe or a grep.
    say = functools.partial(console.print, soft_wrap=True)
    mode = "written" if report.write else "dry run"
    say(
        f"{mode}: {report.stage} of {report.symbol} in run {report.run_id}; "
        f"task {report.task_before} -> {report.task_after or '-'}"
    )
    say(f"input: {escape(json.dumps(report.payload, sort_keys=True))}")
    say(f"read ({len(report.reads)} objects, checksums verified):")
    for read in report.reads:
        say(f"  {read.key} ({read.size} bytes)")
    verb = "wrote" if report.write else "would write"
    say(f"{verb} ({len(report.writes)} objects):")
    for item in report.writes:
        say(
            f"  {item.key} sha256 {item.sha256} ({item.size} bytes), {item.stored} "
            "against the stored object"
        )
    say("rows of the run and symbol (table: before -> after, inserted, updated):")
    for change in report.rows:
        say(
            f"  {change.table}: {change.before} -> {change.after}, {change.inserted} inserted, "
            f"{change.updated} updated"
        )
    say(f"events queued ({len(report.events)}):")
    for event in report.events:
        say(f"  {event.type} on {event.topic}, key {event.key}")
    if report.notes:
        say(f"notes: {escape(report.notes)}")
    if report.write:
        say("written: the outbox's events go out with the running services' relay")
    else:
        say("dry run: nothing was written or sent (--write records it)")
