"""The `marketsense` command: the one entry point for people."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from marketsense.cli import (
    challenge_commands,
    dlq_commands,
    evaluation_set_commands,
    inspect_commands,
    keys_commands,
    models_commands,
    perf_commands,
    report_commands,
    retention_commands,
    run_commands,
    sentiment_commands,
    stage_commands,
)
from marketsense.cli.defaults import DEFAULT_TRAINING_SYMBOLS, holdout_set_path, last_session
from marketsense.cli.output import ApiKey, console, err, fail
from marketsense.common.serve import SERVICES
from marketsense.common.serve import serve as serve_service

app = typer.Typer(help="marketsense: stock predictions from market data and text sentiment.")
db_app = typer.Typer(help="Database schema.")
models_app = typer.Typer(help="Models.")
events_app = typer.Typer(help="The event catalogue.")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(events_app, name="events")
sentiment_commands.register(models_app)
models_commands.register(models_app)
evaluation_set_commands.register(models_app)
keys_commands.register(app)
run_commands.register(app)
dlq_commands.register(app)
perf_commands.register(app)
challenge_commands.register(app)
report_commands.register(app)
retention_commands.register(app)
stage_commands.register(app)
inspect_commands.register(app)


@app.command()
def demo(
    symbols: Annotated[
        int | None,
        typer.Option(min=1, max=500, help="How many symbols to run (default 20; --story: 50)."),
    ] = None,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Trading day (default: the last closed NYSE session)."
        ),
    ] = None,
    home: Annotated[
        Path, typer.Option(help="Folder for the embedded database, objects and models.")
    ] = Path(".marketsense"),
    story: Annotated[
        bool,
        typer.Option(
            "--story",
            help="Tell the feedback loop over a simulated year whose text signal flips mid-year: "
            "decay alert, retraining, shadow scoring, promotion and recovery.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulated market (--story).")] = 7,
    report: Annotated[
        Path | None,
        typer.Option(help="HTML report to write, the story's events marked (--story)."),
    ] = None,
) -> None:
    """Run the whole pipeline once in this process on the embedded default and print predictions;
    with --story, run the feedback loop end to end and print its figures."""
    if story:
        if as_of is not None:
            raise fail("--as-of does not apply to --story: the story's year is fixed")
        from marketsense.cli.story_command import story_command  # the whole pipeline

        code = asyncio.run(
            story_command(home=home, count=symbols or 50, seed=seed, report=report, console=console)
        )
        raise typer.Exit(code)
    if report is not None:
        raise fail("--report applies to --story only; `marketsense report` reports on a pipeline")
    day = as_of.date() if as_of else last_session()
    from marketsense.cli.demo import run_demo  # the whole pipeline: imported only when run

    code = asyncio.run(run_demo(home=home, as_of=day, count=symbols or 20, console=console))
    raise typer.Exit(code)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (not in the future).")],
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. AAPL,MSFT.")],
    api: Annotated[
        str | None,
        typer.Option(
            envvar="MARKETSENSE_ORCHESTRATOR_URL",
            help="Orchestrator URL; default: every service in this process, embedded.",
        ),
    ] = None,
    api_key: ApiKey = None,
    home: Annotated[
        Path, typer.Option(help="Folder for the embedded database, objects and models.")
    ] = Path(".marketsense"),
) -> None:
    """Run every trading day from --from to --to through the pipeline as one run; run the same
    command again to resume it after a stop."""
    from marketsense.cli.backfill import (  # the whole pipeline: imported only when run
        BackfillRefused,
        backfill_command,
    )

    try:
        code = asyncio.run(
            backfill_command(
                start=start, end=end, symbols=symbols, api=api, api_key=api_key, home=home
            )
        )
    except BackfillRefused as exc:
        raise fail(str(exc)) from exc
    raise typer.Exit(code)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")],
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
) -> None:
    """Run one service as its own process (settings from MARKETSENSE_* variables)."""
    if service not in SERVICES:
        raise fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    serve_service(service, host=host, port=port)


@app.command()
def standalone(
    home: Annotated[
        Path, typer.Option(help="Folder for the embedded database, objects and models.")
    ] = Path(".marketsense"),
    host: Annotated[str, typer.Option(help="Address every service binds.")] = "127.0.0.1",
    port_offset: Annotated[
        int, typer.Option(help="Added to every service's usual port (orchestrator 8000, ...).")
    ] = 0,
    port: Annotated[
        list[str] | None,
        typer.Option(help="SERVICE=PORT for one service, e.g. prediction=9003; repeatable."),
    ] = None,
) -> None:
    """Run every service in this process on the embedded default, each API on its usual port,
    the schedule too, until Ctrl-C; models are built under --home the first time."""
    from marketsense.cli.standalone import (  # the whole pipeline: imported only when run
        StandaloneRefused,
        run_standalone,
        standalone_ports,
    )

    try:
        ports = standalone_ports(port_offset, port or [])
        code = asyncio.run(run_standalone(home=home, host=host, ports=ports, console=console))
    except StandaloneRefused as exc:
        raise fail(str(exc)) from exc
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database (MARKETSENSE_DATABASE_URL)."""
    from marketsense.common.db.migrate import upgrade_url
    from marketsense.common.settings import CommonSettings

    try:
        revision = asyncio.run(upgrade_url(CommonSettings().resolved_database_url()))
    except OSError as exc:
        raise fail(f"cannot reach the database: {exc}; check MARKETSENSE_DATABASE_URL") from exc
    console.print(f"database at revision {revision}")


@models_app.command("train-baseline")
def train_baseline(
    out: Annotated[Path, typer.Option(help="Folder to write model.onnx and manifest.json to.")],
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last day of data (default: the last closed NYSE session)."
        ),
    ] = None,
    symbols: Annotated[
        int, typer.Option(min=5, help="Simulated symbols to train on.")
    ] = DEFAULT_TRAINING_SYMBOLS,
    sentiment_model: Annotated[
        Path | None,
        typer.Option(
            help="Sentiment artifact that scores the texts (default: the processing one)."
        ),
    ] = None,
) -> None:
    """Train the baseline predictor on the simulated market (MARKETSENSE_* knobs) and export it."""
    day = as_of.date() if as_of else last_session()
    # Training pulls in scikit-learn and skl2onnx, so only this command imports them.
    from marketsense.cli.training import build_baseline
    from marketsense.ingestion.config import IngestionSettings
    from marketsense.ingestion.sources import simulated_market
    from marketsense.models.files import MANIFEST_FILE
    from marketsense.models.sentiment import SentimentModel
    from marketsense.processing.config import ProcessingSettings

    sentiment_dir = sentiment_model or ProcessingSettings().resolved_sentiment_model_path()
    if not (sentiment_dir / MANIFEST_FILE).exists():
        raise fail(
            f"no sentiment model at {sentiment_dir}: build one with "
            "`marketsense models build-sentiment --out DIR` and pass --sentiment-model DIR"
        )
    manifest = build_baseline(
        out,
        as_of=day,
        symbols=symbols,
        market=simulated_market(IngestionSettings()),
        sentiment=SentimentModel(sentiment_dir, quantized=True, threads=2),
        console=console,
    )
    console.print_json(json.dumps(manifest.metrics))
    holdout = holdout_set_path(out)
    err.print(
        f"holdout rows written to {holdout}; the registry measures predictors on them after "
        f"`marketsense models evaluation-set add predictor {holdout}`",
        soft_wrap=True,
    )


@events_app.command("asyncapi")
def events_asyncapi(
    out: Annotated[Path | None, typer.Option(help="File to write; default prints it.")] = None,
) -> None:
    """Print (or write) the AsyncAPI document of every event."""
    from marketsense.common.asyncapi import asyncapi_document

    text = json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
