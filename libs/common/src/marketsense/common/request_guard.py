"""What every request passes before a route reads it: a valid key before routing, then, as the
body is read, the route's role and a body of bounded size that arrives in bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketsense.common.auth import (
    KEY_HEADER,
    PRINCIPAL_SCOPE_KEY,
    KeyRing,
    Principal,
    Role,
    authorize,
    check_role,
    role_allows,
)
from marketsense.common.deps import KeyCheck

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose body a route may read; a body sent with any other is never read."""

_KEY_HEADER = KEY_HEADER.lower().encode("latin-1")


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a route's request body may carry."""

    max_bytes: int
    setting: str
    """The setting that moves the limit, named in the 413."""
    streamed: bool = False
    """The route reads its body as it streams in (an upload): the body timeout then bounds each
    wait for more bytes, not the whole body."""


@dataclass(frozen=True)
class GuardRules:
    """Which paths need no key, and the body limits and timeout of the routes that read one."""

    public_paths: frozenset[str]
    default_limit: BodyLimit
    limits: dict[Callable[..., Any], BodyLimit]
    """Limits of routes that need another than `default_limit`, by endpoint function."""
    body_timeout: float


class RequestGuard:
    """Pure ASGI middleware: 401 before routing for a request to a non-public path without a
    valid key; 403, 413 and 408 raised from the body reads of the route (so before FastAPI
    parses or validates anything, and without buffering a body over its limit)."""

    def __init__(self, app: ASGIApp, *, keyring: KeyRing, rules: GuardRules):
        self.app = app
        self.keyring = keyring
        self.rules = rules
        self._roles: dict[int, Role | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.rules.public_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = await authorize(self.keyring, _key_of(scope), Role.READER)
        except HTTPException as denied:
            answer = JSONResponse({"detail": denied.detail}, denied.status_code, denied.headers)
            await answer(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        if scope["method"] in BODY_METHODS:
            receive = _BoundedBody(self, scope, receive, principal)
        await self.app(scope, receive, send)

    def role_of(self, route: object) -> Role | None:
        """The highest role a route's key checks ask for (None: the route checks no key)."""
        found = self._roles.get(id(route), ...)
        if found is ...:
            dependant = getattr(route, "dependant", None)
            roles = [c.role for c in _calls(dependant) if isinstance(c, KeyCheck)]
            found = max(roles, key=_rank, default=None)
            self._roles[id(route)] = found
        return found if isinstance(found, Role) else None


def _rank(role: Role) -> int:
    return sum(role_allows(role, other) for other in Role)


def _calls(dependant: Dependant | None) -> Iterator[object]:
    """Every dependency a route calls, its sub-dependencies included."""
    if dependant is None:
        return
    for child in dependant.dependencies:
        yield child.call
        yield from _calls(child)


def _key_of(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _KEY_HEADER:
            return bytes(value).decode("latin-1")
    return None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


class _BoundedBody:
    """The receive channel a route reads its body through, checked on the first read."""

    def __init__(self, guard: RequestGuard, scope: Scope, receive: Receive, principal: Principal):
        self.guard = guard
        self.scope = scope
        self.receive = receive
        self.principal = principal
        self.limit: BodyLimit | None = None
        self.deadline = 0.0
        self.read = 0
        self.done = False

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        limit = self.limit or self._first_read()
        timeout = self.guard.rules.body_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if limit.streamed else self.deadline
        try:
            async with asyncio.timeout_at(deadline):
                message = await self.receive()
        except TimeoutError:
            raise HTTPException(
                408,
                f"the request body did not arrive within {timeout:g} s "
                "(MARKETSENSE_HTTP_BODY_TIMEOUT_SECONDS)",
                {"Connection": "close"},
            ) from None
        if message["type"] != "http.request":
            self.done = True
            return message
        self.read += len(message.get("body", b""))
        if self.read > limit.max_bytes:
            raise _too_large(limit)
        self.done = not message.get("more_body", False)
        return message

    def _first_read(self) -> BodyLimit:
        """Refuse a key below the route's role, then a body declared over the route's limit."""
        role = self.guard.role_of(self.scope.get("route"))
        if role is not None:
            check_role(self.principal, role)
        rules = self.guard.rules
        limit = rules.limits.get(self.scope.get("endpoint"), rules.default_limit)  # type: ignore[arg-type]
        declared = _declared_length(self.scope)
        if declared is not None and declared > limit.max_bytes:
            raise _too_large(limit)
        self.limit = limit
        self.deadline = asyncio.get_running_loop().time() + rules.body_timeout
        return limit


def _too_large(limit: BodyLimit) -> HTTPException:
    return HTTPException(
        413,
        f"the request body is over this route's limit of {limit.max_bytes:,} bytes "
        f"({limit.setting})",
        {"Connection": "close"},
    )
