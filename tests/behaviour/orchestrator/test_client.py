"""The orchestrator's client against an orchestrator served on loopback: every method returns the
API's models, and every refusal is an ApiError carrying the status and the server's detail."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from marketsense.common.api_client import ApiError
from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.orchestrator.app import build_app
from marketsense.orchestrator.client import OrchestratorClient
from tests.conftest import TEST_AS_OF
from tests.dead_letters_support import dlq_record, index_record
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import (
    fail_symbol,
    orchestrator_settings,
    served_on_loopback,
    succeed_symbol,
)

DAYS = [TEST_AS_OF - dt.timedelta(days=n) for n in (0, 1, 2)]
"""Three weekdays (Friday to Wednesday), one run each."""


@dataclass(frozen=True)
class Served:
    """An orchestrator on loopback, a key of every role, and a runtime on its database."""

    url: str
    keys: dict[Role, str]
    runtime: Runtime

    def client(self, role: Role | None = Role.PUBLISHER) -> OrchestratorClient:
        """A client sending the key of `role` (none for None)."""
        return OrchestratorClient(self.url, None if role is None else self.keys[role])


@pytest.fixture
async def served(tmp_path: Path, database: Database) -> AsyncIterator[Served]:
    """The orchestrator under uvicorn on an empty database of each kind."""
    settings = orchestrator_settings(tmp_path, database.url)
    runtime = Runtime(settings, service="orchestrator")
    try:
        keys = {role: await new_api_key(runtime.database, role=role) for role in Role}
        with served_on_loopback(build_app(settings)) as url:
            yield Served(url, keys, runtime)
    finally:
        await runtime.database.dispose()


async def test_run_methods_start_list_page_read_retry_and_cancel(served: Served) -> None:
    with served.client() as client:
        started = [client.start_run(day, ["aaa", "BBB"]) for day in DAYS]
        newest = started[-1]
        await succeed_symbol(served.runtime, newest.id, "BBB")
        await fail_symbol(served.runtime, newest.id, "AAA", Stage.PROCESS, "bad parquet")
        first = client.list_runs(limit=2)
        rest = client.list_runs(limit=2, cursor=first.next_cursor)
        failed = client.list_runs(state="FAILED")
        one_day = client.list_runs(as_of=DAYS[1])
        read = client.get_run(newest.id)
        retried = client.retry_run(newest.id, "parquet fixed")
        cancelled = client.cancel_run(newest.id, "giving up")

    assert [(run.as_of, run.state, run.symbols) for run in started] == [
        (day, "RUNNING", 2) for day in DAYS
    ]
    assert [run.id for run in first.items + rest.items] == [run.id for run in started[::-1]]
    assert first.next_cursor is not None
    assert rest.next_cursor is None
    assert [run.id for run in failed.items] == [newest.id]
    assert [run.id for run in one_day.items] == [started[1].id]
    assert read.id == newest.id
    assert read.state == "FAILED"
    assert [(f.symbol, f.stage, f.last_error) for f in read.failed] == [
        ("AAA", "process", "bad parquet")
    ]
    assert (retried.tasks, retried.run.state, retried.run.failed) == (1, "RUNNING", [])
    # AAA's re-queued process task and the predict task after it.
    assert (cancelled.tasks, cancelled.run.state) == (2, "CANCELLED")
    assert cancelled.run.finished_at is not None


async def test_dead_letter_methods_list_filter_page_and_replay(served: Served) -> None:
    rows = [
        await index_record(served.runtime, dlq_record(served.runtime, offset, b"{not json"))
        for offset in range(3)
    ]
    ids = [row.id for row in rows if row is not None]
    with served.client() as client:
        page = client.list_dead_letters(limit=2)
        rest = client.list_dead_letters(limit=2, cursor=page.next_cursor)
        on_topic = client.list_dead_letters(topic="ingest.requested")
        elsewhere = client.list_dead_letters(topic="raw.ready", run_id="run-x")
        replay = client.replay_dead_letters(reason="fixed", ids=[ids[0]])
        replayed = client.list_dead_letters(replayed=True)
        waiting = client.list_dead_letters(replayed=False)
        forced = client.replay_dead_letters(reason="again", ids=ids, force=True)
        with pytest.raises(ApiError) as nothing:
            client.replay_dead_letters(reason="by run", run_id="run-x")

    assert len(ids) == 3
    assert [item.id for item in page.items + rest.items] == ids[::-1]
    assert len(on_topic.items) == 3
    assert elsewhere.items == []
    assert [item.id for item in replay.replayed] == [ids[0]]
    assert replay.skipped == []
    assert [item.id for item in replayed.items] == [ids[0]]
    assert [item.id for item in waiting.items] == [ids[2], ids[1]]
    assert [item.id for item in forced.replayed] == ids
    assert nothing.value.status == 409
    assert "run-x has no dead letters" in nothing.value.detail


async def test_refusals_carry_the_status_and_the_servers_detail(served: Served) -> None:
    with served.client(Role.READER) as reader:
        with pytest.raises(ApiError) as forbidden:
            reader.start_run(TEST_AS_OF, ["AAA"])
        with pytest.raises(ApiError) as unknown:
            # The id is one path segment, even with characters a URL gives meaning to.
            reader.get_run("no such run?state=RUNNING#top")
        with pytest.raises(ApiError) as bad_state:
            reader.list_runs(state="sideways")
    with served.client() as publisher:
        run = publisher.start_run(TEST_AS_OF, ["AAA"])
        with pytest.raises(ApiError) as nothing_failed:
            publisher.retry_run(run.id, "why not")
        with pytest.raises(ApiError) as live:
            publisher.start_run(TEST_AS_OF, ["BBB"])
    with served.client(None) as anonymous, pytest.raises(ApiError) as no_key:
        anonymous.list_dead_letters()

    assert (forbidden.value.status, unknown.value.status, bad_state.value.status) == (403, 404, 422)
    assert "publisher" in forbidden.value.detail
    assert unknown.value.detail == "no run with id no such run?state=RUNNING#top"
    assert "state" in bad_state.value.detail
    assert nothing_failed.value.status == 409
    assert f"run {run.id} has no failed task to retry" in nothing_failed.value.detail
    assert live.value.status == 409
    assert run.id in live.value.detail
    assert no_key.value.status == 401
    assert "X-API-Key" in no_key.value.detail
    assert str(forbidden.value).startswith("403: ")


def test_an_orchestrator_that_is_not_there_is_an_error_without_a_status() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with OrchestratorClient(url, "msk_" + "k" * 40) as client, pytest.raises(ApiError) as down:
        client.list_runs()

    assert down.value.status is None
    assert down.value.detail.startswith(f"cannot reach the orchestrator at {url}")
