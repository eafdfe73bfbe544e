"""The orchestrator's run API: keys and roles, one live run per day, listing and run details."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Task
from marketsense.common.states import Stage
from marketsense.orchestrator.runs import service
from marketsense.orchestrator.runs.flows import settle_run
from tests.conftest import TEST_AS_OF
from tests.orchestrator_support import (
    Orchestra,
    fail_symbol,
    orchestrator_settings,
    serve_orchestrator,
    start_run,
    succeed_symbol,
)


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind; half the symbols may fail."""
    settings = orchestrator_settings(tmp_path, database_url, failure_threshold=0.5)
    async with serve_orchestrator(settings) as served:
        yield served


RUN_ROUTES = [
    ("GET", "/v1/runs", None),
    ("GET", "/v1/runs/some-id", None),
    ("POST", "/v1/runs", {"as_of": TEST_AS_OF.isoformat(), "universe": ["AAA"]}),
    ("POST", "/v1/runs/some-id/retry", {"reason": "r"}),
    ("POST", "/v1/runs/some-id/cancel", {"reason": "r"}),
]


@pytest.mark.parametrize(("method", "path", "body"), RUN_ROUTES)
async def test_every_run_route_without_a_key_is_unauthorised(
    orchestra: Orchestra, method: str, path: str, body: object
) -> None:
    response = await orchestra.api.request(method, path, json=body, headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    unknown = await orchestra.api.request(
        method, path, json=body, headers={"X-API-Key": "msk_" + "x" * 40}
    )
    assert unknown.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), RUN_ROUTES[2:])
async def test_changing_a_run_with_a_reader_key_is_forbidden(
    orchestra: Orchestra, method: str, path: str, body: object
) -> None:
    response = await orchestra.api.request(
        method, path, json=body, headers=orchestra.as_role(Role.READER)
    )
    assert response.status_code == 403
    assert "publisher" in response.json()["detail"]
    assert (await orchestra.api.get("/v1/runs")).json()["items"] == []


async def test_reader_key_reads_runs(orchestra: Orchestra) -> None:
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    reader = orchestra.as_role(Role.READER)
    assert (await orchestra.api.get(f"/v1/runs/{run_id}", headers=reader)).json()["state"] == (
        "RUNNING"
    )
    listed = (await orchestra.api.get("/v1/runs", headers=reader)).json()
    assert [r["id"] for r in listed["items"]] == [run_id]


async def test_second_live_run_for_a_day_is_refused_naming_the_live_run(
    orchestra: Orchestra,
) -> None:
    first = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    second = await orchestra.api.post(
        "/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "symbols": ["CCC"]}
    )
    assert second.status_code == 409
    assert first in second.json()["detail"]
    assert len((await orchestra.api.get("/v1/runs")).json()["items"]) == 1

    cancelled = await orchestra.api.post(f"/v1/runs/{first}/cancel", json={"reason": "redo"})
    assert cancelled.status_code == 200, cancelled.text
    # `symbols` still names the universe, for callers written before `universe`.
    again = await orchestra.api.post(
        "/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "symbols": ["CCC"]}
    )
    assert again.status_code == 201, again.text
    assert again.json()["symbols"] == 1


async def test_run_list_is_newest_first_filtered_and_paged(orchestra: Orchestra) -> None:
    back = (TEST_AS_OF - dt.timedelta(days=n) for n in range(10))
    days = sorted(d for d in back if d.weekday() < 5)[-5:]
    created = []
    for day in days:
        run_id = await start_run(orchestra, day, ["AAA"])
        created.append(run_id)
        if len(created) % 2:
            await succeed_symbol(orchestra.runtime, run_id, "AAA")
    for run_id in created[::2]:
        await settle_run(runtime=orchestra.runtime, notifier=orchestra.recorder, run_id=run_id)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await orchestra.api.get("/v1/runs", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]

    running = (await orchestra.api.get("/v1/runs", params={"state": "RUNNING"})).json()
    assert [r["id"] for r in running["items"]] == created[1::2][::-1]
    one_day = (await orchestra.api.get("/v1/runs", params={"as_of": days[0].isoformat()})).json()
    assert [r["id"] for r in one_day["items"]] == [created[0]]
    bad = await orchestra.api.get("/v1/runs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


async def test_partial_run_names_every_failed_symbol_with_stage_attempts_and_error(
    orchestra: Orchestra,
) -> None:
    symbols = ["S000", "S001", "S002", "S003"]
    run_id = await start_run(orchestra, TEST_AS_OF, symbols)
    for symbol in symbols[2:]:
        await succeed_symbol(orchestra.runtime, run_id, symbol)
    await fail_symbol(
        orchestra.runtime,
        run_id,
        "S000",
        Stage.INGEST,
        "source has no bars",
        attempts=3,
        notifier=orchestra.recorder,
    )
    await fail_symbol(
        orchestra.runtime,
        run_id,
        "S001",
        Stage.PREDICT,
        "model refused",
        attempts=2,
        notifier=orchestra.recorder,
    )

    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "PARTIAL"
    assert run["failed"] == [
        {"symbol": "S000", "stage": "ingest", "attempts": 3, "last_error": "source has no bars"},
        {"symbol": "S001", "stage": "predict", "attempts": 2, "last_error": "model refused"},
    ]
    counts = {s["stage"]: s["counts"] for s in run["stages"]}
    assert counts["ingest"] == {"SUCCESS": 3, "FAILED": 1}
    # S000's later stages ended with the run.
    assert counts["predict"] == {"SUCCESS": 2, "SKIPPED": 1, "FAILED": 1}

    [alert] = orchestra.recorder.alerts
    assert alert.key == f"run-ended:{run_id}"
    assert alert.severity == "warning"
    assert "S000: ingest failed after 3 attempts: source has no bars" in alert.text
    assert "S001: predict failed after 2 attempts: model refused" in alert.text
    assert f"marketsense run retry {run_id}" in alert.text
    assert "http" not in alert.text


async def test_racing_starts_for_one_day_create_exactly_one_run(orchestra: Orchestra) -> None:
    body = {"as_of": TEST_AS_OF.isoformat(), "universe": ["AAA", "BBB"]}
    responses = await asyncio.gather(*(orchestra.api.post("/v1/runs", json=body) for _ in range(5)))

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    [winner] = [r.json()["id"] for r in responses if r.status_code == 201]
    for refused in (r for r in responses if r.status_code == 409):
        assert TEST_AS_OF.isoformat() in refused.json()["detail"]
    listed = (await orchestra.api.get("/v1/runs")).json()["items"]
    assert [r["id"] for r in listed] == [winner]


async def test_start_missed_by_the_up_front_check_is_refused_by_the_database(
    orchestra: Orchestra, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    checks: list[dt.date] = []
    real_check = service.live_run_id

    async def blind_first_check(session: AsyncSession, *, as_of: dt.date) -> str | None:
        # As if the other start committed between this one's check and its insert.
        checks.append(as_of)
        return None if len(checks) == 1 else await real_check(session, as_of=as_of)

    monkeypatch.setattr("marketsense.orchestrator.runs.flows.live_run_id", blind_first_check)
    refused = await orchestra.api.post(
        "/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "universe": ["BBB"]}
    )

    assert refused.status_code == 409
    assert first in refused.json()["detail"]
    assert len(checks) == 2
    assert len((await orchestra.api.get("/v1/runs")).json()["items"]) == 1


async def test_a_universe_over_the_limit_is_refused_naming_it_before_any_symbol_is_checked(
    orchestra: Orchestra,
) -> None:
    # Every symbol is invalid: an answer that names them has checked each before counting.
    body = {"as_of": TEST_AS_OF.isoformat(), "universe": [".."] * 100_000}
    refused = await orchestra.api.post("/v1/runs", json=body)

    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "universe"]
    assert error["msg"] == "at most 10000 symbols per request, got 100000"


async def test_the_openapi_document_states_the_symbol_pattern_and_the_configured_limit(
    orchestra: Orchestra,
) -> None:
    spec = (await orchestra.api.get("/openapi.json")).json()
    universe = spec["components"]["schemas"]["RunCreate"]["properties"]["universe"]

    assert universe["maxItems"] == 10_000
    assert universe["items"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9.\\-]{0,15}$"


# A hang guard, not a speed figure: comparing every symbol with every other held the event loop
# for about 6.5 minutes on this list, finding repeats in one pass takes a second or two.
@pytest.mark.timeout(120)
async def test_a_symbol_listed_twice_in_a_long_universe_is_found_without_stalling(
    tmp_path: Path, database: Database, database_url: str
) -> None:
    settings = orchestrator_settings(
        tmp_path, database_url, max_symbols=200_000, http_max_body_kib=4096
    )
    symbols = [f"S{i:06d}" for i in range(100_000)] + ["s000007"]
    async with serve_orchestrator(settings) as orchestra:
        refused = await orchestra.api.post(
            "/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "universe": symbols}
        )

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"] == "symbols listed twice: ['S000007']"


@pytest.mark.parametrize("symbol", ["..", ".", "-", "--", ".-", ".AAPL", " AAPL", "A B", "é"])
async def test_a_symbol_that_is_not_a_ticker_is_refused_naming_its_place(
    orchestra: Orchestra, symbol: str
) -> None:
    refused = await orchestra.api.post(
        "/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "universe": ["AAPL", symbol]}
    )

    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "universe", 1]
    assert "pattern" in error["msg"]
    assert (await orchestra.api.get("/v1/runs")).json()["items"] == []


async def test_symbols_are_run_in_upper_case(orchestra: Orchestra) -> None:
    run_id = await start_run(orchestra, TEST_AS_OF, ["aapl", "BRK.B", "0700"])

    async with orchestra.runtime.database.session() as session:
        symbols = await session.scalars(select(Task.symbol).where(Task.run_id == run_id))
        assert set(symbols) == {"AAPL", "BRK.B", "0700"}


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        (
            "2008-11-27",
            "2008-11-27 is not a XNYS trading day (Thanksgiving) — the next is 2008-11-28",
        ),
        ("2026-11-21", "2026-11-21 is not a XNYS trading day (Saturday) — the next is 2026-11-23"),
        ("2012-10-29", "2012-10-29 is not a XNYS trading day — the next is 2012-10-31"),  # storm
    ],
)
async def test_a_day_the_exchange_does_not_trade_is_refused_naming_the_next_session(
    orchestra: Orchestra, as_of: str, message: str
) -> None:
    refused = await orchestra.api.post("/v1/runs", json={"as_of": as_of, "universe": ["AAPL"]})

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert (error["loc"], error["msg"]) == (["body", "as_of"], message)
    assert (await orchestra.api.get("/v1/runs")).json()["items"] == []


async def test_the_configured_exchange_decides_which_days_are_sessions(
    tmp_path: Path, database: Database, database_url: str
) -> None:
    # 2026-08-31 is a UK bank holiday; New York trades. 2026-09-07 is the reverse (Labor Day).
    settings = orchestrator_settings(tmp_path, database_url, exchange="XLON")
    async with serve_orchestrator(settings) as london:
        refused = await london.api.post(
            "/v1/runs", json={"as_of": "2026-08-31", "universe": ["VOD.L"]}
        )
        started = await london.api.post(
            "/v1/runs", json={"as_of": "2026-09-07", "universe": ["VOD.L"]}
        )

    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["msg"].startswith("2026-08-31 is not a XLON trading day")
    assert refused.json()["detail"][0]["msg"].endswith("the next is 2026-09-01")
    assert started.status_code == 201, started.text


@pytest.mark.parametrize("as_of", [0, "0", "20261120", "0001-01-01", "1970-01-01", "2100-01-04"])
async def test_a_day_that_is_not_an_iso_date_within_bounds_is_refused(
    orchestra: Orchestra, as_of: object
) -> None:
    started = await orchestra.api.post("/v1/runs", json={"as_of": as_of, "universe": ["AAPL"]})
    listed = await orchestra.api.get("/v1/runs", params={"as_of": str(as_of)})

    for refused in (started, listed):
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["detail"]
        assert error["loc"][-1] == "as_of"
        assert "YYYY-MM-DD" in error["msg"] or "outside 1970-01-02 to 2099-12-31" in error["msg"]


def _run_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _run_cursor("runs:0001-01-01T00:00:00+01:00|r1"),
        _run_cursor("runs:2026-11-20T10:00:00|r1"),
        _run_cursor("runs:2026-11-20T10:00:00+00:00|" + "r" * 37),
        "%C2%B2",
        "²",
        "not-a-cursor",
    ],
)
async def test_a_cursor_this_api_did_not_return_is_refused_saying_so(
    orchestra: Orchestra, cursor: str
) -> None:
    refused = await orchestra.api.get("/v1/runs", params={"cursor": cursor})

    assert refused.status_code == 422
    assert "cursor" in str(refused.json()["detail"])
