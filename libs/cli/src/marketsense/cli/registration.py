"""Put the embedded default's models in its registry, as `production`, the first time round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from rich.console import Console

from marketsense.cli.defaults import holdout_set_path
from marketsense.common.app import create_app
from marketsense.common.auth import KEY_HEADER, Role, create_key, revoke_key
from marketsense.common.runtime import Runtime
from marketsense.models.bundles import pack_bundle
from marketsense.models.files import MANIFEST_FILE
from marketsense.registry.app import create_component as registry_component
from marketsense.registry.config import RegistrySettings


@contextlib.asynccontextmanager
async def temporary_key(runtime: Runtime, role: Role, purpose: str) -> AsyncIterator[str]:
    """An API key that exists only while the block runs."""
    name = f"{purpose}-{uuid.uuid4().hex[:8]}"
    async with runtime.database.session() as session:
        key = await create_key(session, name=name, role=role)
        await session.commit()
    try:
        yield key
    finally:
        async with runtime.database.session() as session:
            await revoke_key(session, name)
            await session.commit()


async def ensure_registered(
    settings: RegistrySettings, artifacts: list[tuple[str, Path]], console: Console
) -> None:
    """Push each (kind, folder) artifact and make it production unless its model has one."""
    runtime = Runtime(settings, service="registry")
    app = create_app(runtime, [registry_component(runtime, settings)], title="marketsense registry")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry", timeout=120
        ) as api,
        temporary_key(runtime, Role.APPROVER, "embedded-bootstrap") as key,
    ):
        api.headers[KEY_HEADER] = key
        for kind, folder in artifacts:
            name = json.loads((folder / MANIFEST_FILE).read_text())["name"]
            if (await api.get(f"/v1/models/{name}/aliases/production")).status_code == 200:
                continue
            if (await api.get(f"/v1/models/{name}")).status_code == 404:
                description = f"embedded default {kind} model"
                await _ok(
                    await api.post(
                        "/v1/models", json={"name": name, "kind": kind, "description": description}
                    )
                )
            with console.status(f"registering {name} from {folder}"):
                if kind == "predictor":
                    await _add_holdout_set(api, name, folder, console)
                bundle = await asyncio.to_thread(pack_bundle, folder)
                pushed = await _ok(
                    await api.post(
                        f"/v1/models/{name}/versions",
                        files={
                            "manifest": (MANIFEST_FILE, (folder / MANIFEST_FILE).read_bytes()),
                            "bundle": ("bundle.tar.gz", bundle),
                        },
                    )
                )
                await _ok(
                    await api.put(
                        f"/v1/models/{name}/aliases/production",
                        json={"version": pushed["version"], "reason": "embedded default"},
                    )
                )
            console.print(f"registered {name} v{pushed['version']} as production")


async def _add_holdout_set(
    api: httpx.AsyncClient, name: str, folder: Path, console: Console
) -> None:
    """Add the predictor's holdout rows as the predictor evaluation set, so the registry can
    measure and gate the version it is about to push."""
    holdout = holdout_set_path(folder)
    if not holdout.is_file():  # a predictor built elsewhere: the registry's own sets decide
        return
    response = await api.post(
        "/v1/evaluation-sets",
        params={"kind": "predictor", "name": f"{name}-holdout"},
        content=await asyncio.to_thread(holdout.read_bytes),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    added = await _ok(response)
    # 200: the registry holds these rows already (under the name they were first added with).
    how = "added" if response.status_code == 201 else "already held"
    console.print(f"evaluation set {added['name']} ({added['rows']} rows) {how} for predictors")


async def _ok(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"registry refused {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    body: dict[str, object] = response.json()
    return body
