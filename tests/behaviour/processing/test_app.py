"""The processing service follows the registry's production sentiment model live: a promotion
swaps it, a version that cannot be served leaves the old one serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.app import create_app
from marketsense.common.db.models import ModelServing
from marketsense.common.runtime import Runtime
from marketsense.models.serving_reports import replica_id
from marketsense.processing.app import create_component as processing
from marketsense.processing.config import ProcessingSettings
from tests import live_support
from tests.conftest import INTEGRATION, eventually
from tests.model_registry_rows import publish


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> dict[str, object]:
    """Settings of the embedded default (SQLite, folder, in-process bus) or the real servers."""
    return live_support.live_backend(request, tmp_path, prefix)


@pytest.fixture
async def api() -> AsyncIterator[live_support.Clients]:
    """Clients for apps under test, closed afterwards."""
    async with live_support.app_clients() as clients:
        yield clients


async def test_processing_swaps_its_sentiment_model_when_a_version_is_promoted(
    backend: dict[str, object],
    tmp_path: Path,
    sentiment_model_dir: Path,
    api: live_support.Clients,
) -> None:
    name = live_support.unique("sentiment")
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
        assert live_support.served("processing", name, "1") == 1
        swaps = live_support.swaps("processing", name)

        await publish(
            runtime,
            name=name,
            kind="sentiment",
            folder=sentiment_model_dir,
            metrics={"heldout_macro_f1": 0.9},
        )
        await eventually(lambda: live_support.served("processing", name, "2") == 1, timeout=20)
        assert live_support.served("processing", name, "1") is None
        assert live_support.swaps("processing", name) == swaps + 1

        # A version whose tokenizer is not a tokenizer leaves version 2 serving.
        broken = _with_broken_tokenizer(sentiment_model_dir, tmp_path / "broken")
        third = await publish(runtime, name=name, kind="sentiment", folder=broken)
        await eventually(
            lambda: live_support.failures("processing", name, str(third)) == 1, timeout=20
        )
        assert live_support.served("processing", name, "2") == 1


@pytest.mark.parametrize(("quantized", "variant"), [(True, "int8"), (False, "fp32")])
async def test_each_replica_reports_the_version_and_graph_it_serves(
    tmp_path: Path,
    sentiment_model_dir: Path,
    api: live_support.Clients,
    quantized: bool,
    variant: str,
) -> None:
    name = live_support.unique("sentiment")
    settings = ProcessingSettings.model_validate(
        {
            "home": tmp_path / "home",
            "sentiment_model": name,
            "sentiment_model_path": tmp_path / "no-local-model",
            "sentiment_quantized": quantized,
        }
    )
    runtime = Runtime(settings, service="processing")
    app = create_app(runtime, [processing(runtime, settings)], title="test processing")
    await runtime.start_storage()
    await publish(runtime, name=name, kind="sentiment", folder=sentiment_model_dir)
    async with app.router.lifespan_context(app):
        ready = (await api(app).get("/readyz")).json()
        async with runtime.database.session() as session:
            rows = (
                await session.scalars(select(ModelServing).where(ModelServing.model_name == name))
            ).all()
        assert live_support.served("processing", name, "1", variant=variant) == 1

    report = {"model": name, "version": "1", "variant": variant, "source": "registry"}
    assert ready["serving"] == [{"service": "processing"} | report]
    assert [(r.replica, r.service, r.version, r.variant, r.source) for r in rows] == [
        (replica_id(), "processing", "1", variant, "registry")
    ]
    # A stopped replica withdraws its report and its info metric.
    async with runtime.database.session() as session:
        assert await session.get(ModelServing, (replica_id(), name)) is None
    assert live_support.served("processing", name, "1") is None


def _with_broken_tokenizer(source: Path, directory: Path) -> Path:
    """The artifact in `source` with a tokenizer.json that is not a tokenizer."""
    directory.mkdir()
    for path in source.iterdir():
        if path.is_file() and path.name != "tokenizer.json":
            (directory / path.name).symlink_to(path)
    (directory / "tokenizer.json").write_text("{}")
    return directory
