"""The orchestrator's run API: keys and roles, one live run per day, listing and run details."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
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
