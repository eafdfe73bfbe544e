"""LiveModel follows the registry's production alias: promotions (or the periodic check) swap
the served model, versions that cannot be served leave the old one serving, a local folder serves
while nothing is promoted."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from marketsense.common.db.models import ModelServing, ModelVersion
from marketsense.common.errors import RetryableError
from marketsense.common.events import Envelope, ModelPromoted, ObjectRef
from marketsense.common.runtime import Runtime
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.live import LiveModel, LiveModelSettings, Refresh, Source
from marketsense.models.predictor import OnnxPredictor, warm_up_predictor
from marketsense.models.serving_reports import ServingReport
from marketsense.models.slot import ModelSlot
from marketsense.models.versions import dump_files, version_files
from marketsense.prediction.config import PredictionSettings
from tests import live_support
from tests.artifacts import small_predictor
from tests.conftest import INTEGRATION, TEST_AS_OF, eventually
from tests.model_registry_rows import (
    new_api_key,
    processed_run,
    promote,
    publish,
    register_version,
    unloadable_copy,
)

AS_OF = TEST_AS_OF


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> dict[str, object]:
    """Settings of the embedded default (SQLite, folder, in-process bus) or the real servers."""
    return live_support.live_backend(request, tmp_path, prefix)


@pytest.fixture
async def api() -> AsyncIterator[live_support.Clients]:
    """Clients for apps under test, closed afterwards."""
    async with live_support.app_clients() as clients:
        yield clients


class _Callers:
    """Downstream callers of `GET latest`, recording every status and version they got."""

    def __init__(self, client: httpx.AsyncClient, symbols: list[str], key: str):
        self.client, self.symbols, self.key = client, symbols, key
        self.answers: list[tuple[int, str]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _call(self) -> None:
        i = 0
        while not self._stop.is_set():
            symbol = self.symbols[i % len(self.symbols)]
            i += 1
            response = await self.client.get(
                f"/v1/predictions/{symbol}/latest", headers={"X-API-Key": self.key}
            )
            version = response.json().get("model_version", "")
            self.answers.append((response.status_code, version))
            # Pacing, so the served app's background work gets the event loop too.
            await asyncio.sleep(0.005)

    def start(self) -> None:
        """Start calling."""
        self._task = asyncio.create_task(self._call())

    async def stop(self) -> None:
        """Stop after the request in flight."""
        self._stop.set()
        assert self._task is not None
        await self._task


async def test_versions_that_cannot_be_served_leave_the_old_predictor_answering(
    backend: dict[str, object], tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    app = live_support.prediction_app(tmp_path, name, **backend)
    runtime: Runtime = app.state.runtime
    v1_dir = small_predictor(tmp_path / "v1", seed=1)
    symbols = live_support.symbols(2)
    await runtime.start_storage()
    await publish(runtime, name=name, folder=v1_dir)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        await eventually(live_support.all_at(client, symbols, key, "1"))
        callers = _Callers(client, symbols, key)
        callers.start()
        swaps = live_support.swaps("prediction", name)

        # Version 2's model.onnx was overwritten in the store after registration: its bytes no
        # longer match the registered sha256.
        corrupted = await register_version(
            runtime, name=name, kind="predictor", folder=small_predictor(tmp_path / "v2", seed=2)
        )
        await runtime.store.put(f"models/{name}/{corrupted}/{MODEL_FILE}", b"tampered bytes")
        await promote(runtime, name=name, version=corrupted)
        await eventually(
            lambda: live_support.failures("prediction", name, str(corrupted)) == 1, timeout=10
        )

        # Version 3's bytes verify, but they are not an ONNX graph.
        unloadable = await publish(
            runtime, name=name, folder=unloadable_copy(v1_dir, tmp_path / "v3")
        )
        await eventually(
            lambda: live_support.failures("prediction", name, str(unloadable)) == 1, timeout=10
        )

        await callers.stop()
        ready = (await client.get("/readyz")).json()

    assert callers.answers, "the callers made no request"
    assert {answer for answer in callers.answers} == {(200, "1")}
    assert (
        live_support.served("prediction", name, "1") is None
    )  # the app stopped: it serves nothing now
    assert live_support.swaps("prediction", name) == swaps
    assert ready["checks"]["predictor"] is True


async def test_a_version_that_failed_is_tried_again_only_after_the_alias_moves_again(
    tmp_path: Path,
) -> None:
    name = live_support.unique("predictor")
    settings = PredictionSettings(home=tmp_path / "home", predictor_model=name)
    runtime = Runtime(settings, service="prediction")
    await runtime.start_storage()
    slot = ModelSlot[OnnxPredictor]()
    live = LiveModel(
        runtime,
        name=name,
        slot=slot,
        loader=OnnxPredictor,
        warm_up=warm_up_predictor,
        cache_dir=tmp_path / "cache",
        poll_seconds=3600,
    )
    v1_dir = small_predictor(tmp_path / "v1", seed=1)
    try:
        assert await live.refresh() is Refresh.NOT_REGISTERED
        await publish(runtime, name=name, folder=v1_dir, announce=False)
        assert await live.refresh() is Refresh.SWAPPED
        served = slot.current
        assert served is not None
        assert (served.manifest.name, served.manifest.version) == (name, "1")
        assert await live.refresh() is Refresh.UNCHANGED

        bad = await publish(
            runtime, name=name, folder=unloadable_copy(v1_dir, tmp_path / "bad"), announce=False
        )
        assert await live.refresh() is Refresh.FAILED
        # Every later poll sees the same failed promotion and leaves it alone.
        assert await live.refresh() is Refresh.UNCHANGED
        assert live_support.failures("prediction", name, str(bad)) == 1
        assert slot.current is served

        await promote(runtime, name=name, version=bad, announce=False)  # promoted again
        assert await live.refresh() is Refresh.FAILED
        assert live_support.failures("prediction", name, str(bad)) == 2
        assert slot.current is served

        # Downloads of versions no longer served are removed, but for the one before.
        for seed in (4, 5):
            await publish(
                runtime,
                name=name,
                folder=small_predictor(tmp_path / f"good{seed}", seed=seed),
                announce=False,
            )
            assert await live.refresh() is Refresh.SWAPPED
        cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / name).iterdir())
        assert cached == ["3", "4"]
    finally:
        await live.stop()
        await runtime.stop()


async def test_local_folder_serves_while_the_registry_has_no_production_version(
    tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    local = small_predictor(tmp_path / "local", seed=3, name="local-predictor", version="7")
    app = live_support.prediction_app(tmp_path, name, predictor_path=local)
    runtime: Runtime = app.state.runtime
    symbols = live_support.symbols(1)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        assert live_support.served("prediction", name, "7", source="local") == 1
        await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        await eventually(live_support.all_at(client, symbols, key, "7"))

        await publish(runtime, name=name, folder=small_predictor(tmp_path / "v1", seed=1))
        # Once the registry has a production version, it replaces the local folder.
        await eventually(live_support.all_at(client, symbols, key, "1"), timeout=10)
        assert live_support.served("prediction", name, "7", source="local") is None
        assert live_support.served("prediction", name, "1") == 1


async def test_the_periodic_check_heals_a_promotion_whose_event_was_lost(
    tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    app = live_support.prediction_app(tmp_path, name, model_poll_seconds=0.2)
    runtime: Runtime = app.state.runtime
    await runtime.start_storage()
    for seed in (1, 2):
        await register_version(
            runtime,
            name=name,
            kind="predictor",
            folder=small_predictor(tmp_path / f"v{seed}", seed=seed),
        )
    await promote(runtime, name=name, version=1)
    async with app.router.lifespan_context(app):
        api(app)
        assert live_support.served("prediction", name, "1") == 1
        await promote(runtime, name=name, version=2, announce=False)
        await eventually(lambda: live_support.served("prediction", name, "2") == 1, timeout=10)
        assert live_support.served("prediction", name, "1") is None


@contextlib.asynccontextmanager
async def following(
    tmp_path: Path,
    *,
    fallback: Path | None = None,
    database_url: str | None = None,
    alias: str = "production",
) -> AsyncIterator[LiveModel[OnnxPredictor]]:
    """A LiveModel of a new predictor name on a started embedded runtime, stopped afterwards."""
    fields: dict[str, object] = {"home": tmp_path / "home"}
    if database_url is not None:
        fields["database_url"] = database_url
    runtime = Runtime(PredictionSettings.model_validate(fields), service="prediction")
    live = LiveModel(
        runtime,
        name=live_support.unique("predictor"),
        slot=ModelSlot[OnnxPredictor](),
        loader=OnnxPredictor,
        warm_up=warm_up_predictor,
        cache_dir=tmp_path / "cache",
        poll_seconds=3600,
        fallback=fallback,
        alias=alias,
    )
    if database_url is None:
        await runtime.start_storage()
    try:
        yield live
    finally:
        await live.stop()
        await runtime.stop()


def test_the_model_cache_is_under_home_unless_set(tmp_path: Path) -> None:
    default = LiveModelSettings(home=tmp_path / "home")
    chosen = LiveModelSettings(home=tmp_path / "home", model_cache_dir=tmp_path / "elsewhere")

    assert default.resolved_model_cache_dir() == tmp_path / "home" / "model-cache"
    assert chosen.resolved_model_cache_dir() == tmp_path / "elsewhere"


async def test_swap_hooks_see_each_model_installed_and_only_those(tmp_path: Path) -> None:
    async with following(tmp_path) as live:
        seen: list[OnnxPredictor] = []
        live.on_swap.append(seen.append)
        await publish(live.runtime, name=live.name, folder=small_predictor(tmp_path / "v1"))

        assert await live.refresh() is Refresh.SWAPPED
        assert await live.refresh() is Refresh.UNCHANGED

        assert seen == [live.slot.current]
        assert (live.version, live.source) == ("1", Source.REGISTRY)


async def test_a_version_without_a_manifest_cannot_be_served(tmp_path: Path) -> None:
    async with following(tmp_path) as live:
        runtime = live.runtime
        await publish(runtime, name=live.name, folder=small_predictor(tmp_path / "v1"))
        assert await live.refresh() is Refresh.SWAPPED
        served = live.slot.current
        bad = await register_version(
            runtime, name=live.name, kind="predictor", folder=small_predictor(tmp_path / "v2")
        )
        async with runtime.transaction() as session:
            row = await session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_name == live.name, ModelVersion.version == bad
                )
            )
            assert row is not None
            row.files = dump_files([f for f in version_files(row) if f.name != MANIFEST_FILE])
        await promote(runtime, name=live.name, version=bad, announce=False)

        assert await live.refresh() is Refresh.FAILED
        assert live.slot.current is served
        assert live_support.failures("prediction", live.name, str(bad)) == 1


async def test_a_promotion_of_another_model_or_alias_is_ignored(tmp_path: Path) -> None:
    async with following(tmp_path) as live:
        await publish(live.runtime, name=live.name, folder=small_predictor(tmp_path / "v1"))
        handler = live.subscription("prediction").handler
        assert handler is not None

        def promoted(model_name: str, alias: str) -> ModelPromoted:
            ref = ObjectRef(uri="models/x/1/manifest.json", sha256="0" * 64, size=1)
            return ModelPromoted(
                model_name=model_name, alias=alias, version="1", previous_version=None, manifest=ref
            )

        for event in (promoted("another-model", "production"), promoted(live.name, "staging")):
            await handler(Envelope.wrap(event), event)
            assert live.slot.current is None
        ours = promoted(live.name, "production")
        await handler(Envelope.wrap(ours), ours)
        assert live.version == "1"


async def test_a_database_that_cannot_be_read_is_a_passing_fault(tmp_path: Path) -> None:
    local = small_predictor(tmp_path / "local", version="7")
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite'}"
    async with following(tmp_path, fallback=local, database_url=unreachable) as live:
        with pytest.raises(RetryableError, match="production alias"):
            await live.refresh()

        await live.start()  # logs and keeps polling rather than failing the service

        # The registry may well have a production version: the local folder must not serve.
        assert live.slot.current is None


async def test_a_local_folder_that_does_not_load_serves_nothing(tmp_path: Path) -> None:
    broken = unloadable_copy(small_predictor(tmp_path / "local"), tmp_path / "broken")
    async with following(tmp_path, fallback=broken) as live:
        await live.start()

        assert live.slot.current is None
        assert (live.version, live.source) == (None, None)


async def test_downloads_in_progress_are_left_alone_when_old_versions_are_pruned(
    tmp_path: Path,
) -> None:
    async with following(tmp_path) as live:
        in_progress = tmp_path / "cache" / live.name / ".9-download"
        in_progress.mkdir(parents=True)
        for seed in (1, 2, 3):
            folder = small_predictor(tmp_path / f"v{seed}", seed=seed)
            await publish(live.runtime, name=live.name, folder=folder, announce=False)
            assert await live.refresh() is Refresh.SWAPPED

        kept = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / live.name).iterdir())
        assert kept == [".9", "2", "3"]


async def test_every_poll_refreshes_the_replicas_serving_report(tmp_path: Path) -> None:
    async with following(tmp_path) as live:
        await publish(live.runtime, name=live.name, folder=small_predictor(tmp_path / "v1"))
        live.poll_seconds = 0.05

        async def reported_at() -> dt.datetime | None:
            async with live.runtime.database.session() as session:
                row = await session.get(ModelServing, (live.reporter.replica, live.name))
            return None if row is None else row.reported_at

        await live.start()
        first = await reported_at()
        assert first is not None

        async def refreshed() -> bool:
            later = await reported_at()
            return later is not None and later > first

        await eventually(refreshed, timeout=10)
        assert live.serving() == ServingReport(
            service="prediction",
            model=live.name,
            version="1",
            variant="fp32",
            source="registry",
        )
        await live.stop()
        assert await reported_at() is None
