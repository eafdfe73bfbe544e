"""The monitoring API on stored history: figures equal to the window functions on the same rows,
pages that cover the series once, refusals that name the fix, and keys by role."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketsense.common.app import create_app
from marketsense.common.auth import KEY_HEADER
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.monitoring.app import create_component
from marketsense.monitoring.windows import window_figures
from tests.model_registry_rows import new_api_key
from tests.monitoring_api_support import History, monitoring_settings, store_history


@dataclass(frozen=True)
class Api:
    """The monitoring app on a database with stored history, and a reader's client."""

    client: httpx.AsyncClient
    history: History


@pytest.fixture
async def api(database: Database, tmp_path: Path) -> AsyncIterator[Api]:
    """Monitoring alone, with two versions' history of a model no other test uses."""
    model = f"predictor-{uuid.uuid4().hex[:8]}"
    settings = monitoring_settings(tmp_path / "home", database.url, monitored_model=model)
    runtime = Runtime(settings, service="monitoring")
    history = await store_history(database, model)
    app = create_app(runtime, [create_component(runtime, settings)], title="test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        client.headers[KEY_HEADER] = await new_api_key(runtime.database)
        yield Api(client, history)


def _expected(history: History, version: str, window: int) -> dict[str, Any]:
    """The window figures computed here, on the rows the test stored, as JSON would carry them."""
    figures = window_figures(history.daily[version], window)
    assert figures is not None
    found = dataclasses.asdict(figures)
    for key in ("first_day", "last_day"):
        found[key] = found[key].isoformat()
    return found


def _close(got: object, want: object) -> bool:
    """Equal, floats to 1e-12 relative (JSON round trip), None only where undefined."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_close(got[k], v) for k, v in want.items())
    if isinstance(want, float) and want is not None:
        return isinstance(got, float) and math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
    return got == want


async def test_performance_shows_production_then_challenger_with_the_window_figures(
    api: Api,
) -> None:
    answer = await api.client.get("/v1/performance")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == api.history.model
    assert body["windows"] == [21, 63, 252]
    assert [(v["version"], v["aliases"]) for v in body["versions"]] == [
        ("1", ["production"]),
        ("2", []),
    ]
    for shown in body["versions"]:
        assert [w["window"] for w in shown["windows"]] == [21, 63, 252]
        for figures in shown["windows"]:
            want = _expected(api.history, shown["version"], figures["window"])
            assert _close(figures, want), (figures, want)
    # The challenger has 40 days, so its 63- and 252-day windows hold only those.
    assert [w["days"] for w in body["versions"][1]["windows"]] == [21, 40, 40]


async def test_performance_of_one_version_and_window(api: Api) -> None:
    answer = await api.client.get("/v1/performance", params={"version": "2", "window": 63})
    assert answer.status_code == 200, answer.text
    (shown,) = answer.json()["versions"]
    (figures,) = shown["windows"]
    assert _close(figures, _expected(api.history, "2", 63))


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"model": "no-such-model"}, 404, "model 'no-such-model' has no stored performance"),
        ({"version": "9"}, 404, "versions with figures: 1, 2"),
        ({"window": 30}, 422, "performance_windows lists 21, 63, 252"),
        ({"window": 1}, 422, "window"),
    ],
)
async def test_performance_refusals_name_the_fix(
    api: Api, params: dict[str, Any], status: int, words: str
) -> None:
    answer = await api.client.get("/v1/performance", params=params)
    assert answer.status_code == status
    assert words in answer.text


async def test_daily_pages_cover_the_series_once_newest_first(api: Api) -> None:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"version": "1", "limit": 30}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/performance/daily", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    stored = api.history.daily["1"]
    assert [row["day"] for row in seen] == [d.isoformat() for d in reversed(stored.index)]
    by_day = dict(
        zip([d.isoformat() for d in stored.index], stored.to_dict("records"), strict=True)
    )
    for row in seen:
        want = by_day[row["day"]]
        assert row["strategy_return"] == pytest.approx(want["strategy_return"], rel=1e-12)
        if math.isnan(want["ic"]):
            assert row["ic"] is None
        else:
            assert row["ic"] == pytest.approx(want["ic"], rel=1e-12)


async def test_daily_defaults_to_the_version_judged_last(api: Api) -> None:
    page = (await api.client.get("/v1/performance/daily", params={"limit": 5})).json()
    # Both versions end on the same day; the order of monitored_versions then decides.
    assert page["version"] in {"1", "2"}
    assert len(page["items"]) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "2008-13-45"}, "cursor"),
        ({"cursor": "yesterday"}, "cursor"),
        ({"cursor": "1"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
async def test_a_bad_daily_cursor_or_limit_is_refused_naming_it(
    api: Api, params: dict[str, Any], field: str
) -> None:
    answer = await api.client.get("/v1/performance/daily", params=params)
    assert answer.status_code == 422
    assert field in answer.text


async def test_drift_lists_the_newest_run_first_a_page_at_a_time(api: Api) -> None:
    whole = (await api.client.get("/v1/drift", params={"model": api.history.model})).json()
    days = [row["as_of"] for row in whole["items"]]
    assert days == sorted(days, reverse=True)
    assert len(days) == 16
    assert whole["next_cursor"] is None
    newest = [row for row in whole["items"] if row["as_of"] == days[0]]
    assert {row["feature"]: row["drifted"] for row in newest} == {
        "ret_1d": True,
        "ret_5d": True,
        "sentiment_mean": True,
        "volatility_20d": True,
    }
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"model": api.history.model, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/drift", params=params)).json()
        paged.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["items"]
    run = whole["items"][-1]["run_id"]
    one = (await api.client.get("/v1/drift", params={"run_id": run, "limit": 2})).json()
    assert [row["run_id"] for row in one["items"]] == [run, run]
    refused = await api.client.get("/v1/drift", params={"cursor": "bm90IGEgY3Vyc29y"})
    assert refused.status_code == 422
    assert "cursor" in refused.text


async def test_decay_alerts_page_newest_first(api: Api) -> None:
    first = (await api.client.get("/v1/decay-alerts", params={"limit": 1})).json()
    assert len(first["items"]) == 1
    assert first["next_cursor"] is not None
    second = (
        await api.client.get(
            "/v1/decay-alerts", params={"limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["next_cursor"] is None
    days = [first["items"][0]["day"], second["items"][0]["day"]]
    assert days[0] > days[1]
    refused = await api.client.get("/v1/decay-alerts", params={"cursor": "abc"})
    assert refused.status_code == 422
    assert "cursor" in refused.text


@pytest.mark.parametrize(
    "path", ["/v1/performance", "/v1/performance/daily", "/v1/drift", "/v1/decay-alerts"]
)
async def test_every_route_needs_a_key(api: Api, path: str) -> None:
    without = await api.client.get(path, headers={KEY_HEADER: ""})
    assert without.status_code == 401
    unknown = await api.client.get(path, headers={KEY_HEADER: "msk_" + "x" * 40})
    assert unknown.status_code == 401
