"""Registry operations on the database and the object store: models, versions, aliases, audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, ModelPromoted
from marketsense.common.model_bundles import (
    MANIFEST_FILE,
    PRODUCTION,
    StoredFile,
    dump_files,
    version_files,
)
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore, sha256_hex
from marketsense.registry.schemas import (
    AliasChangeRead,
    AliasUpdate,
    AuditPageRead,
    FileRead,
    ModelCreate,
    ModelKind,
    ModelRead,
    VersionRead,
)
from marketsense.registry.validation import CheckedBundle, Manifest, manifest_json

log = logging.getLogger(__name__)

PRIMARY_METRIC: dict[str, str] = {"predictor": "holdout_auc", "sentiment": "heldout_macro_f1"}
"""The metric the production gate compares, per model kind (higher is better)."""
_WRITE_ATTEMPTS = 3


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


def utc(value: dt.datetime) -> dt.datetime:
    """A timestamp as UTC-aware; SQLite hands back naive values, which the registry wrote in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def model_key(name: str, version: int, file: str) -> str:
    """Object store key of one stored file of a version."""
    return f"models/{name}/{version}/{file}"


# ---- models ----------------------------------------------------------------------------------


async def create_model(*, session: AsyncSession, body: ModelCreate, actor: str) -> ModelRead:
    """Register a model name; Conflict if it exists. The caller commits."""
    if await session.get(RegisteredModel, body.name) is not None:
        raise Conflict(f"a model named {body.name!r} exists already")
    model = RegisteredModel(
        name=body.name,
        kind=body.kind,
        description=body.description,
        created_by=actor,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(model)
    await session.flush()
    return _model_read(model, aliases={}, latest=None)


async def list_models(*, session: AsyncSession) -> list[ModelRead]:
    """Every registered model, by name."""
    models = list(await session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)))
    aliases: dict[str, dict[str, int]] = {}
    for row in await session.scalars(select(ModelAlias).order_by(ModelAlias.alias)):
        aliases.setdefault(row.model_name, {})[row.alias] = row.version
    latest: dict[str, int] = {
        name: number
        for name, number in await session.execute(
            select(ModelVersion.model_name, func.max(ModelVersion.version)).group_by(
                ModelVersion.model_name
            )
        )
    }
    return [
        _model_read(m, aliases=aliases.get(m.name, {}), latest=latest.get(m.name)) for m in models
    ]


async def read_model(*, session: AsyncSession, name: str) -> ModelRead:
    """One registered model; NotFound if unknown."""
    model = await _model(session, name)
    aliases = {
        row.alias: row.version
        for row in await session.scalars(
            select(ModelAlias).where(ModelAlias.model_name == name).order_by(ModelAlias.alias)
        )
    }
    latest = await session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_name == name)
    )
    return _model_read(model, aliases=aliases, latest=latest)


async def model_kind(*, session: AsyncSession, name: str) -> ModelKind:
    """The kind of a registered model; NotFound if unknown."""
    model = await _model(session, name)
    return _kind(model.kind)


# ---- versions --------------------------------------------------------------------------------


async def push_version(
    *, runtime: Runtime, name: str, checked: CheckedBundle, actor: str
) -> VersionRead:
    """Store a checked bundle as the model's next version: files first, then the row."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await _lock_model(session, name)
                number = 1 + (
                    await session.scalar(
                        select(func.max(ModelVersion.version)).where(
                            ModelVersion.model_name == name
                        )
                    )
                    or 0
                )
                # The model's row lock is held while the files are written, so no other push can
                # pick the same number and overwrite them before this row commits.
                manifest, files = await _store_files(
                    runtime.store, name=name, version=number, checked=checked
                )
                row = ModelVersion(
                    model_name=name,
                    version=number,
                    manifest=manifest_json(manifest),
                    files=dump_files(files),
                    evaluation_window=manifest.evaluation_window,
                    created_by=actor,
                    created_at=dt.datetime.now(dt.UTC),
                )
                session.add(row)
                await session.flush()
                pushed = _version_read(row, kind=_kind(model.kind), aliases=[])
        except IntegrityError:
            # Only reachable if the row lock did not hold (it does on SQLite and PostgreSQL).
            if attempt == _WRITE_ATTEMPTS:
                raise
            log.warning("version number of %s taken concurrently; retrying", name)
            continue
        log.info("pushed %s version %d by %s", name, number, actor)
        return pushed
    raise AssertionError("unreachable")  # pragma: no cover


async def list_versions(*, session: AsyncSession, name: str) -> list[VersionRead]:
    """Every version of a model, newest first; NotFound if the model is unknown."""
    model = await _model(session, name)
    aliases = await _aliases_by_version(session, name)
    rows = await session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_name == name)
        .order_by(ModelVersion.version.desc())
    )
    return [
        _version_read(row, kind=_kind(model.kind), aliases=aliases.get(row.version, []))
        for row in rows
    ]


async def read_version(*, session: AsyncSession, name: str, version: int) -> VersionRead:
    """One version of a model; NotFound if the model or version is unknown."""
    model = await _model(session, name)
    row = await _version(session, name, version)
    aliases = await _aliases_by_version(session, name)
    return _version_read(row, kind=_kind(model.kind), aliases=aliases.get(version, []))


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
    await _model(session, name)
    row = await _version(session, name, version)
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


# ---- aliases ---------------------------------------------------------------------------------


async def read_alias(*, session: AsyncSession, name: str, alias: str) -> VersionRead:
    """The version an alias points at; NotFound if the model is unknown or the alias unset."""
    await _model(session, name)
    target = await session.get(ModelAlias, (name, alias))
    if target is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return await read_version(session=session, name=name, version=target.version)


async def move_alias(
    *, runtime: Runtime, name: str, alias: str, body: AliasUpdate, actor: str
) -> AliasChangeRead:
    """Point an alias at a version, through the production gate unless forced, and announce it."""
    if body.force and not body.reason.strip():
        raise Unprocessable("force skips the production gate and needs a reason for the audit log")
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await _lock_model(session, name)
                target = await _version(session, name, body.version)
                current = await _alias_row(session, name, alias)
                if current is not None and current.version == body.version:
                    raise Conflict(f"{alias} of {name!r} already points at version {body.version}")
                if alias == PRODUCTION and current is not None and not body.force:
                    holder = await _version(session, name, current.version)
                    _gate(kind=_kind(model.kind), candidate=target, current=holder)
                return await _move(
                    runtime,
                    session,
                    current=current,
                    target=target,
                    alias=alias,
                    action="promote",
                    actor=actor,
                    reason=body.reason,
                    forced=body.force,
                )
        except IntegrityError:
            # Two first moves of one alias can both insert its row; the loser tries again.
            if attempt == _WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def rollback(*, runtime: Runtime, name: str, reason: str, actor: str) -> AliasChangeRead:
    """Send production back to the version that held it before its last change."""
    async with runtime.transaction() as session:
        await _lock_model(session, name)
        current = await _alias_row(session, name, PRODUCTION)
        last = await session.scalar(
            select(AliasChange)
            .where(AliasChange.model_name == name, AliasChange.alias == PRODUCTION)
            .order_by(AliasChange.id.desc())
            .limit(1)
        )
        if current is None or last is None or last.from_version is None:
            raise Conflict(
                f"{PRODUCTION} of {name!r} has no earlier version to roll back to "
                "(it was never moved from one version to another)"
            )
        target = await _version(session, name, last.from_version)
        return await _move(
            runtime,
            session,
            current=current,
            target=target,
            alias=PRODUCTION,
            action="rollback",
            actor=actor,
            reason=reason,
            forced=False,
        )


async def alias_history(*, session: AsyncSession, name: str, alias: str) -> list[AliasChangeRead]:
    """Every move of an alias, newest first; NotFound if the model is unknown."""
    await _model(session, name)
    rows = await session.scalars(
        select(AliasChange)
        .where(AliasChange.model_name == name, AliasChange.alias == alias)
        .order_by(AliasChange.id.desc())
    )
    return [_change_read(row) for row in rows]


async def alias_at(
    *, session: AsyncSession, name: str, alias: str, time: dt.datetime
) -> int | None:
    """The version an alias pointed at at `time` (timezone-aware), or None if it was unset."""
    await _model(session, name)
    # `at` is written in UTC; SQLite compares it as text, so the bound value must be UTC too.
    return await session.scalar(
        select(AliasChange.to_version)
        .where(
            AliasChange.model_name == name,
            AliasChange.alias == alias,
            AliasChange.at <= utc(time),
        )
        .order_by(AliasChange.at.desc(), AliasChange.id.desc())
        .limit(1)
    )


async def audit_page(
    *, session: AsyncSession, model: str | None, limit: int, cursor: int | None
) -> AuditPageRead:
    """A page of alias changes, newest first, after `cursor` (the last id of the page before)."""
    query = select(AliasChange).order_by(AliasChange.id.desc()).limit(limit + 1)
    if model is not None:
        await _model(session, model)
        query = query.where(AliasChange.model_name == model)
    if cursor is not None:
        query = query.where(AliasChange.id < cursor)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPageRead(
        items=[_change_read(row) for row in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


# ---- helpers ---------------------------------------------------------------------------------


async def _model(session: AsyncSession, name: str) -> RegisteredModel:
    """A registered model, or NotFound."""
    model = await session.get(RegisteredModel, name)
    if model is None:
        raise NotFound(f"no model named {name!r}")
    return model


async def _lock_model(session: AsyncSession, name: str) -> RegisteredModel:
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


async def _version(session: AsyncSession, name: str, version: int) -> ModelVersion:
    """A version row, or NotFound."""
    row = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_name == name, ModelVersion.version == version)
    )
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    return row


async def _alias_row(session: AsyncSession, name: str, alias: str) -> ModelAlias | None:
    """An alias row, locked for update on engines that lock rows."""
    return await session.scalar(
        select(ModelAlias)
        .where(ModelAlias.model_name == name, ModelAlias.alias == alias)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _aliases_by_version(session: AsyncSession, name: str) -> dict[int, list[str]]:
    """Aliases of a model grouped by the version they point at."""
    grouped: dict[int, list[str]] = {}
    for row in await session.scalars(
        select(ModelAlias).where(ModelAlias.model_name == name).order_by(ModelAlias.alias)
    ):
        grouped.setdefault(row.version, []).append(row.alias)
    return grouped


def _gate(*, kind: ModelKind, candidate: ModelVersion, current: ModelVersion) -> None:
    """Refuse a production move to a version measured worse, or measured on something else."""
    metric = PRIMARY_METRIC[kind]
    force_hint = "; to move it anyway send force: true with a reason"
    if candidate.evaluation_window != current.evaluation_window:
        raise Conflict(
            f"version {candidate.version} was evaluated on {candidate.evaluation_window!r} but "
            f"production version {current.version} on {current.evaluation_window!r}; their "
            f"{metric} cannot be compared{force_hint}"
        )
    new = _metrics(candidate).get(metric)
    old = _metrics(current).get(metric)
    if new is None or old is None:
        lacking = candidate.version if new is None else current.version
        raise Conflict(f"version {lacking} has no {metric} to compare{force_hint}")
    if new < old:
        raise Conflict(
            f"version {candidate.version} has {metric} {new:.4f}, below production version "
            f"{current.version}'s {old:.4f}{force_hint}"
        )


async def _move(
    runtime: Runtime,
    session: AsyncSession,
    *,
    current: ModelAlias | None,
    target: ModelVersion,
    alias: str,
    action: str,
    actor: str,
    reason: str,
    forced: bool,
) -> AliasChangeRead:
    """Point the alias at `target`, audit the change and queue ModelPromoted, in one transaction."""
    now = dt.datetime.now(dt.UTC)
    previous = None if current is None else current.version
    if current is None:
        session.add(
            ModelAlias(
                model_name=target.model_name, alias=alias, version=target.version, updated_at=now
            )
        )
    else:
        current.version = target.version
        current.updated_at = now
    change = AliasChange(
        model_name=target.model_name,
        alias=alias,
        action=action,
        from_version=previous,
        to_version=target.version,
        actor=actor,
        reason=reason,
        forced=forced,
        at=now,
    )
    session.add(change)
    manifest = next(f for f in version_files(target) if f.name == MANIFEST_FILE)
    event = ModelPromoted(
        model_name=target.model_name,
        alias=alias,
        version=str(target.version),
        previous_version=None if previous is None else str(previous),
        manifest=manifest.ref(),
    )
    add_event(session, Envelope.wrap(event), source=runtime.service)
    await session.flush()
    log.info(
        "%s of %s: %s -> %s by %s (%s%s)",
        alias,
        target.model_name,
        previous,
        target.version,
        actor,
        action,
        ", forced" if forced else "",
    )
    return _change_read(change)


async def _store_files(
    store: ObjectStore, *, name: str, version: int, checked: CheckedBundle
) -> tuple[Manifest, list[StoredFile]]:
    """Write a version's files and its renamed, renumbered manifest; return what was stored."""
    manifest = checked.manifest.model_copy(update={"name": name, "version": str(version)})
    stored: list[StoredFile] = []
    for file in checked.files:
        data = await asyncio.to_thread((checked.directory / file).read_bytes)
        stored.append(await _put(store, model_key(name, version, file), file, data))
        del data  # one file in memory at a time
    manifest_bytes = manifest_json(manifest).encode()
    stored.append(
        await _put(store, model_key(name, version, MANIFEST_FILE), MANIFEST_FILE, manifest_bytes)
    )
    return manifest, stored


async def _put(store: ObjectStore, key: str, name: str, data: bytes) -> StoredFile:
    """Write one object and describe it."""
    ref = await store.put(key, data)
    return StoredFile(name=name, uri=ref.uri, sha256=ref.sha256, size=ref.size)


def _kind(value: str) -> ModelKind:
    """A stored kind as the API's literal type."""
    if value == "predictor":
        return "predictor"
    if value == "sentiment":
        return "sentiment"
    raise ValueError(f"stored model kind {value!r} is neither predictor nor sentiment")


def _metrics(row: ModelVersion) -> dict[str, float]:
    """The metrics in a version's stored manifest."""
    metrics = json.loads(row.manifest).get("metrics") or {}
    return {str(k): float(v) for k, v in metrics.items()}


def _model_read(
    model: RegisteredModel, *, aliases: dict[str, int], latest: int | None
) -> ModelRead:
    """The API form of a model."""
    return ModelRead(
        name=model.name,
        kind=_kind(model.kind),
        description=model.description,
        created_by=model.created_by,
        created_at=utc(model.created_at),
        aliases=aliases,
        latest_version=latest,
    )


def _version_read(row: ModelVersion, *, kind: ModelKind, aliases: list[str]) -> VersionRead:
    """The API form of a version."""
    manifest = json.loads(row.manifest)
    return VersionRead(
        model_name=row.model_name,
        version=row.version,
        kind=kind,
        manifest=manifest,
        files=[FileRead(name=f.name, sha256=f.sha256, size=f.size) for f in version_files(row)],
        metrics=_metrics(row),
        evaluation_window=row.evaluation_window,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        aliases=aliases,
    )


def _change_read(row: AliasChange) -> AliasChangeRead:
    """The API form of an audit entry, its time in UTC."""
    read = AliasChangeRead.model_validate(row)
    return read.model_copy(update={"at": utc(row.at)})
