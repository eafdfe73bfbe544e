"""API keys on SQLite and PostgreSQL: stored as hashes, revoked by name, resolved through a
cache that remembers misses too, and checked against the role a route needs."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools

import pytest
from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketsense.common.auth import (
    KEY_HEADER,
    KEY_PREFIX,
    KeyRing,
    Principal,
    Role,
    authorize,
    create_key,
    hash_key,
    list_keys,
    new_key,
    revoke_key,
    role_allows,
)
from marketsense.common.db.engine import Database
from marketsense.common.db.models import ApiKey

ORDER = [Role.READER, Role.PUBLISHER, Role.APPROVER]


async def stored_key(database: Database, name: str, role: Role) -> str:
    """A new random key under `name`, committed."""
    async with database.session() as session:
        key = await create_key(session, name=name, role=role)
        await session.commit()
    return key


async def revoke(database: Database, name: str) -> bool:
    """Revoke a key by name and commit."""
    async with database.session() as session:
        revoked = await revoke_key(session, name)
        await session.commit()
    return revoked


@pytest.mark.parametrize(("held", "needed"), list(itertools.product(ORDER, repeat=2)))
def test_a_role_allows_what_it_and_every_role_below_it_may_do(held: Role, needed: Role) -> None:
    assert role_allows(held, needed) == (ORDER.index(held) >= ORDER.index(needed))


def test_new_keys_are_long_random_and_prefixed() -> None:
    keys = {new_key() for _ in range(200)}

    assert len(keys) == 200
    assert all(key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43 for key in keys)


def test_hash_key_is_the_hex_sha256_of_the_key() -> None:
    key = "msk_" + "é" * 30

    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert hash_key(key) != hash_key(key + "x")


async def test_a_created_key_is_stored_only_as_its_hash(database: Database) -> None:
    key = await stored_key(database, "ci-publisher", Role.PUBLISHER)

    async with database.session() as session:
        [row] = await list_keys(session)

    assert (row.name, row.role, row.revoked_at) == ("ci-publisher", "publisher", None)
    assert row.key_hash == hash_key(key)
    assert all(key not in str(getattr(row, c.key)) for c in ApiKey.__table__.columns)


async def test_a_chosen_key_is_kept_and_a_short_one_refused(database: Database) -> None:
    chosen = "k" * 24
    async with database.session() as session:
        assert await create_key(session, name="chosen", role=Role.READER, key=chosen) == chosen
        with pytest.raises(ValueError, match="at least 24 characters"):
            await create_key(session, name="short", role=Role.READER, key="k" * 23)
        await session.commit()

    assert await KeyRing(database).principal(chosen) == Principal("chosen", Role.READER)


async def test_a_second_key_under_a_taken_name_is_refused(database: Database) -> None:
    await stored_key(database, "ops", Role.APPROVER)

    async with database.session() as session:
        with pytest.raises(IntegrityError):
            await create_key(session, name="ops", role=Role.READER)


async def test_revoke_marks_a_live_key_once_and_knows_no_other(database: Database) -> None:
    await stored_key(database, "ops", Role.APPROVER)
    before = dt.datetime.now(dt.UTC)

    assert await revoke(database, "ops") is True
    assert await revoke(database, "ops") is False
    assert await revoke(database, "nobody") is False

    async with database.session() as session:
        revoked_at = await session.scalar(select(ApiKey.revoked_at).where(ApiKey.name == "ops"))
    assert revoked_at is not None
    assert before <= revoked_at <= dt.datetime.now(dt.UTC)


async def test_list_keys_shows_every_key_oldest_first_revoked_ones_included(
    database: Database,
) -> None:
    for name, role in (("c", Role.READER), ("a", Role.APPROVER), ("b", Role.PUBLISHER)):
        await stored_key(database, name, role)
    await revoke(database, "a")

    async with database.session() as session:
        keys = await list_keys(session)

    assert [(k.name, k.revoked_at is not None) for k in keys] == [
        ("c", False),
        ("a", True),
        ("b", False),
    ]


async def test_keyring_resolves_live_keys_and_not_unknown_or_revoked_ones(
    database: Database,
) -> None:
    live = await stored_key(database, "reader", Role.READER)
    revoked = await stored_key(database, "old", Role.APPROVER)
    await revoke(database, "old")
    keyring = KeyRing(database, ttl=0)

    assert await keyring.principal(live) == Principal("reader", Role.READER)
    assert await keyring.principal(revoked) is None
    assert await keyring.principal(new_key()) is None
    assert await keyring.principal("") is None


async def test_keyring_remembers_a_key_until_its_ttl_so_a_revocation_lands_late(
    database: Database,
) -> None:
    key = await stored_key(database, "ops", Role.APPROVER)
    keyring = KeyRing(database, ttl=0.5)
    assert await keyring.principal(key) == Principal("ops", Role.APPROVER)

    await revoke(database, "ops")

    assert await keyring.principal(key) == Principal("ops", Role.APPROVER)
    await asyncio.sleep(0.6)
    assert await keyring.principal(key) is None


async def test_keyring_remembers_a_miss_until_its_ttl(database: Database) -> None:
    key = new_key()
    keyring = KeyRing(database, ttl=0.5)
    assert await keyring.principal(key) is None

    async with database.session() as session:
        await create_key(session, name="late", role=Role.READER, key=key)
        await session.commit()

    assert await keyring.principal(key) is None
    await asyncio.sleep(0.6)
    assert await keyring.principal(key) == Principal("late", Role.READER)


async def test_keyring_beyond_its_size_forgets_the_answer_it_looked_up_first(
    database: Database,
) -> None:
    keys = [await stored_key(database, f"k{i}", Role.READER) for i in range(3)]
    keyring = KeyRing(database, ttl=3600, max_entries=2)
    for key in keys[:2]:
        await keyring.principal(key)
    for name in ("k0", "k1"):
        await revoke(database, name)

    await keyring.principal(keys[2])  # a third answer: k0's, the oldest, goes

    assert await keyring.principal(keys[1]) == Principal("k1", Role.READER)
    assert await keyring.principal(keys[0]) is None


@pytest.mark.parametrize("key", [None, ""])
async def test_authorize_without_a_key_is_401_naming_the_header(
    database: Database, key: str | None
) -> None:
    with pytest.raises(HTTPException) as caught:
        await authorize(KeyRing(database), key, Role.READER)

    assert caught.value.status_code == 401
    assert caught.value.detail == f"missing API key: send it in the {KEY_HEADER} header"
    assert caught.value.headers == {"WWW-Authenticate": KEY_HEADER}


async def test_authorize_with_an_unknown_key_is_401(database: Database) -> None:
    with pytest.raises(HTTPException) as caught:
        await authorize(KeyRing(database), new_key(), Role.READER)

    assert (caught.value.status_code, caught.value.detail) == (401, "unknown or revoked API key")


async def test_authorize_below_the_role_is_403_naming_both_roles(database: Database) -> None:
    key = await stored_key(database, "ci", Role.PUBLISHER)

    with pytest.raises(HTTPException) as caught:
        await authorize(KeyRing(database), key, Role.APPROVER)

    assert caught.value.status_code == 403
    assert caught.value.detail == "this needs the approver role; key 'ci' is publisher"


@pytest.mark.parametrize("needed", [Role.READER, Role.PUBLISHER])
async def test_authorize_at_or_above_the_role_returns_the_principal(
    database: Database, needed: Role
) -> None:
    key = await stored_key(database, "ci", Role.PUBLISHER)

    assert await authorize(KeyRing(database), key, needed) == Principal("ci", Role.PUBLISHER)
