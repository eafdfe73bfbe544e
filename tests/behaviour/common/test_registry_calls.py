"""The services' client of the registry's API, against the real registry app in this process."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.api_client import ApiError
from marketsense.common.db.engine import Database
from marketsense.common.registry_calls import (
    IN_PROCESS_URL,
    InProcessTransport,
    RegistryAccessSettings,
    RegistryCalls,
)
from marketsense.common.store import ObjectStore
from marketsense.models.bundles import pack_bundle
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import Registry, registry_settings, running_registry

MODEL = "calls-predictor"


@pytest.fixture
async def registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The registry app on the test's database and object store."""
    settings = registry_settings(
        home=tmp_path / "home", database_url=database_url, store_url=store.base_uri
    )
    async with running_registry(database=database, settings=settings) as running:
        yield running


@pytest.fixture
async def calls(registry: Registry) -> AsyncIterator[RegistryCalls]:
    """A client reaching the registry through the in-process transport, as an approver."""
    transport = InProcessTransport()
    transport.app = registry.app
    transport.api_key = registry.keys["approver"]
    client = RegistryCalls.from_settings(RegistryAccessSettings(), in_process=transport)
    yield client
    await client.aclose()


async def _push(calls: RegistryCalls, folder: Path) -> int:
    pushed = await calls.push_version(
        MODEL, manifest=(folder / "manifest.json").read_bytes(), bundle=pack_bundle(folder)
    )
    return int(pushed["version"])


async def test_a_challenger_is_pushed_aliased_gated_retired_and_archived(
    registry: Registry, calls: RegistryCalls, tmp_path: Path
) -> None:
    await add_outcome_set(registry.runtime)
    assert await calls.model(MODEL) is None
    assert (await registry.create_model(MODEL)).status_code == 201
    good = await _push(calls, weighted_predictor(tmp_path / "good", skill=3.0))
    worse = await _push(calls, weighted_predictor(tmp_path / "worse", skill=-2.0))
    assert [v["version"] for v in await calls.versions(MODEL)] == [worse, good]

    await calls.move_alias(MODEL, "production", version=good, reason="first")
    await calls.move_alias(MODEL, "challenger", version=worse, reason="shadow it")
    challenger = await calls.alias(MODEL, "challenger")
    assert challenger is not None
    assert challenger["version"] == worse
    assert [p.version for p in registry.promoted if p.alias == "production"] == [str(good)]

    # The gate is the registry's: a worse challenger is refused with its measured reason.
    with pytest.raises(ApiError) as refused:
        await calls.move_alias(MODEL, "production", version=worse, reason="try")
    assert refused.value.status == 409
    assert "below production version" in refused.value.detail

    await calls.delete_alias(MODEL, "challenger", reason="it lost")
    assert await calls.alias(MODEL, "challenger") is None
    archived = await calls.archive(MODEL, worse, reason="lost: Sharpe 1.0 against 2.0")
    assert archived["archived_at"] is not None


async def test_a_window_without_runs_is_refused_with_the_registrys_reason(
    calls: RegistryCalls,
) -> None:
    with pytest.raises(ApiError) as refused:
        await calls.predictor_set_from_runs(start=dt.date(2026, 1, 5), end=dt.date(2026, 1, 9))
    assert refused.value.status == 422
    assert "2026-01-05" in refused.value.detail


async def test_an_unstarted_in_process_registry_answers_like_an_unreachable_server() -> None:
    client = RegistryCalls(IN_PROCESS_URL, transport=InProcessTransport())
    with pytest.raises(ApiError) as unreachable:
        await client.model(MODEL)
    await client.aclose()
    assert unreachable.value.status is None
    assert "not started" in unreachable.value.detail


def test_without_a_url_or_an_in_process_registry_the_setting_to_fix_is_named() -> None:
    with pytest.raises(ValueError, match="MARKETSENSE_REGISTRY_URL"):
        RegistryCalls.from_settings(RegistryAccessSettings(registry_url=None))
