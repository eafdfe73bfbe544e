"""What changes the registry: a push stored as the next version, an alias moved through the
production gate or rolled back. Each flow owns its transaction, audits and announces the change."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, ModelPromoted
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore
from marketsense.models.checks import CheckedBundle, Manifest, check_upload, manifest_json
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.kinds import PRIMARY_METRIC, ModelKind, as_kind
from marketsense.models.versions import (
    PRODUCTION,
    StoredFile,
    dump_files,
    manifest_file,
    version_files,
)
from marketsense.registry.schemas import (
    AliasChangeRead,
    AliasUpdate,
    ModelCreate,
    ModelRead,
    VersionRead,
)
from marketsense.registry.service import (
    Conflict,
    Unprocessable,
    alias_row,
    change_read,
    get_version,
    lock_model,
    model_read,
    version_metrics,
    version_read,
)
from marketsense.registry.uploads import PushUpload

log = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 3


async def create_model(*, runtime: Runtime, body: ModelCreate, actor: str) -> ModelRead:
    """Register a model name; Conflict if it exists."""
    async with runtime.transaction() as session:
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
        return model_read(model, aliases={}, latest=None)


async def push_upload(
    *,
    runtime: Runtime,
    name: str,
    kind: ModelKind,
    upload: PushUpload,
    uploads_dir: Path,
    max_unpacked_bytes: int,
    actor: str,
) -> VersionRead:
    """Unpack and check a push the way the serving services will load it, then store it as the
    model's next version; InvalidUpload says what is wrong with it."""
    await asyncio.to_thread(uploads_dir.mkdir, parents=True, exist_ok=True)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=uploads_dir))
    try:
        # Unpacking and onnxruntime sessions block: keep them off the event loop.
        checked = await asyncio.to_thread(
            check_upload,
            kind=kind,
            model_name=name,
            manifest_bytes=upload.manifest,
            bundle=upload.bundle,
            directory=directory,
            max_unpacked_bytes=max_unpacked_bytes,
        )
        return await push_version(runtime=runtime, name=name, checked=checked, actor=actor)
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


def model_key(name: str, version: int, file: str) -> str:
    """Object store key of one stored file of a version."""
    return f"models/{name}/{version}/{file}"


async def push_version(
    *, runtime: Runtime, name: str, checked: CheckedBundle, actor: str
) -> VersionRead:
    """Store a checked bundle as the model's next version: files first, then the row."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await lock_model(session, name)
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
                pushed = version_read(row, kind=as_kind(model.kind), aliases=[])
        except IntegrityError:
            # Only reachable if the row lock did not hold (it does on SQLite and PostgreSQL).
            if attempt == _WRITE_ATTEMPTS:
                raise
            log.warning("version number of %s taken concurrently; retrying", name)
            continue
        log.info("pushed %s version %d by %s", name, number, actor)
        return pushed
    raise AssertionError("unreachable")  # pragma: no cover


async def move_alias(
    *, runtime: Runtime, name: str, alias: str, body: AliasUpdate, actor: str
) -> AliasChangeRead:
    """Point an alias at a version, through the production gate unless forced, and announce it."""
    if body.force and not body.reason.strip():
        raise Unprocessable("force skips the production gate and needs a reason for the audit log")
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await lock_model(session, name)
                target = await get_version(session, name, body.version)
                current = await alias_row(session, name, alias)
                if current is not None and current.version == body.version:
                    raise Conflict(f"{alias} of {name!r} already points at version {body.version}")
                if alias == PRODUCTION and current is not None and not body.force:
                    holder = await get_version(session, name, current.version)
                    _gate(kind=as_kind(model.kind), candidate=target, current=holder)
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
        await lock_model(session, name)
        current = await alias_row(session, name, PRODUCTION)
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
        target = await get_version(session, name, last.from_version)
        if target.archived_at is not None:  # archived: never production again, rollback included
            raise Conflict(
                f"{PRODUCTION} of {name!r} would roll back to version {target.version}, which is "
                f"archived ({target.archive_reason}); promote another version instead"
            )
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
    new = version_metrics(candidate).get(metric)
    old = version_metrics(current).get(metric)
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
    manifest = manifest_file(version_files(target))
    if manifest is None:  # every version is stored with its manifest; a row without is damaged
        raise Conflict(f"version {target.version} of {target.model_name!r} has no {MANIFEST_FILE}")
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
    return change_read(change)


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
