"""A small app built by the service factory, with routes of each role and body kind, and a key of
each role: what the request guard and the error answers are tried on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, field_validator

from marketsense.common.app import Component, create_app
from marketsense.common.auth import Role, create_key
from marketsense.common.deps import PublisherKey, ReaderKey
from marketsense.common.request_guard import BodyLimit
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings

DEFAULT_LIMIT = 4096
"""The app's default body limit (`http_max_body_kib` of 4), small so tests stay fast."""
BIG_LIMIT = 64 << 10
"""The limit the `/big` route states for itself."""
STREAM_LIMIT = 1 << 20
"""The limit of the `/stream` route, which reads its body as it streams in."""


class Item(BaseModel):
    """A body with a text, a whole number and a real number."""

    name: str
    count: int
    weight: float = 0.0

    @field_validator("name")
    @classmethod
    def _numeric_names_parse(cls, name: str) -> str:
        if name.startswith("#"):
            int(name[1:])  # Python's own error, as a careless validator would let through
        return name


router = APIRouter()


@router.post("/items")
async def post_item(item: Item, _key: ReaderKey) -> dict[str, Any]:
    return {"name": item.name[:10], "count": item.count}


@router.post("/big")
async def post_big(item: Item, _key: ReaderKey) -> dict[str, int]:
    return {"length": len(item.name)}


@router.get("/items/{n}")
async def get_item(n: Annotated[int, PathParam(le=100)], _key: ReaderKey) -> int:
    return n


@router.put("/items/{n}")
async def put_item(n: int, item: Item, _key: PublisherKey) -> int:
    return n + item.count


@router.post("/stream")
async def post_stream(request: Request, _key: PublisherKey) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@dataclass
class Guarded:
    """The app, a client of it, and a key per role."""

    app: Any
    api: httpx.AsyncClient
    keys: dict[Role, str]

    def key(self, role: Role) -> dict[str, str]:
        """The key header of a role."""
        return {"X-API-Key": self.keys[role]}


@contextlib.asynccontextmanager
async def guarded_app(home: Path, **settings: Any) -> AsyncIterator[Guarded]:
    """The app started on an embedded runtime, with one key per role."""
    common = CommonSettings(home=home, http_max_body_kib=DEFAULT_LIMIT >> 10, **settings)
    runtime = Runtime(common, service="guard-test")
    component = Component(
        "guarded",
        router=router,
        body_limits={
            post_big: BodyLimit(BIG_LIMIT, "MARKETSENSE_BIG_ROWS"),
            post_stream: BodyLimit(STREAM_LIMIT, "MARKETSENSE_STREAM_MB", streamed=True),
        },
    )
    app = create_app(runtime, [component], title="guard test")
    async with app.router.lifespan_context(app):
        async with runtime.database.session() as session:
            keys = {role: await create_key(session, name=role.value, role=role) for role in Role}
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            yield Guarded(app, api, keys)
