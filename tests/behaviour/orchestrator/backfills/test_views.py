"""The backfill API: one run of kind backfill over a range's sessions, its bounds, and the same
request answered with the same run."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.events import IngestRequested
from marketsense.common.states import Stage
from tests.conftest import TEST_AS_OF, eventually
from tests.orchestrator_support import (
    Orchestra,
    fail_symbol,
    orchestrator_settings,
    serve_orchestrator,
    start_run,
    succeed_symbol,
)

START = dt.date(2026, 10, 22)
"""A Thursday; to TEST_AS_OF (Friday 2026-11-20) are 22 XNYS sessions."""
SESSIONS = 22
SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind; one symbol in three may fail."""
    settings = orchestrator_settings(tmp_path, database_url, failure_threshold=0.34)
    async with serve_orchestrator(settings) as served:
        yield served


def _body(start: dt.date = START, end: dt.date = TEST_AS_OF, **more: object) -> dict[str, object]:
    return {"start": start.isoformat(), "end": end.isoformat(), "symbols": SYMBOLS, **more}


async def test_backfill_is_one_run_that_requests_each_symbols_whole_range(
    orchestra: Orchestra,
) -> None:
    created = await orchestra.api.post("/v1/backfills", json=_body(reason="history for training"))

    assert created.status_code == 201, created.text
    body = created.json()
    run = body["run"]
    assert (run["kind"], run["start"], run["as_of"]) == (
        "backfill",
        START.isoformat(),
        "2026-11-20",
    )
    assert (run["state"], run["symbols"], body["sessions"], body["predictions"]) == (
        "RUNNING",
        3,
        SESSIONS,
        0,
    )
    assert body["notes"] == []
    assert all(sum(s["counts"].values()) == 3 for s in run["stages"])

    await eventually(lambda: len(orchestra.recorder.of(IngestRequested, run["id"])) == 3)
    requests = orchestra.recorder.of(IngestRequested, run["id"])
    assert sorted(symbol or "" for symbol, _ in requests) == SYMBOLS
    assert all(isinstance(r, IngestRequested) for _, r in requests)
    assert {(r.start, r.as_of, r.lookback_days) for _, r in requests} == {  # type: ignore[attr-defined]
        (START, TEST_AS_OF, orchestra.settings.lookback_days)
    }
    listed = (await orchestra.api.get("/v1/runs")).json()["items"]
    assert [(r["kind"], r["start"]) for r in listed] == [("backfill", START.isoformat())]
    fetched = await orchestra.api.get(
        f"/v1/backfills/{run['id']}", headers=orchestra.as_role(Role.READER)
    )
    assert fetched.status_code == 200
    assert fetched.json()["run"]["id"] == run["id"]


async def test_days_that_are_no_sessions_move_inward_with_a_note(orchestra: Orchestra) -> None:
    # Saturday 2026-10-24 to Thanksgiving 2026-11-26.
    created = await orchestra.api.post(
        "/v1/backfills", json=_body(dt.date(2026, 10, 24), dt.date(2026, 11, 26))
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["run"]["start"], body["run"]["as_of"]) == ("2026-10-26", "2026-11-25")
    assert len(body["notes"]) == 2
    assert "2026-10-24" in body["notes"][0]
    assert "2026-10-26" in body["notes"][0]
    assert "2026-11-26" in body["notes"][1]
    assert "2026-11-25" in body["notes"][1]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_body(TEST_AS_OF, START), "after end"),
        (_body(end=dt.date.today() + dt.timedelta(days=3)), "in the future"),
        (_body(dt.date(2026, 11, 26), dt.date(2026, 11, 26)), "no XNYS trading session"),
        (_body(dt.date(1990, 1, 2), dt.date(2015, 1, 2)), "at most 5000"),
        (_body(dt.date(1969, 12, 1)), "outside"),
        ({**_body(), "symbols": ["AAA", "aaa"]}, "listed twice"),
        ({**_body(), "symbols": ["not a symbol"]}, "pattern"),
        ({**_body(), "symbols": []}, "at least 1"),
        (_body(failure_threshold=1.5), "less than or equal to 1"),
        ({**_body(), "failure_threshold": False}, "valid number"),
    ],
)
async def test_bad_backfill_requests_are_refused_naming_what_to_fix(
    orchestra: Orchestra, body: dict[str, object], expected: str
) -> None:
    response = await orchestra.api.post("/v1/backfills", json=body)

    assert response.status_code == 422, response.text
    assert expected in response.text
    assert (await orchestra.api.get("/v1/runs")).json()["items"] == []


async def test_starting_a_backfill_needs_a_publisher_key(orchestra: Orchestra) -> None:
    reader = await orchestra.api.post(
        "/v1/backfills", json=_body(), headers=orchestra.as_role(Role.READER)
    )
    anonymous = await orchestra.api.post("/v1/backfills", json=_body(), headers={"X-API-Key": ""})

    assert (reader.status_code, anonymous.status_code) == (403, 401)


async def test_the_same_request_returns_its_run_and_a_daily_run_is_not_blocked(
    orchestra: Orchestra,
) -> None:
    first = await orchestra.api.post("/v1/backfills", json=_body())
    again = await orchestra.api.post("/v1/backfills", json={**_body(), "symbols": SYMBOLS[::-1]})
    daily = await start_run(orchestra, TEST_AS_OF, ["AAA"])

    assert (first.status_code, again.status_code) == (201, 200)
    run_id = first.json()["run"]["id"]
    assert again.json()["run"]["id"] == run_id
    # Nothing was lost yet, but a live run's waiting tasks are sent again: the caller may have
    # died with the process that held their events.
    assert again.json()["tasks_requeued"] == 3
    runs = (await orchestra.api.get("/v1/runs")).json()["items"]
    assert {r["id"] for r in runs} == {run_id, daily}
    # A daily run does not block a backfill either, nor a second backfill of other symbols.
    other = await orchestra.api.post("/v1/backfills", json={**_body(), "symbols": ["DDD"]})
    assert other.status_code == 201


async def test_the_same_request_after_a_partial_end_retries_the_failed_symbol(
    orchestra: Orchestra,
) -> None:
    run_id = (await orchestra.api.post("/v1/backfills", json=_body())).json()["run"]["id"]
    await succeed_symbol(orchestra.runtime, run_id, "AAA")
    await succeed_symbol(orchestra.runtime, run_id, "BBB")
    await fail_symbol(
        orchestra.runtime, run_id, "CCC", Stage.PROCESS, "source down", notifier=orchestra.recorder
    )
    ended = (await orchestra.api.get(f"/v1/backfills/{run_id}")).json()["run"]
    assert ended["state"] == "PARTIAL"
    assert len(orchestra.recorder.alerts) == 1

    again = await orchestra.api.post("/v1/backfills", json=_body())

    assert again.status_code == 200, again.text
    assert again.json()["run"]["id"] == run_id
    assert again.json()["run"]["state"] == "RUNNING"
    assert again.json()["tasks_requeued"] == 1


async def test_a_cancelled_backfill_is_started_anew_by_the_same_request(
    orchestra: Orchestra,
) -> None:
    run_id = (await orchestra.api.post("/v1/backfills", json=_body())).json()["run"]["id"]
    await orchestra.api.post(f"/v1/runs/{run_id}/cancel", json={"reason": "wrong range"})

    again = await orchestra.api.post("/v1/backfills", json=_body())

    assert again.status_code == 201
    assert again.json()["run"]["id"] != run_id


async def test_a_daily_run_is_no_backfill(orchestra: Orchestra) -> None:
    daily = await start_run(orchestra, TEST_AS_OF, ["AAA"])

    assert (await orchestra.api.get(f"/v1/backfills/{daily}")).status_code == 404
    assert (await orchestra.api.get("/v1/backfills/nope")).status_code == 404
