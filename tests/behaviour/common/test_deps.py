"""The shared route dependencies, through a tiny app on a database of each kind: the runtime, a
read session, keys by role, and a component's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import SecretStr
from sqlalchemy import func, select

from marketsense.common.auth import KEY_HEADER, Role, create_key
from marketsense.common.db.engine import Database
from marketsense.common.db.models import ApiKey
from marketsense.common.deps import (
    ApproverKey,
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    component_state,
    state_of,
)
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings

ROLES = (Role.READER, Role.PUBLISHER, Role.APPROVER)
HOW_TO_BUILD = "the app has no runtime; build it with marketsense.common.app.create_app"


@dataclass
class Widgets:
    """What a component keeps for its routes."""

    limit: int


def tiny_app(runtime: object) -> FastAPI:
    """An app with one route per shared dependency, built on `runtime` (None: without one)."""
    app = FastAPI()
    if runtime is not None:
        app.state.runtime = runtime
    app.state.widgets = Widgets(limit=3)
    app.state.gadgets = "not a Widgets"

    @app.get("/reader")
    async def reader(who: ReaderKey) -> dict[str, str]:
        return {"name": who.name, "role": who.role.value}

    @app.get("/publisher")
    async def publisher(who: PublisherKey) -> dict[str, str]:
        return {"name": who.name, "role": who.role.value}

    @app.get("/approver")
    async def approver(who: ApproverKey) -> dict[str, str]:
        return {"name": who.name, "role": who.role.value}

    @app.get("/keys")
    async def keys(session: SessionDep, runtime: RuntimeDep) -> dict[str, object]:
        count = await session.scalar(select(func.count()).select_from(ApiKey))
        return {"keys": count, "service": runtime.service}

    @app.get("/state/{name}")
    async def state(request: Request, name: str) -> dict[str, int]:
        return {"limit": component_state(request, name, Widgets).limit}

    @app.get("/widgets")
    async def widgets(kept: Annotated[Widgets, Depends(state_of("widgets", Widgets))]) -> int:
        return kept.limit

    @app.get("/gadgets")
    async def gadgets(kept: Annotated[Widgets, Depends(state_of("gadgets", Widgets))]) -> int:
        return kept.limit

    return app


@dataclass
class Served:
    """A tiny app's client, and a key of each role it knows."""

    api: httpx.AsyncClient
    keys: dict[Role, str]


@pytest.fixture
async def served(database: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    """The tiny app on a runtime over the test database, with one key per role."""
    async with database.session() as session:
        keys = {role: await create_key(session, name=role.value, role=role) for role in ROLES}
        await session.commit()
    settings = CommonSettings(home=tmp_path, database_url=SecretStr(database_url))
    runtime = Runtime(settings, service="deps-test")
    transport = httpx.ASGITransport(app=tiny_app(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            yield Served(api, keys)
    finally:
        await runtime.database.dispose()


@pytest.mark.parametrize("needed", ROLES)
@pytest.mark.parametrize("held", ROLES)
async def test_a_route_admits_keys_at_or_above_its_role_and_forbids_the_rest(
    served: Served, held: Role, needed: Role
) -> None:
    response = await served.api.get(f"/{needed.value}", headers={KEY_HEADER: served.keys[held]})

    if ROLES.index(held) >= ROLES.index(needed):
        assert response.status_code == 200
        assert response.json() == {"name": held.value, "role": held.value}
    else:
        assert response.status_code == 403
        assert response.json() == {
            "detail": f"this needs the {needed.value} role; key {held.value!r} is {held.value}"
        }


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        pytest.param({}, f"missing API key: send it in the {KEY_HEADER} header", id="no-key"),
        pytest.param({KEY_HEADER: "msk_" + "x" * 43}, "unknown or revoked API key", id="unknown"),
    ],
)
async def test_a_route_without_a_valid_key_is_401_asking_for_the_header(
    served: Served, headers: dict[str, str], detail: str
) -> None:
    response = await served.api.get("/reader", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["WWW-Authenticate"] == KEY_HEADER


async def test_a_route_reads_through_a_session_of_the_apps_runtime(served: Served) -> None:
    response = await served.api.get("/keys")

    assert response.json() == {"keys": len(ROLES), "service": "deps-test"}


async def test_component_state_is_what_the_component_keeps_of_the_asked_type(
    served: Served,
) -> None:
    assert (await served.api.get("/state/widgets")).json() == {"limit": 3}
    with pytest.raises(TypeError, match="the app serves no gadgets component with a Widgets"):
        await served.api.get("/state/gadgets")
    with pytest.raises(TypeError, match="the app serves no missing component with a Widgets"):
        await served.api.get("/state/missing")


async def test_state_of_gives_routes_the_components_state_as_a_dependency(
    served: Served,
) -> None:
    assert (await served.api.get("/widgets")).json() == 3
    with pytest.raises(TypeError, match="the app serves no gadgets component with a Widgets"):
        await served.api.get("/gadgets")


@pytest.mark.parametrize("runtime", [None, "a runtime's name"], ids=["none", "not-a-runtime"])
async def test_an_app_built_without_a_runtime_says_how_to_build_it(runtime: object) -> None:
    transport = httpx.ASGITransport(app=tiny_app(runtime))

    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        with pytest.raises(
            TypeError, match=r"no runtime; build it with marketsense\.common\.app\.create_app"
        ):
            await api.get("/reader", headers={KEY_HEADER: "msk_" + "x" * 43})
