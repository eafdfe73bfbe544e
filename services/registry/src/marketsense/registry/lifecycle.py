"""A version's life after its push: archived, its aliases deleted, descriptions edited, and the
whole bundle handed out as one download. Each change owns its transaction and is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import io
import logging
import tarfile
import tempfile
from collections.abc import Iterator
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import AliasChange, ModelVersion
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore, sha256_hex
from marketsense.models.versions import PRODUCTION, version_files
from marketsense.registry import audit
from marketsense.registry.schemas import AliasChangeRead, ModelRead, VersionRead
from marketsense.registry.service import (
    Conflict,
    NotFound,
    RegistryProblem,
    alias_row,
    aliases_by_version,
    change_read,
    get_model,
    get_version,
    lock_model,
    read_model,
    read_version,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SPOOL_BYTES = 8 << 20
"""Bundles up to this size are built in memory; larger ones in a temporary file."""


class DamagedVersion(RegistryProblem):
    """A stored file whose bytes no longer match the sha256 it was registered with."""

    status = 500


async def archive_version(
    *, runtime: Runtime, name: str, version: int, reason: str, actor: str
) -> VersionRead:
    """Archive a version: never promotable again, still readable and downloadable."""
    async with runtime.transaction() as session:
        await lock_model(session, name)
        row = await get_version(session, name, version)
        if row.archived_at is not None:
            raise Conflict(
                f"version {version} of {name!r} was archived on {row.archived_at.isoformat()} "
                f"by {row.archived_by}: {row.archive_reason}"
            )
        _refuse_while_aliased(name, version, (await aliases_by_version(session, name)))
        row.archived_at = dt.datetime.now(dt.UTC)
        row.archived_by = actor
        row.archive_reason = reason
        audit.record(
            session, model_name=name, action="archive", actor=actor, version=version, reason=reason
        )
        await session.flush()
        log.info("%s version %d archived by %s", name, version, actor)
        return await read_version(session=session, name=name, version=version)


def _refuse_while_aliased(name: str, version: int, aliases: dict[int, list[str]]) -> None:
    """An alias names the versions services load and people promote: an archived version must
    hold none, so the alias is moved or removed first, deliberately."""
    held = aliases.get(version, [])
    if PRODUCTION in held:
        raise Conflict(
            f"version {version} of {name!r} is {PRODUCTION}; promote another version "
            f"(PUT /v1/models/{name}/aliases/{PRODUCTION}) or roll back "
            f"(POST /v1/models/{name}/rollback) first, then archive it"
        )
    if held:
        raise Conflict(
            f"version {version} of {name!r} is still aliased as {', '.join(held)}; point "
            f"{'them' if len(held) > 1 else 'it'} at another version or delete "
            f"{'them' if len(held) > 1 else 'it'} (DELETE /v1/models/{name}/aliases/{held[0]}) "
            "first, then archive it"
        )


async def delete_alias(
    *, runtime: Runtime, name: str, alias: str, reason: str, actor: str
) -> AliasChangeRead:
    """Remove an alias other than production, kept in its history as a `delete`."""
    async with runtime.transaction() as session:
        await lock_model(session, name)
        if alias == PRODUCTION:
            raise Conflict(
                f"{PRODUCTION} cannot be deleted: services load the version it names; move it "
                f"with PUT /v1/models/{name}/aliases/{PRODUCTION} or roll it back with "
                f"POST /v1/models/{name}/rollback"
            )
        current = await alias_row(session, name, alias)
        if current is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        change = AliasChange(
            model_name=name,
            alias=alias,
            action="delete",
            from_version=current.version,
            to_version=None,
            actor=actor,
            reason=reason,
            forced=False,
            at=dt.datetime.now(dt.UTC),
        )
        session.add(change)
        audit.record(
            session,
            model_name=name,
            action="alias_deleted",
            actor=actor,
            alias=alias,
            from_version=current.version,
            reason=reason,
        )
        await session.delete(current)
        await session.flush()
        log.info("%s of %s (version %d) deleted by %s", alias, name, current.version, actor)
        return change_read(change)


async def edit_model_description(
    *, runtime: Runtime, name: str, description: str, reason: str, actor: str
) -> ModelRead:
    """Replace a model's description; the old one is kept in the audit entry."""
    async with runtime.transaction() as session:
        model = await lock_model(session, name)
        if model.description != description:
            audit.record(
                session,
                model_name=name,
                action="description_edited",
                actor=actor,
                reason=reason,
                detail=_was(model.description),
            )
            model.description = description
            await session.flush()
        return await read_model(session=session, name=name)


async def edit_version_description(
    *, runtime: Runtime, name: str, version: int, description: str, reason: str, actor: str
) -> VersionRead:
    """Replace a version's description; the old one is kept in the audit entry."""
    async with runtime.transaction() as session:
        await lock_model(session, name)
        row = await get_version(session, name, version)
        if row.description != description:
            audit.record(
                session,
                model_name=name,
                action="description_edited",
                actor=actor,
                version=version,
                reason=reason,
                detail=_was(row.description),
            )
            row.description = description
            await session.flush()
        return await read_version(session=session, name=name, version=version)


def _was(description: str) -> str:
    """How an audit entry keeps the text an edit replaced."""
    return f"previous description: {description!r}"


async def bundle_file(
    *, session: AsyncSession, store: ObjectStore, name: str, version: int
) -> IO[bytes]:
    """A gzip tar of every stored file of a version, manifest.json included, rewound.

    Each file is checked against its registered sha256 on the way in: the archive carries no
    checksum header of its own, so a damaged file is refused here rather than handed out.
    """
    await get_model(session, name)
    row = await get_version(session, name, version)
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - caller closes
    try:
        with (
            gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=1, mtime=0) as packed,
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            await _add_files(tar, store, row)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


async def _add_files(tar: tarfile.TarFile, store: ObjectStore, row: ModelVersion) -> None:
    """Add a version's stored files to `tar`, by name, refusing any that no longer match."""
    for stored in sorted(version_files(row), key=lambda f: f.name):
        data = await store.read_key(store.key_for(stored.uri))
        if sha256_hex(data) != stored.sha256:
            log.error(
                "stored %s of %s version %d is damaged", stored.name, row.model_name, row.version
            )
            raise DamagedVersion(
                f"{stored.name} of version {row.version} of {row.model_name!r} no longer "
                "matches the sha256 it was registered with; the object store copy is damaged"
            )
        info = tarfile.TarInfo(stored.name)
        info.size = len(data)
        info.mode = 0o644
        await asyncio.to_thread(_add, tar, info, data)


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes) -> None:
    """Write one member; compression is CPU work kept off the event loop."""
    tar.addfile(info, io.BytesIO(data))


def chunks(source: IO[bytes]) -> Iterator[bytes]:
    """The bytes of `source` in chunks, closing it at the end (or when the client leaves)."""
    try:
        while chunk := source.read(_CHUNK):
            yield chunk
    finally:
        source.close()
