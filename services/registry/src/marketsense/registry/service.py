"""Reading the registry in the caller's session: models, versions and their files, aliases a
page at a time; and the refusals every registry operation may raise."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from marketsense.common.store.base import ObjectStore, sha256_hex
from marketsense.models.kinds import ModelKind, Variant, as_kind
from marketsense.models.versions import (
    version_files,
)
from marketsense.registry.measure import VersionMeasures, version_measures
from marketsense.registry.pagination import cut_page
from marketsense.registry.schemas import (
    AliasChangeRead,
    FileRead,
    ModelRead,
    VersionRead,
)
from marketsense.registry.schemas_lifecycle import (
    AliasChangePageRead,
    ModelPageRead,
    VersionPageRead,
)

log = logging.getLogger(__name__)


class RegistryProblem(Exception):
    """A request the registry refuses; `status` is the HTTP status that says why."""

    status = 400


class NotFound(RegistryProblem):
    """An unknown model, version, alias or file."""

    status = 404


class Conflict(RegistryProblem):
    """A request that clashes with the registry's state (exists already, gate, same version)."""

    status = 409


class Unprocessable(RegistryProblem):
    """A well-formed request whose values cannot be used."""

    status = 422


async def list_models(*, session: AsyncSession, limit: int, after: str | None) -> ModelPageRead:
    """A page of registered models by name, those after the name `after`."""
    query = select(RegisteredModel).order_by(RegisteredModel.name).limit(limit + 1)
    if after is not None:
        query = query.where(RegisteredModel.name > after)
    models, next_cursor = cut_page(list(await session.scalars(query)), limit, lambda m: m.name)
    names = [m.name for m in models]
    aliases: dict[str, dict[str, int]] = {}
    for row in await session.scalars(
        select(ModelAlias).where(ModelAlias.model_name.in_(names)).order_by(ModelAlias.alias)
    ):
        aliases.setdefault(row.model_name, {})[row.alias] = row.version
    latest: dict[str, int] = {
        name: number
        for name, number in await session.execute(
            select(ModelVersion.model_name, func.max(ModelVersion.version))
            .where(ModelVersion.model_name.in_(names))
            .group_by(ModelVersion.model_name)
        )
    }
    return ModelPageRead(
        items=[
            model_read(m, aliases=aliases.get(m.name, {}), latest=latest.get(m.name))
            for m in models
        ],
        next_cursor=next_cursor,
    )


async def read_model(*, session: AsyncSession, name: str) -> ModelRead:
    """One registered model; NotFound if unknown."""
    model = await get_model(session, name)
    aliases = {
        row.alias: row.version
        for row in await session.scalars(
            select(ModelAlias).where(ModelAlias.model_name == name).order_by(ModelAlias.alias)
        )
    }
    latest = await session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_name == name)
    )
    return model_read(model, aliases=aliases, latest=latest)


async def model_kind(*, session: AsyncSession, name: str) -> ModelKind:
    """The kind of a registered model; NotFound if unknown."""
    model = await get_model(session, name)
    return as_kind(model.kind)


async def list_versions(
    *,
    session: AsyncSession,
    name: str,
    limit: int,
    before: int | None,
    sentiment_variant: Variant = "int8",
) -> VersionPageRead:
    """A page of a model's versions, newest first, those below version `before`; NotFound if the
    model is unknown."""
    model = await get_model(session, name)
    kind = as_kind(model.kind)
    aliases = await aliases_by_version(session, name)
    query = (
        select(ModelVersion)
        .where(ModelVersion.model_name == name)
        .order_by(ModelVersion.version.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(ModelVersion.version < before)
    rows, next_cursor = cut_page(list(await session.scalars(query)), limit, lambda r: r.version)
    measures = await version_measures(session, kind=kind, rows=rows, preferred=sentiment_variant)
    return VersionPageRead(
        items=[
            version_read(
                row, kind=kind, aliases=aliases.get(row.version, []), measures=measures[row.version]
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


async def read_version(
    *, session: AsyncSession, name: str, version: int, sentiment_variant: Variant = "int8"
) -> VersionRead:
    """One version of a model; NotFound if the model or version is unknown. Its `metrics` are
    the registry's measurement of the variant served when processing serves
    `sentiment_variant`."""
    model = await get_model(session, name)
    kind = as_kind(model.kind)
    row = await get_version(session, name, version)
    aliases = await aliases_by_version(session, name)
    measures = await version_measures(session, kind=kind, rows=[row], preferred=sentiment_variant)
    return version_read(
        row, kind=kind, aliases=aliases.get(version, []), measures=measures[version]
    )


@dataclass(frozen=True)
class FileContent:
    """A stored file's bytes and the sha256 it was registered with."""

    data: bytes
    sha256: str


async def read_file(
    *, session: AsyncSession, store: ObjectStore, name: str, version: int, file: str
) -> FileContent:
    """The stored bytes of one file of a version, as stored, with its registered sha256.

    The bytes are served unverified: clients check them against the sha256 (sent as a header),
    which catches damage at rest and in transit alike. A mismatch seen here is logged.
    """
    await get_model(session, name)
    row = await get_version(session, name, version)
    stored = next((f for f in version_files(row) if f.name == file), None)
    if stored is None:
        names = [f.name for f in version_files(row)]
        raise NotFound(f"version {version} of {name!r} has no file {file!r} (it has {names})")
    data = await store.read_key(store.key_for(stored.uri))
    if sha256_hex(data) != stored.sha256:
        log.error(
            "stored %s of %s version %d does not match its registered sha256", file, name, version
        )
    return FileContent(data=data, sha256=stored.sha256)


async def read_alias(
    *, session: AsyncSession, name: str, alias: str, sentiment_variant: Variant = "int8"
) -> VersionRead:
    """The version an alias points at; NotFound if the model is unknown or the alias unset."""
    await get_model(session, name)
    target = await session.get(ModelAlias, (name, alias))
    if target is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return await read_version(
        session=session, name=name, version=target.version, sentiment_variant=sentiment_variant
    )


async def alias_history(
    *, session: AsyncSession, name: str, alias: str, limit: int, before: int | None
) -> AliasChangePageRead:
    """A page of an alias's moves, newest first, those before the change id `before`; NotFound
    if the model is unknown."""
    await get_model(session, name)
    query = (
        select(AliasChange)
        .where(AliasChange.model_name == name, AliasChange.alias == alias)
        .order_by(AliasChange.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(AliasChange.id < before)
    rows, next_cursor = cut_page(list(await session.scalars(query)), limit, lambda r: r.id)
    return AliasChangePageRead(items=[change_read(row) for row in rows], next_cursor=next_cursor)


async def alias_at(
    *, session: AsyncSession, name: str, alias: str, time: dt.datetime
) -> int | None:
    """The version an alias pointed at at `time` (timezone-aware), or None if it was unset or
    deleted then."""
    await get_model(session, name)
    return await session.scalar(
        select(AliasChange.to_version)
        .where(
            AliasChange.model_name == name,
            AliasChange.alias == alias,
            AliasChange.at <= time,
        )
        .order_by(AliasChange.at.desc(), AliasChange.id.desc())
        .limit(1)
    )


async def get_model(session: AsyncSession, name: str) -> RegisteredModel:
    """A registered model, or NotFound."""
    model = await session.get(RegisteredModel, name)
    if model is None:
        raise NotFound(f"no model named {name!r}")
    return model


async def lock_model(session: AsyncSession, name: str) -> RegisteredModel:
    """Lock a model's row for this transaction, serialising its pushes and alias moves."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE and takes its (database-wide) write lock at a transaction's
        # first write: a no-op write takes it now, before the reads the change depends on.
        await session.execute(
            update(RegisteredModel)
            .where(RegisteredModel.name == name)
            .values(description=RegisteredModel.description)
            .execution_options(synchronize_session=False)
        )
    model = await session.scalar(
        select(RegisteredModel)
        .where(RegisteredModel.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if model is None:
        raise NotFound(f"no model named {name!r}")
    return model


async def get_version(session: AsyncSession, name: str, version: int) -> ModelVersion:
    """A version row, or NotFound."""
    row = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_name == name, ModelVersion.version == version)
    )
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    return row


async def alias_row(session: AsyncSession, name: str, alias: str) -> ModelAlias | None:
    """An alias row, locked for update on engines that lock rows."""
    return await session.scalar(
        select(ModelAlias)
        .where(ModelAlias.model_name == name, ModelAlias.alias == alias)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def aliases_by_version(session: AsyncSession, name: str) -> dict[int, list[str]]:
    """Aliases of a model grouped by the version they point at."""
    grouped: dict[int, list[str]] = {}
    for row in await session.scalars(
        select(ModelAlias).where(ModelAlias.model_name == name).order_by(ModelAlias.alias)
    ):
        grouped.setdefault(row.version, []).append(row.alias)
    return grouped


def version_metrics(row: ModelVersion) -> dict[str, float]:
    """The metrics a version's stored manifest claims."""
    metrics = json.loads(row.manifest).get("metrics") or {}
    return {str(k): float(v) for k, v in metrics.items()}


def model_read(model: RegisteredModel, *, aliases: dict[str, int], latest: int | None) -> ModelRead:
    """The API form of a model."""
    return ModelRead(
        name=model.name,
        kind=as_kind(model.kind),
        description=model.description,
        created_by=model.created_by,
        created_at=model.created_at,
        aliases=aliases,
        latest_version=latest,
    )


def version_read(
    row: ModelVersion,
    *,
    kind: ModelKind,
    aliases: list[str],
    measures: VersionMeasures | None = None,
) -> VersionRead:
    """The API form of a version, with what the registry measured for it."""
    manifest = json.loads(row.manifest)
    checks = json.loads(row.checks or "{}")
    return VersionRead(
        model_name=row.model_name,
        version=row.version,
        kind=kind,
        manifest=manifest,
        files=[FileRead(name=f.name, sha256=f.sha256, size=f.size) for f in version_files(row)],
        metrics={} if measures is None else measures.metrics,
        claimed_metrics=version_metrics(row),
        measured=[] if measures is None else measures.measured,
        warnings=[] if measures is None else measures.warnings,
        checks=checks if isinstance(checks, dict) else {},
        content_sha256=row.content_sha256,
        evaluation_window=row.evaluation_window,
        created_by=row.created_by,
        created_at=row.created_at,
        description=row.description,
        archived_at=row.archived_at,
        archived_by=row.archived_by,
        archive_reason=row.archive_reason,
        aliases=aliases,
    )


def change_read(row: AliasChange) -> AliasChangeRead:
    """The API form of an audit entry, its time in UTC."""
    return AliasChangeRead.model_validate(row)
