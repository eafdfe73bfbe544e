"""`marketsense keys ...`: create, list and revoke the API keys services accept.

These commands talk to the database directly (MARKETSENSE_DATABASE_URL): whoever can reach it
already holds every key's power, so no API key is needed to manage keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.cli.output import console, err, fail
from marketsense.common.auth import Role, create_key, hash_key, list_keys, revoke_key
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import ApiKey
from marketsense.common.settings import CommonSettings

keys_app = typer.Typer(help="API keys for the services' APIs (kept in the database as sha256).")

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add the `keys` command group to the `marketsense` command."""
    app.add_typer(keys_app, name="keys")


def _in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed session on the configured database."""

    async def go() -> T:
        database = Database(CommonSettings().resolved_database_url())
        try:
            if database.is_sqlite:
                # Nobody else migrates the embedded database, as Runtime.start_storage does.
                await upgrade(database)
            async with database.session() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(go())
    except OSError as exc:
        raise fail(f"cannot reach the database: {exc}; check MARKETSENSE_DATABASE_URL") from exc
    except IntegrityError as exc:
        raise fail(
            f"someone stored the same key name or secret at the same time: {exc.orig}"
        ) from exc
    except DBAPIError as exc:
        raise fail(
            f"database error: {exc.orig}; check MARKETSENSE_DATABASE_URL "
            "and run `marketsense db upgrade`"
        ) from exc


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique name saying who uses the key, e.g. ci.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    key_env: Annotated[
        str | None,
        typer.Option(
            help="Store the key held in this environment variable (e.g. from a secret manager) "
            "instead of a new random one; it is not printed."
        ),
    ] = None,
) -> None:
    """Create a key; a new random key is printed once on stdout and never shown again."""
    given: str | None = None
    if key_env is not None:
        given = os.environ.get(key_env)
        if not given:
            raise fail(f"environment variable {key_env} is not set or empty")

    async def work(session: AsyncSession) -> str | None:
        if await session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
            return None
        if given and await session.scalar(
            select(ApiKey.id).where(ApiKey.key_hash == hash_key(given))
        ):
            return ""
        return await create_key(session, name=name, role=role, key=given)

    try:
        key = _in_session(work)
    except ValueError as exc:
        raise fail(f"{exc}: use a longer key in {key_env}") from exc
    if key is None:
        raise fail(f"a key named {name!r} already exists: pick another name")
    if not key:
        raise fail(f"the key in {key_env} is already stored under another name")
    if given is None:
        typer.echo(key)
        err.print(
            f"created {role.value} key {escape(repr(name))}: it is shown only this once",
            soft_wrap=True,
        )
    else:
        console.print(
            f"created {role.value} key {escape(repr(name))} from {escape(key_env or '')}",
            soft_wrap=True,
        )


@keys_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every key: name, role, when it was created and revoked (never the secrets)."""

    async def work(session: AsyncSession) -> list[dict[str, str | None]]:
        return [
            {
                "name": key.name,
                "role": key.role,
                "created_at": _utc_iso(key.created_at),
                "revoked_at": _utc_iso(key.revoked_at) if key.revoked_at else None,
            }
            for key in await list_keys(session)
        ]

    rows = _in_session(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "role", "created", "revoked")
    for row in rows:
        table.add_row(
            escape(row["name"] or ""),
            row["role"],
            _short_time(row["created_at"]),
            _short_time(row["revoked_at"]) or "-",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Name of the key to revoke.")]) -> None:
    """Revoke a key; services that looked it up recently refuse it within their cache TTL."""
    if not _in_session(lambda session: revoke_key(session, name)):
        raise fail(f"no live key named {name!r}: see `marketsense keys list`")
    console.print(
        f"revoked key {escape(repr(name))}; services refuse it within "
        "MARKETSENSE_API_KEY_CACHE_SECONDS (default 30 s)",
        soft_wrap=True,
    )


def _utc_iso(time: dt.datetime) -> str:
    """ISO form in UTC; SQLite hands back naive datetimes that were stored as UTC."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=dt.UTC)
    return time.astimezone(dt.UTC).isoformat()


def _short_time(iso: str | None) -> str:
    """An ISO time to the second, for tables."""
    return iso[:19].replace("T", " ") + " UTC" if iso else ""
