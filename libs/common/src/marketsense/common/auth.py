"""API keys with roles: reader < publisher < approver. Only the keys' sha256 is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from fastapi import HTTPException
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.engine import Database
from marketsense.common.db.models import ApiKey

KEY_HEADER = "X-API-Key"
KEY_PREFIX = "msk_"
PRINCIPAL_SCOPE_KEY = "marketsense.principal"
"""Where the request guard leaves the principal of a request's key, for routes to read."""


class Role(StrEnum):
    """What a key may do; each role may also do everything of the roles below it."""

    READER = "reader"
    """Read predictions, models, versions, aliases and the audit log."""
    PUBLISHER = "publisher"
    """Also register models, push versions and move aliases other than `production`."""
    APPROVER = "approver"
    """Also move `production` and roll it back."""


_RANK = {Role.READER: 1, Role.PUBLISHER: 2, Role.APPROVER: 3}


def role_allows(held: Role, needed: Role) -> bool:
    """Whether a key holding `held` may do what needs `needed`."""
    return _RANK[held] >= _RANK[needed]


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name and role."""

    name: str
    role: Role


def new_key() -> str:
    """A fresh random key (256 bits), shown once to whoever creates it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key.

    Keys are 256-bit random strings, not passwords, so a plain SHA-256 cannot be brute-forced and
    keeps the per-request check in microseconds; slow password hashes guard guessable secrets.
    """
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    session: AsyncSession, *, name: str, role: Role, key: str | None = None
) -> str:
    """Store a key (a new random one unless given) under a unique name; return the key."""
    key = key or new_key()
    if len(key) < 24:
        raise ValueError("an API key needs at least 24 characters")
    session.add(ApiKey(name=name, role=role.value, key_hash=hash_key(key)))
    await session.flush()
    return key


async def revoke_key(session: AsyncSession, name: str) -> bool:
    """Revoke a key by name; False if no live key has that name."""
    stored = await session.scalar(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    )
    if stored is None:
        return False
    stored.revoked_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return True


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.id)))


class KeyRing:
    """Resolves keys to principals, remembering answers (misses too) for `ttl` seconds.

    The cache keeps the database out of the request path; a revoked key stops working within `ttl`.
    """

    def __init__(self, database: Database, *, ttl: float = 30.0, max_entries: int = 10_000):
        self.database = database
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def principal(self, key: str) -> Principal | None:
        """The principal a key belongs to, or None for an unknown or revoked key."""
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.database.session() as session:
            stored = await session.scalar(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            )
        found = None if stored is None else Principal(stored.name, Role(stored.role))
        self._cache[digest] = (now + self.ttl, found)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return found


KEY_SCHEME = APIKeyHeader(
    name=KEY_HEADER,
    auto_error=False,
    description="An API key; `marketsense keys create` makes one.",
)
"""The API key header as OpenAPI documents it; routes read it through `require`."""


async def authorize(keyring: KeyRing, key: str | None, role: Role) -> Principal:
    """The principal of a key holding `role`: HTTP 401 without a valid key, 403 below the role."""
    if not key:
        raise HTTPException(
            401,
            f"missing API key: send it in the {KEY_HEADER} header",
            {"WWW-Authenticate": KEY_HEADER},
        )
    principal = await keyring.principal(key)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", {"WWW-Authenticate": KEY_HEADER})
    check_role(principal, role)
    return principal


def check_role(principal: Principal, role: Role) -> None:
    """HTTP 403 naming both roles unless the principal holds `role`."""
    if not role_allows(principal.role, role):
        raise HTTPException(
            403,
            f"this needs the {role.value} role; key {principal.name!r} is {principal.role.value}",
        )
