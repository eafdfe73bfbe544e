"""A stage's task inside its handler, on SQLite and PostgreSQL: claimed once per attempt,
completed in the handler's transaction, failed and announced once its event is dead-lettered."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import event, select

from marketsense.common.bus import InProcessBus
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage, Run, Task
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import (
    Envelope,
    ObjectRef,
    RawDataReady,
    TaskFailed,
    parse_event,
)
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.common.states import Stage, TaskState
from marketsense.common.tasks import (
    MAX_ERROR_CHARS,
    Claim,
    announce_task_failed,
    claim_task,
    complete_task,
    fail_task,
    keep_notes,
    notes_of,
    stage_subscription,
    task_state,
)
from tests.conftest import eventually

AS_OF = dt.date(2026, 11, 20)
STAGE = Stage.PROCESS


@pytest.fixture
async def runtime(
    database: Database, database_url: str, tmp_path: Path, prefix: str
) -> AsyncIterator[Runtime]:
    """A processing runtime on the test database, one handler attempt per event."""
    settings = CommonSettings(
        home=tmp_path,
        database_url=SecretStr(database_url),
        topic_prefix=prefix,
        handler_max_attempts=1,
    )
    runtime = Runtime(settings, service="processing")
    yield runtime
    await runtime.bus.stop()
    await runtime.relay.stop()
    await runtime.database.dispose()


async def new_task(runtime: Runtime, state: TaskState, *, symbol: str = "AAPL") -> str:
    """A run with one process task in `state` for `symbol`; the run's id."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=AS_OF, state="RUNNING", symbols=1))
        await session.flush()
        session.add(Task(run_id=run_id, symbol=symbol, stage=STAGE, state=state, attempts=0))
    return run_id


async def stored_task(runtime: Runtime, run_id: str, symbol: str = "AAPL") -> Task:
    """The task row as it is now."""
    async with runtime.database.session() as session:
        task = await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == STAGE)
        )
    assert task is not None
    return task


async def announced(runtime: Runtime) -> list[tuple[str, Envelope, TaskFailed]]:
    """Every TaskFailed event waiting in the outbox, with the service that queued it."""
    async with runtime.database.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.topic == TaskFailed.topic)
        rows = (await session.scalars(query.order_by(OutboxMessage.id))).all()
    found = []
    for row in rows:
        envelope, payload = parse_event(row.value)
        assert isinstance(payload, TaskFailed)
        found.append((row.source, envelope, payload))
    return found


def raw_ready(run_id: str | None, symbol: str | None = "AAPL") -> Envelope:
    """The event that starts the process stage of a symbol."""
    ref = ObjectRef(uri=f"s3://bucket/raw/{symbol}.parquet", sha256="ab" * 32, size=10)
    return Envelope.wrap(RawDataReady(as_of=AS_OF, bars=ref, rows=60), run_id=run_id, symbol=symbol)


async def test_claiming_a_pending_task_runs_it_and_counts_the_attempt(runtime: Runtime) -> None:
    run_id = await new_task(runtime, TaskState.PENDING)

    claim = await claim_task(runtime, run_id=run_id, symbol="AAPL", stage=STAGE)

    task = await stored_task(runtime, run_id)
    assert (claim, task.state, task.attempts) == (Claim.WORK, TaskState.RUNNING, 1)


async def test_claiming_a_running_task_again_is_another_attempt_at_the_work(
    runtime: Runtime,
) -> None:
    run_id = await new_task(runtime, TaskState.PENDING)
    await claim_task(runtime, run_id=run_id, symbol="AAPL", stage=STAGE)

    again = await claim_task(runtime, run_id=run_id, symbol="AAPL", stage=STAGE)
    third = await claim_task(runtime, run_id=run_id, symbol="AAPL", stage=STAGE)

    task = await stored_task(runtime, run_id)
    assert (again, third) == (Claim.WORK, Claim.WORK)
    assert (task.state, task.attempts) == (TaskState.RUNNING, 3)


@pytest.mark.parametrize(
    ("state", "claim"),
    [
        (TaskState.SUCCESS, Claim.DONE_ALREADY),
        (TaskState.FAILED, Claim.NOT_WANTED),
        (TaskState.CANCELLED, Claim.NOT_WANTED),
    ],
)
async def test_claiming_a_task_that_is_not_waiting_leaves_it_as_it_is(
    runtime: Runtime, state: TaskState, claim: Claim
) -> None:
    run_id = await new_task(runtime, state)

    assert await claim_task(runtime, run_id=run_id, symbol="AAPL", stage=STAGE) == claim

    task = await stored_task(runtime, run_id)
    assert (task.state, task.attempts) == (state, 0)


async def test_claiming_a_task_that_does_not_exist_is_not_retried(runtime: Runtime) -> None:
    run_id = await new_task(runtime, TaskState.PENDING)

    with pytest.raises(NonRetryableError, match=f"no process task for run {run_id} and symbol X"):
        await claim_task(runtime, run_id=run_id, symbol="X", stage=STAGE)
    async with runtime.database.session() as session:
        assert await task_state(session, run_id=run_id, symbol="X", stage=STAGE) is None
        assert await task_state(session, run_id=run_id, symbol="AAPL", stage=Stage.PREDICT) is None


@pytest.mark.parametrize(
    ("notes", "stored"),
    [
        pytest.param(None, None, id="none"),
        pytest.param([], None, id="empty"),
        pytest.param(
            ["dropped 2 bars with zero volume", "3 texts had no date"],
            "dropped 2 bars with zero volume\n3 texts had no date",
            id="two",
        ),
        pytest.param(["x" * 5000, "y" * 5000], "x" * 5000 + "\n" + "y" * 2999, id="over-8000"),
    ],
)
async def test_completing_a_running_task_keeps_its_notes_one_per_line(
    runtime: Runtime, notes: list[str] | None, stored: str | None
) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)

    async with runtime.transaction() as session:
        await complete_task(session, run_id=run_id, symbol="AAPL", stage=STAGE, notes=notes)

    task = await stored_task(runtime, run_id)
    assert (task.state, task.notes) == (TaskState.SUCCESS, stored)


@pytest.mark.parametrize("state", [TaskState.CANCELLED, TaskState.PENDING, TaskState.SUCCESS])
async def test_completing_a_task_that_is_no_longer_running_is_refused(
    runtime: Runtime, state: TaskState
) -> None:
    run_id = await new_task(runtime, state)

    async with runtime.database.session() as session:
        with pytest.raises(NonRetryableError, match="process task for AAPL is no longer RUNNING"):
            await complete_task(session, run_id=run_id, symbol="AAPL", stage=STAGE, notes=["n"])

    task = await stored_task(runtime, run_id)
    assert (task.state, task.notes) == (state, None)


async def test_a_task_failed_for_good_is_announced_in_the_callers_transaction(
    runtime: Runtime,
) -> None:
    async with runtime.transaction() as session:
        announce_task_failed(
            session,
            source="processing",
            run_id="r1",
            symbol="AAPL",
            stage=STAGE,
            error="E" * (MAX_ERROR_CHARS + 500),
            retryable=True,
            attempts=3,
        )

    [(source, envelope, payload)] = await announced(runtime)
    assert (source, envelope.run_id, envelope.symbol) == ("processing", "r1", "AAPL")
    assert payload == TaskFailed(
        stage="process", error="E" * MAX_ERROR_CHARS, retryable=True, attempts=3
    )


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(RetryableError("store timed out"), True), (NonRetryableError("bars are corrupt"), False)],
)
async def test_failing_a_running_task_records_the_error_and_announces_it_once(
    runtime: Runtime, error: Exception, retryable: bool
) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)
    envelope = raw_ready(run_id)

    await fail_task(runtime, envelope, stage=STAGE, error=error, attempts=3)
    await fail_task(runtime, envelope, stage=STAGE, error=error, attempts=3)

    task = await stored_task(runtime, run_id)
    reason = f"{type(error).__name__}: {error}"
    assert (task.state, task.last_error, task.notes) == (TaskState.FAILED, reason, None)
    [(source, announcement, payload)] = await announced(runtime)
    assert (source, announcement.run_id, announcement.symbol) == ("processing", run_id, "AAPL")
    assert payload == TaskFailed(stage="process", error=reason, retryable=retryable, attempts=3)


async def test_a_failed_task_keeps_the_notes_recorded_before_the_failure(
    runtime: Runtime,
) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)
    error = NonRetryableError("files has no bars for AAPL up to 2026-11-20")
    assert notes_of(keep_notes(error, [])) == []  # no notes, nothing attached
    keep_notes(error, ["AAPL: dropped 2 rows dated on days XNYS does not trade"])
    keep_notes(error, ["AAPL: volume is 0 on each of the last 20 bars"])  # notes add up

    await fail_task(runtime, raw_ready(run_id), stage=STAGE, error=error, attempts=1)

    task = await stored_task(runtime, run_id)
    assert (task.state, task.last_error) == (TaskState.FAILED, f"NonRetryableError: {error}")
    assert task.notes == (
        "AAPL: dropped 2 rows dated on days XNYS does not trade\n"
        "AAPL: volume is 0 on each of the last 20 bars"
    )


async def test_notes_of_work_that_fails_through_the_bus_are_kept_on_its_task(
    runtime: Runtime,
) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        raise keep_notes(NonRetryableError("no bars"), [f"{symbol}: prices are flat"])

    runtime.bus.subscribe(
        stage_subscription(
            runtime, stage=STAGE, service="processing", accepts=RawDataReady, work=work
        )
    )
    await runtime.bus.start()

    await runtime.bus.publish(raw_ready(run_id))

    async def failed() -> bool:
        return (await stored_task(runtime, run_id)).state == TaskState.FAILED

    await eventually(failed)
    assert (await stored_task(runtime, run_id)).notes == "AAPL: prices are flat"


async def test_failing_keeps_the_first_characters_of_a_huge_error(runtime: Runtime) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)

    await fail_task(
        runtime, raw_ready(run_id), stage=STAGE, error=ValueError("v" * 100_000), attempts=1
    )

    task = await stored_task(runtime, run_id)
    assert task.last_error == "ValueError: " + "v" * (MAX_ERROR_CHARS - len("ValueError: "))
    [(_, _, payload)] = await announced(runtime)
    assert payload.error == task.last_error


async def test_failing_a_cancelled_task_or_an_event_without_a_task_changes_nothing(
    runtime: Runtime,
) -> None:
    run_id = await new_task(runtime, TaskState.CANCELLED)
    error = RetryableError("late")

    await fail_task(runtime, raw_ready(run_id), stage=STAGE, error=error, attempts=1)
    await fail_task(runtime, raw_ready(None), stage=STAGE, error=error, attempts=1)
    await fail_task(runtime, raw_ready(run_id, None), stage=STAGE, error=error, attempts=1)

    task = await stored_task(runtime, run_id)
    assert (task.state, task.last_error) == (TaskState.CANCELLED, None)
    assert await announced(runtime) == []


async def test_a_stage_subscription_hands_the_work_its_typed_payload(runtime: Runtime) -> None:
    seen: list[tuple[str, str, RawDataReady]] = []

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        seen.append((run_id, symbol, payload))

    subscription = stage_subscription(
        runtime, stage=STAGE, service="processing", accepts=RawDataReady, work=work
    )
    runtime.bus.subscribe(subscription)
    await runtime.bus.start()
    event = raw_ready("r1")

    await runtime.bus.publish(event)

    await eventually(lambda: seen)
    assert (subscription.topic, subscription.group) == ("raw.ready", runtime.group("processing"))
    assert seen == [("r1", "AAPL", event.typed())]


async def test_an_event_the_stage_cannot_handle_fails_its_task_once_dead_lettered(
    runtime: Runtime,
) -> None:
    run_id = await new_task(runtime, TaskState.RUNNING)

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        raise NonRetryableError(f"bars of {symbol} are corrupt")

    runtime.bus.subscribe(
        stage_subscription(
            runtime, stage=STAGE, service="processing", accepts=RawDataReady, work=work
        )
    )
    await runtime.bus.start()

    await runtime.bus.publish(raw_ready(run_id))

    async def failed() -> bool:
        return (await stored_task(runtime, run_id)).state == TaskState.FAILED

    await eventually(failed)
    task = await stored_task(runtime, run_id)
    assert task.last_error == "NonRetryableError: bars of AAPL are corrupt"
    [(_, _, payload)] = await announced(runtime)
    assert (payload.retryable, payload.attempts) == (False, 1)


async def test_an_event_without_run_or_symbol_is_dead_lettered_before_the_work(
    runtime: Runtime,
) -> None:
    calls: list[str] = []
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        calls.append(symbol)

    bus.subscribe(
        stage_subscription(
            runtime, stage=STAGE, service="processing", accepts=RawDataReady, work=work
        )
    )
    await runtime.start_messaging()

    await bus.publish(raw_ready("r1", None))

    dead = bus.topic_name("raw.ready.dlq")
    await eventually(lambda: bus.logs[dead])
    [letter] = bus.logs[dead]
    assert letter.header("x-dlq-error") == "NonRetryableError: raw.ready needs run_id and symbol"
    assert calls == []


class Outage:
    """Takes the runtime's database away: every statement fails as on a refused connection."""

    def __init__(self, runtime: Runtime):
        self.down = False
        self.refused = 0
        event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", self._check)
        # Short back-off so the test notices the return at once.
        runtime.bus.dependencies.backoff_initial = 0.02
        runtime.bus.dependencies.backoff_max = 0.1
        runtime.bus.dependencies.probe_reuse = 0

    def _check(self, *_args: object) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError(111, "Connect call failed")


async def test_a_dead_letter_is_sent_once_with_the_tasks_failure_or_not_at_all(
    runtime: Runtime,
) -> None:
    # The database fails just as the event is dead-lettered: neither the dead letter nor the
    # failure may exist while it is away, and exactly one of each once it is back.
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    run_id = await new_task(runtime, TaskState.RUNNING)
    outage = Outage(runtime)

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        outage.down = True
        raise NonRetryableError(f"bars of {symbol} are corrupt")

    bus.subscribe(
        stage_subscription(
            runtime, stage=STAGE, service="processing", accepts=RawDataReady, work=work
        )
    )
    await runtime.start()  # the local store's folder too: its probe must find it
    event_ = raw_ready(run_id)

    await bus.publish(event_)
    await eventually(lambda: outage.refused >= 20)
    dead = bus.logs[bus.topic_name("raw.ready.dlq")]
    announced_on_bus = bus.logs[bus.topic_name(TaskFailed.topic)]
    assert dead == []
    assert announced_on_bus == []
    outage.down = False

    async def failed() -> bool:
        return (await stored_task(runtime, run_id)).state == TaskState.FAILED

    await eventually(failed)
    await eventually(lambda: dead and announced_on_bus)
    await asyncio.sleep(0.3)  # a second copy would be sent by now
    [letter] = dead
    [source] = bus.logs[bus.topic_name("raw.ready")]
    assert (letter.key, letter.value) == ("AAPL", event_.to_bytes())
    assert {name: letter.header(name) for name, _ in letter.headers} == {
        "x-dlq-original-topic": bus.topic_name("raw.ready"),
        "x-dlq-original-partition": "0",
        "x-dlq-original-offset": str(source.offset),
        "x-dlq-error": "NonRetryableError: bars of AAPL are corrupt",
        "x-dlq-attempts": "1",
        "x-dlq-failed-at": letter.header("x-dlq-failed-at"),
    }
    assert len(announced_on_bus) == 1
    task = await stored_task(runtime, run_id)
    assert task.last_error == "NonRetryableError: bars of AAPL are corrupt"
