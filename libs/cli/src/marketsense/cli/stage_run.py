"""One stage of one symbol of a recorded run, run in this process by the service's own handler:
dry (nothing written, nothing sent) or for real (the service's transaction and outbox)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.cli.inspect_commands import readable
from marketsense.cli.stage_sandbox import (
    DryRuntime,
    ObjectRead,
    ObjectWrite,
    RecordingStore,
    rolled_back_session,
)
from marketsense.common.bus import Subscription
from marketsense.common.db.models import FeatureSet, OutboxMessage, Prediction, RawObject, Run, Task
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    Payload,
    RawDataReady,
)
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.common.tasks import fail_task
from marketsense.ingestion.config import IngestionSettings
from marketsense.models.live import LiveModel, Refresh
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.tasks.service import MissingInput, stage_input
from marketsense.prediction.config import PredictionSettings
from marketsense.processing.config import ProcessingSettings


class StageSettings(
    OrchestratorSettings, IngestionSettings, ProcessingSettings, PredictionSettings
):
    """The settings of the services whose stages run here, from the variables they read."""


class StageRefused(Exception):
    """The stage cannot run as asked; the message says what to do instead."""


SERVICE_OF = {Stage.INGEST: "ingestion", Stage.PROCESS: "processing", Stage.PREDICT: "prediction"}
"""The service whose handler runs each stage, and whose name its outbox rows carry."""

UPSTREAM = {Stage.PROCESS: Stage.INGEST, Stage.PREDICT: Stage.PROCESS}
"""The stage whose success a stage's input needs."""

STAGE_TOPICS = {
    Stage.INGEST: IngestRequested.topic,
    Stage.PROCESS: RawDataReady.topic,
    Stage.PREDICT: FeaturesReady.topic,
}
"""The topic of each stage's input event."""

WRITABLE = (TaskState.PENDING, TaskState.RUNNING)
"""Task states a written run may start from, as a delivered event would."""

OUTPUT_TABLES: tuple[Any, ...] = (RawObject, FeatureSet, Prediction)
"""Tables a stage writes rows of (run, symbol) to."""

Handler = Callable[[Envelope, Payload], Awaitable[None]]


@dataclass(frozen=True)
class RowChange:
    """What a stage did to one table's rows of the (run, symbol)."""

    table: str
    before: int
    after: int
    inserted: int
    updated: int


@dataclass(frozen=True)
class QueuedEvent:
    """An event the stage queued in the outbox."""

    topic: str
    type: str
    key: str | None


@dataclass
class StageReport:
    """What one stage run read, wrote (or would write) and ended with."""

    stage: Stage
    run_id: str
    symbol: str
    write: bool
    task_before: str
    payload: dict[str, Any]
    task_after: str | None = None
    notes: str | None = None
    error: str | None = None
    reads: list[ObjectRead] = field(default_factory=list)
    writes: list[ObjectWrite] = field(default_factory=list)
    rows: list[RowChange] = field(default_factory=list)
    events: list[QueuedEvent] = field(default_factory=list)


async def run_stage(
    settings: StageSettings, *, stage: Stage, run_id: str, symbol: str, write: bool
) -> StageReport:
    """Run `stage` for (run, symbol) from the inputs the run recorded; raise StageRefused when
    the run, symbol, task state or input does not allow it."""
    runtime = Runtime(settings, service=SERVICE_OF[stage])
    try:
        async with runtime.database.session() as session:
            payload = await _checked_input(
                session, settings, stage=stage, run_id=run_id, symbol=symbol, write=write
            )
            task_before = await _task_state(session, run_id, symbol, stage)
        report = StageReport(
            stage=stage,
            run_id=run_id,
            symbol=symbol,
            write=write,
            task_before=task_before,
            payload=payload.model_dump(mode="json"),
        )
        await runtime.store.start()
        build = await _handler_builder(runtime, settings, stage)
        envelope = Envelope.wrap(payload, run_id=run_id, symbol=symbol)
        if write:
            await _written(runtime, build, envelope, payload, report)
        else:
            await _dry(runtime, build, envelope, payload, report)
        return report
    finally:
        await runtime.store.close()
        await runtime.database.dispose()


async def _checked_input(
    session: AsyncSession,
    settings: StageSettings,
    *,
    stage: Stage,
    run_id: str,
    symbol: str,
    write: bool,
) -> Payload:
    """The stage's input event rebuilt from what the run recorded, once every check passed."""
    run = await session.get(Run, run_id)
    if run is None:
        raise StageRefused(f"no run {run_id}: `marketsense run list` shows the runs")
    symbols = list(
        await session.scalars(
            select(Task.symbol).where(Task.run_id == run_id, Task.stage == stage).order_by("symbol")
        )
    )
    if symbol not in symbols:
        shown = ", ".join(symbols[:10]) + (", ..." if len(symbols) > 10 else "")
        raise StageRefused(f"run {run_id} has no symbol {symbol}; its symbols: {shown}")
    upstream = UPSTREAM.get(stage)
    if upstream is not None:
        state = await _task_state(session, run_id, symbol, upstream)
        if state != TaskState.SUCCESS:
            raise StageRefused(
                f"the {upstream} task of {symbol} in run {run_id} is {state}, so {stage} has no "
                f"input: {_run_first(upstream, state, run_id=run_id, symbol=symbol)}"
            )
    state = await _task_state(session, run_id, symbol, stage)
    if write and state not in WRITABLE:
        raise StageRefused(_not_writable(stage, state, run_id=run_id, symbol=symbol))
    try:
        return await stage_input(
            session, run=run, symbol=symbol, stage=stage, lookback_days=settings.lookback_days
        )
    except MissingInput as exc:
        raise StageRefused(f"{exc}: run the stage before {stage} for {symbol} first") from exc


def _run_first(upstream: Stage, state: str, *, run_id: str, symbol: str) -> str:
    """How to get the stage before to SUCCESS from `state`."""
    if state in (TaskState.FAILED, TaskState.SKIPPED):
        return f"re-queue it with `marketsense run retry {run_id} --reason TEXT` first"
    return (
        f"run `marketsense stage run {upstream} --run-id {run_id} --symbol {symbol} --write` "
        "first, or let its service run it"
    )


def _not_writable(stage: Stage, state: str, *, run_id: str, symbol: str) -> str:
    """Why a written run is refused for a task in `state`, and what to do instead."""
    if state in (TaskState.FAILED, TaskState.SKIPPED):
        return (
            f"the {stage} task of {symbol} is {state}: `marketsense run retry {run_id} --reason "
            "TEXT` re-queues it for its service; without --write this shows what it would produce"
        )
    return (
        f"the {stage} task of {symbol} is {state}, so --write has nothing to do; without "
        "--write it shows what running it again would produce"
    )


async def _task_state(session: AsyncSession, run_id: str, symbol: str, stage: Stage) -> str:
    state = await session.scalar(
        select(Task.state).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
    )
    return str(state)


HandlerBuilder = Callable[[Runtime], Handler]
"""The service's own subscription handler for a stage, wired to a given runtime."""


async def _handler_builder(
    runtime: Runtime, settings: StageSettings, stage: Stage
) -> HandlerBuilder:
    """The stage's handler as the service subscribes it, with the models the service serves
    (loaded once, through the real runtime: reading the registry changes nothing)."""
    if stage == Stage.INGEST:
        from marketsense.ingestion.consumers import subscriptions as ingestion
        from marketsense.ingestion.sources import build_source
        from marketsense.ingestion.sources.factory import bar_checks

        source, checks = build_source(settings), bar_checks(settings)
        return lambda rt: _stage_handler(ingestion(rt, source, checks), stage)
    if stage == Stage.PROCESS:
        from marketsense.models.sentiment import load_sentiment_model, warm_up_sentiment
        from marketsense.processing.consumers import subscriptions as processing
        from marketsense.processing.service import SentimentSlot

        loader = functools.partial(
            load_sentiment_model,
            quantized=settings.sentiment_quantized,
            threads=settings.sentiment_threads,
        )
        sentiment = SentimentSlot()
        live = LiveModel(
            runtime,
            name=settings.sentiment_model,
            slot=sentiment,
            loader=loader,
            warm_up=warm_up_sentiment,
            # A folder of its own: a follower prunes the versions it does not keep.
            cache_dir=settings.resolved_model_cache_dir() / "stage-run",
            poll_seconds=settings.model_poll_seconds,
            fallback=settings.resolved_sentiment_model_path(),
        )
        await _load(live)
        batch = settings.sentiment_batch_size
        return lambda rt: _stage_handler(
            processing(rt, sentiment, live, service="processing", batch_size=batch), stage
        )
    return await _prediction_builder(runtime, settings)


async def _prediction_builder(runtime: Runtime, settings: StageSettings) -> HandlerBuilder:
    from marketsense.models.predictor import OnnxPredictor, warm_up_predictor
    from marketsense.prediction.consumers import subscriptions as prediction
    from marketsense.prediction.service import PredictorHolder

    def follower(alias: str, holder: PredictorHolder) -> LiveModel[OnnxPredictor]:
        return LiveModel(
            runtime,
            name=settings.predictor_model,
            slot=holder,
            loader=OnnxPredictor,
            warm_up=warm_up_predictor,
            cache_dir=settings.resolved_model_cache_dir() / "stage-run" / alias,
            poll_seconds=settings.model_poll_seconds,
            fallback=settings.resolved_predictor_path() if alias == "production" else None,
            alias=alias,
        )

    served = follower("production", PredictorHolder())
    await _load(served)
    shadow: LiveModel[OnnxPredictor] | None = None
    if settings.prediction_shadow_alias:
        shadow = follower(settings.prediction_shadow_alias, PredictorHolder())
        await shadow.refresh()  # an alias naming no version leaves shadow scoring off
    threshold = settings.signal_threshold
    return lambda rt: _stage_handler(
        prediction(
            rt, served.slot, served, service="prediction", threshold=threshold, shadow=shadow
        ),
        Stage.PREDICT,
    )


async def _load(live: LiveModel[Any]) -> None:
    """Load the production version the registry names, or the local folder when it names none,
    as the service does at start-up; without reporting what is served."""
    outcome = await live.refresh()
    if outcome is Refresh.NOT_REGISTERED and live.fallback is not None:
        model = live.loader(live.fallback)
        live.warm_up(model)
        live.slot.current = model
    if live.slot.current is None:
        raise StageRefused(
            f"no {live.name} model loads (registry or {live.fallback}); "
            "`marketsense models list` shows the registered ones"
        )


def _stage_handler(subscriptions: list[Subscription], stage: Stage) -> Handler:
    """The handler of the subscription that takes the stage's input event."""
    for subscription in subscriptions:
        if subscription.topic == STAGE_TOPICS[stage] and subscription.handler is not None:
            return subscription.handler
    raise AssertionError(f"the {stage} service subscribes no handler to {STAGE_TOPICS[stage]}")


async def _dry(
    runtime: Runtime,
    build: HandlerBuilder,
    envelope: Envelope,
    payload: Payload,
    report: StageReport,
) -> None:
    """Run the handler on a recording store and a transaction rolled back at the end."""
    async with rolled_back_session(runtime.database) as session:
        dry = DryRuntime(runtime, session)
        before = await _snapshot(session, report)
        last_outbox = await _last_outbox_id(session)
        # Whatever state the task is in, the service's claim sees a task to work on.
        await session.execute(
            update(Task)
            .where(Task.run_id == report.run_id, Task.symbol == report.symbol)
            .where(Task.stage == report.stage)
            .values(state=TaskState.PENDING)
        )
        try:
            await build(dry)(envelope, payload)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
        report.reads, report.writes = dry.store.reads, _by_key(dry.store.writes)
        if report.error is None:
            await _record_outcome(session, report, before, last_outbox)


async def _written(
    runtime: Runtime,
    build: HandlerBuilder,
    envelope: Envelope,
    payload: Payload,
    report: StageReport,
) -> None:
    """Run the handler on the real runtime; a failure fails the task as the service's would."""
    store = RecordingStore(runtime.store, write=True)
    runtime.store = store
    async with runtime.database.session() as session:
        before = await _snapshot(session, report)
        last_outbox = await _last_outbox_id(session)
    try:
        await build(runtime)(envelope, payload)
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        async with runtime.database.session() as session:
            attempts = await session.scalar(
                select(Task.attempts).where(
                    Task.run_id == report.run_id,
                    Task.symbol == report.symbol,
                    Task.stage == report.stage,
                )
            )
        await fail_task(runtime, envelope, stage=report.stage, error=exc, attempts=attempts or 0)
    report.reads, report.writes = store.reads, _by_key(store.writes)
    async with runtime.database.session() as session:
        await _record_outcome(session, report, before, last_outbox)


def _by_key(writes: list[ObjectWrite]) -> list[ObjectWrite]:
    """Writes in key order: a handler may write several objects at once, in any order."""
    return sorted(writes, key=lambda item: item.key)


Snapshot = dict[str, dict[Any, tuple[Any, ...]]]
"""Rows of (run, symbol) per output table: id -> the row's values."""


async def _snapshot(session: AsyncSession, report: StageReport) -> Snapshot:
    """The (run, symbol) rows of every output table, read as plain values."""
    found: Snapshot = {}
    for model in OUTPUT_TABLES:
        table = model.__table__
        columns = [c for c in table.columns if c.name not in ("created_at", "updated_at")]
        rows = await session.execute(
            select(*columns).where(table.c.run_id == report.run_id, table.c.symbol == report.symbol)
        )
        found[table.name] = {row[0]: tuple(row) for row in rows}
    return found


async def _last_outbox_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(OutboxMessage.id))) or 0)


async def _record_outcome(
    session: AsyncSession, report: StageReport, before: Snapshot, last_outbox: int
) -> None:
    """Fill in the task's end state, the row changes and the events queued after `last_outbox`."""
    task = (
        await session.execute(
            select(Task.state, Task.notes).where(
                Task.run_id == report.run_id,
                Task.symbol == report.symbol,
                Task.stage == report.stage,
            )
        )
    ).one()
    report.task_after, report.notes = task.state, task.notes
    after = await _snapshot(session, report)
    for name, rows in after.items():
        old = before[name]
        report.rows.append(
            RowChange(
                table=name,
                before=len(old),
                after=len(rows),
                inserted=sum(1 for key in rows if key not in old),
                updated=sum(1 for key, row in rows.items() if key in old and old[key] != row),
            )
        )
    queued = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.id > last_outbox).order_by(OutboxMessage.id)
    )
    for row in queued:
        event = readable(row)
        if event is not None and (event.run_id, event.symbol) == (report.run_id, report.symbol):
            report.events.append(QueuedEvent(topic=row.topic, type=event.type, key=row.key))
