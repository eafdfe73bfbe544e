"""The registry app on a test's database and object store, with keys of every role."""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from marketsense.common.app import create_app
from marketsense.common.auth import Role, create_key, revoke_key
from marketsense.common.bus import Subscription
from marketsense.common.db.engine import Database
from marketsense.common.events import Envelope, ModelPromoted, Payload
from marketsense.common.runtime import Runtime
from marketsense.models.bundles import pack_bundle
from marketsense.registry.app import create_component
from marketsense.registry.config import RegistrySettings
from tests.backends import object_store_fields
from tests.gate_support import add_outcome_set, weighted_predictor


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


_PACKED: OrderedDict[tuple[tuple[str, str], ...], bytes] = OrderedDict()
_PACKED_KEPT = 2
"""Bundles kept by `packed`: the real sentiment model's is 140 MB."""


def packed(folder: Path) -> bytes:
    """`pack_bundle(folder)`, reused while the folder's files hold the same bytes: packing is
    deterministic, and gzipping the real sentiment model's graphs takes 5 s of CPU that many
    tests pushing it unchanged (or with only its manifest changed) would spend again."""
    key = tuple(
        (path.name, sha256_of(path) if path.is_file() and not path.is_symlink() else "skipped")
        for path in sorted(folder.iterdir())
        if path.name != "manifest.json"
    )
    if key in _PACKED:
        _PACKED.move_to_end(key)
        return _PACKED[key]
    bundle = _PACKED[key] = pack_bundle(folder)
    while len(_PACKED) > _PACKED_KEPT:
        _PACKED.popitem(last=False)
    return bundle


@dataclass
class Registry:
    """A running registry app: an HTTP client on it, its runtime, keys and the events it sent."""

    api: httpx.AsyncClient
    runtime: Runtime
    keys: dict[str, str]
    """Keys by holder: reader, publisher, approver, and a revoked approver key."""
    promoted: list[ModelPromoted]
    """ModelPromoted events as a consumer on the runtime's bus received them."""
    app: Any = None
    """The registry's ASGI app, for clients that bring their own transport."""

    def key(self, holder: str) -> dict[str, str]:
        """Headers sending the key of `holder`."""
        return {"X-API-Key": self.keys[holder]}

    async def create_model(
        self, name: str, *, kind: str = "predictor", holder: str = "publisher"
    ) -> httpx.Response:
        """Register a model."""
        return await self.api.post(
            "/v1/models",
            json={"name": name, "kind": kind, "description": f"{kind} for tests"},
            headers=self.key(holder),
        )

    async def push(
        self, name: str, folder: Path, *, holder: str = "publisher", bundle: bytes | None = None
    ) -> httpx.Response:
        """Push a folder (its manifest.json and the packed bundle, or the `bundle` given)."""
        return await self.push_parts(
            name,
            manifest=(folder / "manifest.json").read_bytes(),
            bundle=packed(folder) if bundle is None else bundle,
            holder=holder,
        )

    async def push_parts(
        self, name: str, *, manifest: bytes, bundle: bytes, holder: str = "publisher"
    ) -> httpx.Response:
        """Push a manifest and a bundle as they are."""
        return await self.api.post(
            f"/v1/models/{name}/versions",
            files={
                "manifest": ("manifest.json", manifest, "application/json"),
                "bundle": ("bundle.tar.gz", bundle, "application/gzip"),
            },
            headers=self.key(holder),
        )

    async def promote(
        self,
        name: str,
        version: int,
        *,
        alias: str = "production",
        holder: str = "approver",
        reason: str = "",
        force: bool = False,
    ) -> httpx.Response:
        """Point an alias at a version."""
        return await self.api.put(
            f"/v1/models/{name}/aliases/{alias}",
            json={"version": version, "reason": reason, "force": force},
            headers=self.key(holder),
        )


def registry_settings(
    *, home: Path, database_url: str, store_url: str, **values: Any
) -> RegistrySettings:
    """Settings pointing the registry at a test's database and object store."""
    fields: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "log_json": False,
        **object_store_fields(store_url),
    }
    return RegistrySettings(**(fields | values))


@contextlib.asynccontextmanager
async def running_registry(
    *, database: Database, settings: RegistrySettings
) -> AsyncIterator[Registry]:
    """Start the registry app with keys of every role in its database."""
    keys: dict[str, str] = {}
    async with database.session() as session:
        for role in Role:
            keys[role.value] = await create_key(session, name=f"{role.value}-key", role=role)
        keys["revoked"] = await create_key(session, name="revoked-key", role=Role.APPROVER)
        await revoke_key(session, "revoked-key")
        await session.commit()
    runtime = Runtime(settings, service="registry")
    promoted: list[ModelPromoted] = []

    async def collect(_envelope: Envelope, payload: Payload) -> None:
        assert isinstance(payload, ModelPromoted)
        promoted.append(payload)

    runtime.bus.subscribe(
        Subscription(
            topic=ModelPromoted.topic,
            group=runtime.group("promotion-watcher"),
            handler=collect,
            accepts=(ModelPromoted,),
        )
    )
    app = create_app(runtime, [create_component(runtime, settings)], title="registry under test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry"
        ) as api,
    ):
        yield Registry(api=api, runtime=runtime, keys=keys, promoted=promoted, app=app)


async def with_versions(registry: Registry, tmp_path: Path, name: str, *aucs: float) -> None:
    """Register `name`, give the registry a predictor evaluation set, and push one predictor
    per AUC (versions 1, 2, …) claiming it; a higher claim is also a better measured graph, an
    equal claim the same graph."""
    await add_outcome_set(registry.runtime)
    assert (await registry.create_model(name)).status_code == 201
    for number, auc in enumerate(aucs, start=1):
        folder = weighted_predictor(
            tmp_path / f"v{number}", skill=30 * (auc - 0.5), claimed_auc=auc
        )
        pushed = await registry.push(name, folder)
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["version"] == number
