"""Which dependency an error points at, and how the watch waits out and reports an outage."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg.exceptions
import botocore.exceptions
import obstore.exceptions
import pytest
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from prometheus_client import REGISTRY

from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.outages import Dependency, DependencyWatch, suspects

DATABASE, KAFKA, STORE = Dependency.DATABASE, Dependency.KAFKA, Dependency.OBJECT_STORE


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    """An error raised from another, as `raise error from cause` leaves it."""
    error.__cause__ = cause
    return error


def sqlalchemy_wrapped(cause: BaseException, *, invalidated: bool = False) -> BaseException:
    """A driver error as SQLAlchemy raises it, the driver's own as its cause."""
    error = sqlalchemy.exc.DBAPIError("SELECT 1", {}, cause, connection_invalidated=invalidated)
    return raised_from(error, cause)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")),
            {DATABASE},
            id="sqlalchemy-operational",
        ),
        pytest.param(
            sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("closed")),
            {DATABASE},
            id="sqlalchemy-interface",
        ),
        pytest.param(
            sqlalchemy_wrapped(Exception("reset"), invalidated=True),
            {DATABASE},
            id="sqlalchemy-connection-invalidated",
        ),
        pytest.param(
            sqlalchemy_wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed")),
            {DATABASE},
            id="asyncpg-connection-lost",
        ),
        pytest.param(
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            {DATABASE},
            id="asyncpg-starting-up",
        ),
        pytest.param(
            KafkaConnectionError("Unable to bootstrap from localhost:9092"),
            {KAFKA},
            id="kafka-connection",
        ),
        pytest.param(KafkaTimeoutError(), {KAFKA}, id="kafka-timeout"),
        pytest.param(
            raised_from(
                RetryableError("S3 read of s3://b/k failed"),
                obstore.exceptions.GenericError("error sending request: connection refused"),
            ),
            {STORE},
            id="s3-object-call",
        ),
        pytest.param(
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            {STORE},
            id="s3-bucket-call",
        ),
        pytest.param(ConnectionRefusedError(111, "refused"), set(Dependency), id="bare-socket"),
        pytest.param(TimeoutError(), set(Dependency), id="bare-timeout"),
    ],
)
def test_an_infrastructure_error_names_the_dependency_it_may_mean(
    error: BaseException, expected: set[Dependency]
) -> None:
    assert suspects(error) == expected


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(KeyError("close"), id="bug"),
        pytest.param(RetryableError("source answered 503"), id="data-source"),
        pytest.param(
            raised_from(
                NonRetryableError("no task for run r1"),
                sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")),
            ),
            id="handler-gave-up",
        ),
        pytest.param(
            sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
            id="constraint",
        ),
    ],
)
def test_an_error_of_the_event_itself_names_no_dependency(error: BaseException) -> None:
    assert suspects(error) == frozenset()


def roll_back_after_the_server_went_away() -> None:
    """Fail the way a rollback does on a connection the server just closed."""
    try:
        raise asyncpg.exceptions.AdminShutdownError("terminating connection")
    except asyncpg.exceptions.AdminShutdownError:
        raise RuntimeError("rollback failed") from None


def test_a_database_error_raised_while_handling_another_still_counts() -> None:
    with pytest.raises(RuntimeError) as raised:
        roll_back_after_the_server_went_away()

    # `from None` hides the context from tracebacks, but it is still the cause of the failure.
    assert suspects(raised.value) == {DATABASE}


class Switch:
    """A probe whose answer a test sets; it counts its calls."""

    def __init__(self, *, up: bool = True):
        self.up = up
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.up


def gauge(service: str, dependency: Dependency) -> float | None:
    """The current value of `marketsense_dependency_up` for one service and dependency."""
    return REGISTRY.get_sample_value(
        "marketsense_dependency_up", {"service": service, "dependency": dependency}
    )


async def test_only_the_suspected_dependencies_are_probed_and_only_down_ones_named() -> None:
    database, kafka = Switch(up=False), Switch(up=True)
    watch = DependencyWatch(probes={DATABASE: database, KAFKA: kafka})

    assert await watch.down(sqlalchemy.exc.OperationalError("q", {}, Exception())) == [DATABASE]
    assert (database.calls, kafka.calls) == (1, 0)
    assert await watch.down(ConnectionResetError()) == [DATABASE]
    assert kafka.calls == 1
    assert await watch.down(KeyError("bug")) == []


async def test_a_dependency_without_a_probe_is_never_found_down() -> None:
    watch = DependencyWatch(probes={DATABASE: Switch(up=True)})

    assert await watch.down(KafkaConnectionError()) == []


@pytest.mark.parametrize("failure", ["raises", "hangs"])
async def test_a_probe_that_fails_or_hangs_finds_its_dependency_down(failure: str) -> None:
    async def probe() -> bool:
        if failure == "raises":
            raise OSError("no route to host")
        await asyncio.sleep(10)
        return True

    watch = DependencyWatch(probes={STORE: probe}, probe_timeout=0.05)

    assert await watch.down(botocore.exceptions.EndpointConnectionError(endpoint_url="x")) == [
        STORE
    ]


async def test_waiters_resume_once_the_dependency_answers_with_capped_back_off() -> None:
    database = Switch(up=False)
    watch = DependencyWatch(
        probes={DATABASE: database}, backoff_initial=0.01, backoff_max=0.04, probe_reuse=0
    )
    waiters = [asyncio.create_task(watch.wait_until_up([DATABASE])) for _ in range(5)]
    await asyncio.sleep(0.3)
    assert not any(w.done() for w in waiters)
    probes_while_down = database.calls

    database.up = True
    done, _ = await asyncio.wait(waiters, timeout=0.5)

    assert len(done) == 5
    # Five waiters with a 40 ms cap over 300 ms: about 40 probes; uncapped doubling from 10 ms
    # would have made about 25, one per waiter per doubling.
    assert 30 <= probes_while_down <= 200


async def test_one_probe_answer_serves_every_consumer_asking_at_once() -> None:
    database = Switch(up=False)
    watch = DependencyWatch(probes={DATABASE: database}, probe_reuse=60)

    answers = await asyncio.gather(*(watch.is_up(DATABASE) for _ in range(20)))

    assert answers == [False] * 20
    assert database.calls == 1


async def test_an_outage_is_logged_and_gauged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = Switch(up=True)
    watch = DependencyWatch(
        service="unit-outage", probes={DATABASE: database}, backoff_initial=0.01, probe_reuse=0
    )
    caplog.set_level(logging.INFO, logger="marketsense.common.outages")
    assert await watch.is_up(DATABASE)

    database.up = False
    waiters = [asyncio.create_task(watch.wait_until_up([DATABASE])) for _ in range(10)]
    await asyncio.sleep(0.1)
    assert gauge("unit-outage", DATABASE) == 0
    database.up = True
    await asyncio.gather(*waiters)

    assert gauge("unit-outage", DATABASE) == 1
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(messages) == 2
    assert messages[0] == ("ERROR", "database is unreachable; consumers wait for it")
    assert messages[1][0] == "WARNING"
    back = re.fullmatch(r"database is back after (\d+\.\d) s; consumers resume", messages[1][1])
    assert back is not None, messages[1][1]
    # The outage lasted at least the 0.1 s it was down for; how much longer depends on the load.
    assert float(back.group(1)) >= 0.1


async def test_a_watched_dependency_is_gauged_up_before_any_outage() -> None:
    watch = DependencyWatch(service="unit-watched")

    watch.watch(KAFKA, Switch())

    assert gauge("unit-watched", KAFKA) == 1


async def test_waiting_for_a_dependency_can_be_cancelled() -> None:
    watch = DependencyWatch(probes={KAFKA: Switch(up=False)}, backoff_initial=0.01)
    waiter = asyncio.create_task(watch.wait_until_up([KAFKA]))
    await asyncio.sleep(0.05)

    waiter.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiter
