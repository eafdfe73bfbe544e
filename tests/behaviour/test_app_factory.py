"""The service factory's lifespan: what a running app keeps out of the garbage collector's way."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx

from marketsense.common.app import create_app
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings


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
