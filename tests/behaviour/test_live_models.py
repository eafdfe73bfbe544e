"""Processing and prediction follow the registry's production alias live: promotions swap the
served model within seconds, versions that cannot be served leave the old one serving."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from marketsense.common.app import create_app
from marketsense.common.db.models import Prediction
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.runtime import Runtime
from marketsense.models.files import MODEL_FILE
from marketsense.models.live import LiveModel, Refresh
from marketsense.models.predictor import OnnxPredictor, warm_up_predictor
from marketsense.models.slot import ModelSlot
from marketsense.prediction.app import create_component as prediction
from marketsense.prediction.config import PredictionSettings
from marketsense.processing.app import create_component as processing
from marketsense.processing.config import ProcessingSettings
from tests.artifacts import small_predictor
from tests.backends import real_servers
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
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        # Promotions arrive as events; tests of the periodic check shorten it themselves.
        "model_poll_seconds": 3600,
    }
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return values


def _unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _symbols(count: int) -> list[str]:
    """Symbols no other test uses (tests on PostgreSQL share one database)."""
    tag = uuid.uuid4().hex[:6].upper()
    return [f"L{tag}{i}" for i in range(count)]


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _served(service: str, model: str, version: str, source: str = "registry") -> float | None:
    return _sample(
        "marketsense_model_info", service=service, model=model, version=version, source=source
    )


def _failures(service: str, model: str, version: str) -> float:
    return (
        _sample(
            "marketsense_model_load_failures_total", service=service, model=model, version=version
        )
        or 0.0
    )


def _swaps(service: str, model: str) -> float:
    return _sample("marketsense_model_swaps_total", service=service, model=model) or 0.0


def _prediction_app(tmp_path: Path, name: str, **values: object) -> FastAPI:
    """The prediction app following model `name`, with no local folder unless `values` (which
    override any setting) name one."""
    settings = PredictionSettings.model_validate(
        {
            "home": tmp_path / "home",
            "predictor_model": name,
            "predictor_path": tmp_path / "no-local-model",
            "model_poll_seconds": 3600,
        }
        | values
    )
    runtime = Runtime(settings, service="prediction")
    return create_app(runtime, [prediction(runtime, settings)], title="test prediction")


@pytest.fixture
async def api() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    """Clients for apps under test, closed afterwards."""
    clients: list[httpx.AsyncClient] = []

    def client(app: FastAPI) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


async def _latest_versions(client: httpx.AsyncClient, symbols: list[str], key: str) -> list[str]:
    versions = []
    for symbol in symbols:
        response = await client.get(f"/v1/predictions/{symbol}/latest", headers={"X-API-Key": key})
        versions.append(response.json()["model_version"] if response.status_code == 200 else "")
    return versions


def _all_at(
    client: httpx.AsyncClient, symbols: list[str], key: str, version: str
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _latest_versions(client, symbols, key) == [version] * len(symbols)

    return check


def _expected(directory: Path, rows: dict[str, pd.DataFrame], symbol: str) -> float:
    features = rows[symbol][list(FEATURE_COLUMNS)].to_numpy(np.float32)
    return float(OnnxPredictor(directory).predict_up(features)[0])


async def test_promotion_swaps_the_predictor_within_seconds_and_latest_carries_the_new_version(
    backend: dict[str, object], tmp_path: Path, api: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    name = _unique("predictor")
    app = _prediction_app(tmp_path, name, **backend)
    runtime: Runtime = app.state.runtime
    v1_dir = small_predictor(tmp_path / "v1", seed=1)
    v2_dir = small_predictor(tmp_path / "v2", seed=2, auc=0.6)
    symbols = _symbols(3)
    await runtime.start_storage()
    await publish(runtime, name=name, folder=v1_dir)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        assert _served("prediction", name, "1") == 1
        run_id, rows = await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        # The pipeline's predict stage scores with the version served at the time.
        await eventually(_all_at(client, symbols, key, "1"))
        swaps = _swaps("prediction", name)

        await publish(runtime, name=name, folder=v2_dir)
        await eventually(_all_at(client, symbols, key, "2"), timeout=10)

        for symbol in symbols:
            latest = (
                await client.get(f"/v1/predictions/{symbol}/latest", headers={"X-API-Key": key})
            ).json()
            assert latest["run_id"] == run_id
            assert latest["model_name"] == name
            assert latest["prob_up"] == pytest.approx(_expected(v2_dir, rows, symbol), abs=1e-6)
        assert _served("prediction", name, "1") is None
        assert _served("prediction", name, "2") == 1
        assert _swaps("prediction", name) == swaps + 1
        async with runtime.database.session() as session:
            stored = (
                await session.execute(
                    select(Prediction.symbol, Prediction.model_version, Prediction.prob_up).where(
                        Prediction.run_id == run_id
                    )
                )
            ).all()
    # What version 1 said stays next to what version 2 says: one row per version.
    assert sorted((s, v) for s, v, _ in stored) == sorted(
        (s, v) for s in symbols for v in ("1", "2")
    )
    for symbol, version, prob_up in stored:
        directory = v1_dir if version == "1" else v2_dir
        assert prob_up == pytest.approx(_expected(directory, rows, symbol), abs=1e-6)


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
    backend: dict[str, object], tmp_path: Path, api: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    name = _unique("predictor")
    app = _prediction_app(tmp_path, name, **backend)
    runtime: Runtime = app.state.runtime
    v1_dir = small_predictor(tmp_path / "v1", seed=1)
    symbols = _symbols(2)
    await runtime.start_storage()
    await publish(runtime, name=name, folder=v1_dir)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        await eventually(_all_at(client, symbols, key, "1"))
        callers = _Callers(client, symbols, key)
        callers.start()
        swaps = _swaps("prediction", name)

        # Version 2's model.onnx was overwritten in the store after registration: its bytes no
        # longer match the registered sha256.
        corrupted = await register_version(
            runtime, name=name, kind="predictor", folder=small_predictor(tmp_path / "v2", seed=2)
        )
        await runtime.store.put(f"models/{name}/{corrupted}/{MODEL_FILE}", b"tampered bytes")
        await promote(runtime, name=name, version=corrupted)
        await eventually(lambda: _failures("prediction", name, str(corrupted)) == 1, timeout=10)

        # Version 3's bytes verify, but they are not an ONNX graph.
        unloadable = await publish(
            runtime, name=name, folder=unloadable_copy(v1_dir, tmp_path / "v3")
        )
        await eventually(lambda: _failures("prediction", name, str(unloadable)) == 1, timeout=10)

        await callers.stop()
        ready = (await client.get("/readyz")).json()

    assert callers.answers, "the callers made no request"
    assert {answer for answer in callers.answers} == {(200, "1")}
    assert _served("prediction", name, "1") is None  # the app stopped: it serves nothing now
    assert _swaps("prediction", name) == swaps
    assert ready["checks"]["predictor"] is True


async def test_a_version_that_failed_is_tried_again_only_after_the_alias_moves_again(
    tmp_path: Path,
) -> None:
    name = _unique("predictor")
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
        assert _failures("prediction", name, str(bad)) == 1
        assert slot.current is served

        await promote(runtime, name=name, version=bad, announce=False)  # promoted again
        assert await live.refresh() is Refresh.FAILED
        assert _failures("prediction", name, str(bad)) == 2
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


async def test_readiness_is_false_until_a_production_version_is_promoted(
    tmp_path: Path, api: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    name = _unique("predictor")
    app = _prediction_app(tmp_path, name)
    runtime: Runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["predictor"] is False
        latest = await client.get("/v1/predictions/AAA/latest", headers={"X-API-Key": key})
        assert latest.status_code == 503
        assert "no predictor is loaded" in latest.json()["detail"]

        await publish(runtime, name=name, folder=small_predictor(tmp_path / "v1", seed=1))

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=10)
        assert _served("prediction", name, "1") == 1


async def test_local_folder_serves_while_the_registry_has_no_production_version(
    tmp_path: Path, api: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    name = _unique("predictor")
    local = small_predictor(tmp_path / "local", seed=3, name="local-predictor", version="7")
    app = _prediction_app(tmp_path, name, predictor_path=local)
    runtime: Runtime = app.state.runtime
    symbols = _symbols(1)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        assert _served("prediction", name, "7", source="local") == 1
        await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        await eventually(_all_at(client, symbols, key, "7"))

        await publish(runtime, name=name, folder=small_predictor(tmp_path / "v1", seed=1))
        # Once the registry has a production version, it replaces the local folder.
        await eventually(_all_at(client, symbols, key, "1"), timeout=10)
        assert _served("prediction", name, "7", source="local") is None
        assert _served("prediction", name, "1") == 1


async def test_the_periodic_check_heals_a_promotion_whose_event_was_lost(
    tmp_path: Path, api: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    name = _unique("predictor")
    app = _prediction_app(tmp_path, name, model_poll_seconds=0.2)
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
        assert _served("prediction", name, "1") == 1
        await promote(runtime, name=name, version=2, announce=False)
        await eventually(lambda: _served("prediction", name, "2") == 1, timeout=10)
        assert _served("prediction", name, "1") is None


async def test_processing_swaps_its_sentiment_model_when_a_version_is_promoted(
    backend: dict[str, object],
    tmp_path: Path,
    sentiment_model_dir: Path,
    api: Callable[[FastAPI], httpx.AsyncClient],
) -> None:
    name = _unique("sentiment")
    settings = ProcessingSettings.model_validate(
        backend | {"sentiment_model": name, "sentiment_model_path": tmp_path / "no-local-model"}
    )
    runtime = Runtime(settings, service="processing")
    app = create_app(runtime, [processing(runtime, settings)], title="test processing")
    await runtime.start_storage()
    await publish(runtime, name=name, kind="sentiment", folder=sentiment_model_dir)
    async with app.router.lifespan_context(app):
        client = api(app)
        assert (await client.get("/readyz")).json()["checks"]["sentiment_model"] is True
        assert _served("processing", name, "1") == 1
        swaps = _swaps("processing", name)

        await publish(
            runtime,
            name=name,
            kind="sentiment",
            folder=sentiment_model_dir,
            metrics={"heldout_macro_f1": 0.9},
        )
        await eventually(lambda: _served("processing", name, "2") == 1, timeout=20)
        assert _served("processing", name, "1") is None
        assert _swaps("processing", name) == swaps + 1

        # A version whose tokenizer is not a tokenizer leaves version 2 serving.
        broken = _with_broken_tokenizer(sentiment_model_dir, tmp_path / "broken")
        third = await publish(runtime, name=name, kind="sentiment", folder=broken)
        await eventually(lambda: _failures("processing", name, str(third)) == 1, timeout=20)
        assert _served("processing", name, "2") == 1


def _with_broken_tokenizer(source: Path, directory: Path) -> Path:
    """The artifact in `source` with a tokenizer.json that is not a tokenizer."""
    directory.mkdir()
    for path in source.iterdir():
        if path.is_file() and path.name != "tokenizer.json":
            (directory / path.name).symlink_to(path)
    (directory / "tokenizer.json").write_text("{}")
    return directory
