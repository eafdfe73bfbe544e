"""The service factory: health, readiness and metrics routes, components started and stopped in
order, and what a running app keeps out of the garbage collector's way."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from marketsense.common.app import Component, create_app
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from tests.conftest import eventually


async def test_running_app_freezes_its_start_up_heap_and_releases_it_on_shutdown(
    tmp_path: Path,
) -> None:
    # Full collections that walk every imported module stall every in-flight request under
    # load (bench/RESULTS.md), so a started service freezes what it holds at start-up.
    gc.unfreeze()
    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="factory-test")
    app = create_app(runtime, [], title="factory test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        frozen = gc.get_freeze_count()
        assert (await api.get("/healthz")).status_code == 200
    assert frozen > 10_000
    assert gc.get_freeze_count() == 0


async def never_ready() -> bool:
    """A readiness check of a component whose model is not loaded."""
    return False


async def test_readiness_reports_every_check_and_is_503_while_one_fails(tmp_path: Path) -> None:
    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="factory-test")
    component = Component("scoring", ready_checks={"model": never_ready})
    app = create_app(runtime, [component], title="factory test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        ready = await api.get("/readyz")
        metrics = await api.get("/metrics")

    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "checks": {"database": True, "bus": True, "object_store": True, "model": False},
        "serving": [],
    }
    assert 'route="/readyz"' in metrics.text
    assert 'service="factory-test"' in metrics.text


async def test_readiness_lists_what_each_component_serves_once_it_serves_it(
    tmp_path: Path,
) -> None:
    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="factory-test")
    served: dict[str, Any] = {"model": "m", "version": "3", "variant": "int8", "source": "registry"}
    loaded: list[dict[str, Any]] = []
    components = [
        Component("scoring", serving=[lambda: loaded[0] if loaded else None]),
        Component("ranking", serving=[lambda: None]),
    ]
    app = create_app(runtime, components, title="factory test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        before = (await api.get("/readyz")).json()
        loaded.append(served)
        after = (await api.get("/readyz")).json()

    assert before["serving"] == []
    assert after["serving"] == [served]


async def test_components_start_in_order_and_stop_in_reverse_around_their_loops(
    tmp_path: Path,
) -> None:
    happened: list[str] = []

    def hook(name: str) -> Callable[[], Awaitable[None]]:
        async def record() -> None:
            happened.append(name)

        return record

    async def loop() -> None:
        happened.append("loop")
        await asyncio.Event().wait()  # until the app stops

    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="factory-test")
    first = Component("first", on_start=[hook("start first")], on_stop=[hook("stop first")])
    second = Component(
        "second", on_start=[hook("start second")], on_stop=[hook("stop second")], loops=[loop]
    )
    app = create_app(runtime, [first, second], title="factory test")

    async with app.router.lifespan_context(app):
        await eventually(lambda: "loop" in happened)

    assert happened == ["start first", "start second", "loop", "stop second", "stop first"]


def test_a_components_description_edits_the_openapi_document_once(tmp_path: Path) -> None:
    edits: list[int] = []

    def describe(document: dict[str, Any]) -> None:
        edits.append(1)
        document["info"]["description"] = "limits of this deployment"

    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="factory-test")
    app = create_app(runtime, [Component("x", describe=[describe])], title="factory test")

    assert app.openapi()["info"]["description"] == "limits of this deployment"
    assert app.openapi()["info"]["description"] == "limits of this deployment"
    assert len(edits) == 1
