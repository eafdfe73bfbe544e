"""Pushing versions to a registry that checks them: registries, hand-made bundles, refusals."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from marketsense.common.db.engine import Database
from marketsense.common.store import ObjectStore
from tests.registry_support import Registry, registry_settings, running_registry

PREDICTOR = "checked-predictor"
"""The registered predictor the checks run on."""
SENTIMENT = "checked-sentiment"
"""The registered sentiment model the checks run on."""


@contextlib.asynccontextmanager
async def checked_registry(
    database: Database, database_url: str, store: ObjectStore, home: Path, max_bundle_mb: int
) -> AsyncIterator[Registry]:
    """A registry with the given bundle limit and one model of each kind registered."""
    settings = registry_settings(
        home=home,
        database_url=database_url,
        store_url=store.base_uri,
        registry_max_bundle_mb=max_bundle_mb,
    )
    async with running_registry(database=database, settings=settings) as running:
        assert (await running.create_model(PREDICTOR)).status_code == 201
        assert (await running.create_model(SENTIMENT, kind="sentiment")).status_code == 201
        yield running


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A gzip tar holding exactly the members given (bytes for regular files)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def tar_file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular file member."""
    return tarfile.TarInfo(name), data


async def refused(response: httpx.Response, registry: Registry, model: str) -> str:
    """Assert a push was refused with 422 and left nothing behind; return its detail."""
    assert response.status_code == 422, response.text
    versions = await registry.api.get(
        f"/v1/models/{model}/versions", headers=registry.key("reader")
    )
    assert versions.json()["items"] == []
    assert not await registry.runtime.store.exists(f"models/{model}/1/manifest.json")
    detail: str = response.json()["detail"]
    return detail
