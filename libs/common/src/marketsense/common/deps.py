"""Dependencies every service's routes share: the runtime, a database session, API keys by role.

Each service's `deps.py` re-exports these next to its own, so a route imports from one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.auth import (
    KEY_HEADER,
    KEY_SCHEME,
    PRINCIPAL_SCOPE_KEY,
    Principal,
    Role,
    authorize,
    check_role,
)
from marketsense.common.runtime import Runtime

T = TypeVar("T")


def get_runtime(request: Request) -> Runtime:
    """The runtime the app was built on."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise TypeError("the app has no runtime; build it with marketsense.common.app.create_app")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
"""The app's runtime: database, bus, object store, key ring."""


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A read session for one request, closed after it."""
    async with runtime.database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
"""A database session for reading; writes go through a service function's own transaction."""


async def authorized(request: Request, role: Role, key: str | None = None) -> Principal:
    """The caller holding `role`: the principal the request guard admitted, else the key's own
    check (401 without a valid key, 403 below the role)."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(principal, Principal):
        check_role(principal, role)
        return principal
    if key is None:
        key = request.headers.get(KEY_HEADER)
    return await authorize(get_runtime(request).keyring, key, role)


class KeyCheck:
    """A dependency admitting keys that hold `role`; the request guard reads the role too, to
    refuse a key below it before the route's body is read."""

    def __init__(self, role: Role):
        self.role = role

    async def __call__(
        self, request: Request, key: Annotated[str | None, Security(KEY_SCHEME)]
    ) -> Principal:
        return await authorized(request, self.role, key)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys that hold `role` (401 without a valid key, 403 below it)."""
    return KeyCheck(role)


ReaderKey = Annotated[Principal, Depends(require(Role.READER))]
"""Who called, holding at least the reader role."""
PublisherKey = Annotated[Principal, Depends(require(Role.PUBLISHER))]
"""Who called, holding at least the publisher role."""
ApproverKey = Annotated[Principal, Depends(require(Role.APPROVER))]
"""Who called, holding the approver role."""


def component_state(request: Request, name: str, kind: type[T]) -> T:
    """What a component of the app keeps for its routes (see `Component.state`)."""
    state = getattr(request.app.state, name, None)
    if not isinstance(state, kind):
        raise TypeError(f"the app serves no {name} component with a {kind.__name__}")
    return state


def state_of(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency returning what the component `name` keeps for its routes, typed as `kind`."""

    def dependency(request: Request) -> T:
        return component_state(request, name, kind)

    return dependency
