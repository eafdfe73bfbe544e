"""`marketsense inspect run`: what a run recorded for one symbol, every object read back."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.cli.output import console, fail
from marketsense.common.db.engine import Database
from marketsense.common.db.models import DeadLetter, FeatureSet, OutboxMessage, RawObject, Run, Task
from marketsense.common.errors import ObjectNotFound
from marketsense.common.events import Envelope
from marketsense.common.settings import CommonSettings
from marketsense.common.states import Stage
from marketsense.common.store import store_from_settings
from marketsense.common.store.base import ObjectStore, sha256_hex


class UnknownTarget(Exception):
    """No such run, or no such symbol in it; the message says what there is."""


@dataclass(frozen=True)
class TaskView:
    """One stage's task of the symbol."""

    stage: str
    state: str
    attempts: int
    notes: str | None
    error: str | None


@dataclass(frozen=True)
class ObjectView:
    """An object the run recorded for the symbol, and what reading it back found."""

    stage: str
    what: str
    uri: str
    sha256: str
    size: int
    check: str
    """`checksum ok`, `checksum mismatch: ...` or `missing`."""


@dataclass
class Inspection:
    """Everything a run recorded for one symbol."""

    run_id: str
    symbol: str
    run_state: str
    as_of: str
    tasks: list[TaskView] = field(default_factory=list)
    objects: list[ObjectView] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> list[ObjectView]:
        """Objects that are missing or fail their checksum."""
        return [item for item in self.objects if item.check != "checksum ok"]


def register(app: typer.Typer) -> None:
    """Add the `inspect` command group to the `marketsense` command."""
    inspect_app = typer.Typer(help="Look into what a run recorded (database and store).")
    app.add_typer(inspect_app, name="inspect")
    inspect_app.command("run")(inspect_run)


def inspect_run(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    symbol: Annotated[str, typer.Option(help="The symbol to look at.")],
) -> None:
    """Print each stage's task, the objects recorded (each read back and its sha256 checked),
    the events still in the outbox and the dead letters of one symbol of a run; exit 1 if an
    object is missing or fails its checksum."""
    try:
        found = asyncio.run(inspect(CommonSettings(), run_id=run_id, symbol=symbol.strip().upper()))
    except UnknownTarget as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"cannot reach the database or store: {exc}; check MARKETSENSE_*") from exc
    print_inspection(found)
    if found.damaged:
        raise fail(
            f"{len(found.damaged)} object(s) missing or failing their checksum: re-run the stage "
            f"with `marketsense stage run STAGE --run-id {run_id} --symbol {found.symbol}`"
        )


async def inspect(settings: CommonSettings, *, run_id: str, symbol: str) -> Inspection:
    """Read what the run recorded for the symbol and verify every object it names."""
    database, store = Database(settings.resolved_database_url()), store_from_settings(settings)
    try:
        async with database.session() as session:
            found = await _recorded(session, run_id=run_id, symbol=symbol)
            rows: list[tuple[str, str, RawObject | FeatureSet]] = [
                (Stage.INGEST, row.kind, row)
                for row in await session.scalars(
                    select(RawObject)
                    .where(RawObject.run_id == run_id, RawObject.symbol == symbol)
                    .order_by(RawObject.kind)
                )
            ]
            rows += [
                (Stage.PROCESS, row.feature_schema, row)
                for row in await session.scalars(
                    select(FeatureSet).where(
                        FeatureSet.run_id == run_id, FeatureSet.symbol == symbol
                    )
                )
            ]
        for stage, what, row in rows:
            found.objects.append(
                ObjectView(
                    stage=stage,
                    what=what,
                    uri=row.uri,
                    sha256=row.sha256,
                    size=row.size,
                    check=await verify(store, row.uri, sha256=row.sha256, size=row.size),
                )
            )
        return found
    finally:
        await store.close()
        await database.dispose()


async def _recorded(session: AsyncSession, *, run_id: str, symbol: str) -> Inspection:
    """The run's tasks, outbox rows and dead letters for the symbol; raise UnknownTarget."""
    run = await session.get(Run, run_id)
    if run is None:
        raise UnknownTarget(f"no run {run_id}: `marketsense run list` shows the runs")
    tasks = {
        task.stage: task
        for task in await session.scalars(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol)
        )
    }
    if not tasks:
        symbols = sorted(
            set(await session.scalars(select(Task.symbol).where(Task.run_id == run_id)))
        )
        shown = ", ".join(symbols[:10]) + (", ..." if len(symbols) > 10 else "")
        raise UnknownTarget(f"run {run_id} has no symbol {symbol}; its symbols: {shown}")
    found = Inspection(run_id=run_id, symbol=symbol, run_state=run.state, as_of=str(run.as_of))
    for stage in Stage:
        task = tasks.get(stage)
        if task is not None:
            found.tasks.append(
                TaskView(stage, task.state, task.attempts, task.notes, task.last_error)
            )
    for message in await session.scalars(
        select(OutboxMessage).where(OutboxMessage.key == symbol).order_by(OutboxMessage.id)
    ):
        event = readable(message)
        if event is not None and event.run_id == run_id:
            found.events.append(
                f"{message.id} {event.type} on {message.topic} from {message.source}"
            )
    for letter in await session.scalars(
        select(DeadLetter)
        .where(DeadLetter.run_id == run_id, DeadLetter.symbol == symbol)
        .order_by(DeadLetter.id)
    ):
        replayed = (
            f"replayed {letter.replayed_at:%Y-%m-%d %H:%M}"
            if letter.replayed_at
            else "not replayed"
        )
        found.dead_letters.append(
            f"{letter.id} from {letter.original_topic} ({replayed}): {letter.error[:200]}"
        )
    return found


def readable(message: OutboxMessage) -> Envelope | None:
    """The envelope an outbox row carries, or None for one that is no envelope (the copy of an
    unreadable record on its way to a dead-letter topic)."""
    try:
        return Envelope.model_validate_json(message.value)
    except ValueError:
        return None


async def verify(store: ObjectStore, uri: str, *, sha256: str, size: int) -> str:
    """Read an object back and compare its sha256 and size with what its row recorded."""
    try:
        data = await store.read_key(store.key_for(uri))
    except ObjectNotFound:
        return "missing"
    actual = sha256_hex(data)
    if actual == sha256 and len(data) == size:
        return "checksum ok"
    return f"checksum mismatch: stored object has sha256 {actual} ({len(data)} bytes)"


def print_inspection(found: Inspection) -> None:
    """An inspection on stdout, one line per task, object, event and dead letter."""
    # One line per item, never wrapped, so the output reads the same in a pipe or a grep.
    say = functools.partial(console.print, soft_wrap=True)
    say(f"run {found.run_id} ({found.run_state}, as of {found.as_of}), symbol {found.symbol}")
    say("tasks:")
    for task in found.tasks:
        say(f"  {task.stage}: {task.state}, {task.attempts} attempt(s)")
        if task.notes:
            say(f"    notes: {escape(task.notes)}")
        if task.error:
            say(f"    error: {escape(task.error)}")
    say(f"objects ({len(found.objects)}):")
    for item in found.objects:
        say(
            f"  {item.stage} {item.what}: {item.uri} sha256 {item.sha256} ({item.size} bytes): "
            f"{escape(item.check)}"
        )
    say(f"events still in the outbox ({len(found.events)}; sent ones are deleted):")
    for event in found.events:
        say(f"  {event}")
    say(f"dead letters ({len(found.dead_letters)}):")
    for letter in found.dead_letters:
        say(f"  {escape(letter)}")
