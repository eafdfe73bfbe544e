"""A push: a bundle checked the way the serving services will load it, measured by the registry
on its own evaluation set, stored as the model's next version or, when its content was pushed
before, answered with that version."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import ModelVersion
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore
from marketsense.models.checks import (
    CheckedBundle,
    InvalidUpload,
    Manifest,
    check_upload,
    manifest_json,
)
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.kinds import ModelKind, as_kind
from marketsense.models.versions import StoredFile, dump_files
from marketsense.registry.audit import record, record_refusal
from marketsense.registry.evaluation_sets import active_set
from marketsense.registry.gate import GatePolicy
from marketsense.registry.measure import Measurement, add_metrics, measure_folder, version_measures
from marketsense.registry.schemas import VersionRead
from marketsense.registry.service import (
    aliases_by_version,
    get_model,
    get_version,
    lock_model,
    version_read,
)
from marketsense.registry.uploads import PushUpload

log = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class Pushed:
    """A push's outcome: the version, and whether it is new or identical content seen before."""

    version: VersionRead
    created: bool


async def push_upload(
    *,
    runtime: Runtime,
    name: str,
    kind: ModelKind,
    upload: PushUpload,
    uploads_dir: Path,
    max_unpacked_bytes: int,
    actor: str,
    policy: GatePolicy,
) -> Pushed:
    """Unpack and check a push the way the serving services will load it, measure every variant
    on the registry's evaluation set, then store it as the model's next version; identical
    content returns the version that has it. InvalidUpload says what is wrong (and is audited)."""
    await asyncio.to_thread(uploads_dir.mkdir, parents=True, exist_ok=True)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=uploads_dir))
    try:
        try:
            # Unpacking, hashing and onnxruntime sessions block: keep them off the event loop.
            checked = await asyncio.to_thread(
                check_upload,
                kind=kind,
                model_name=name,
                manifest_bytes=upload.manifest,
                bundle=upload.bundle,
                directory=directory,
                max_unpacked_bytes=max_unpacked_bytes,
            )
            digest = checked.content_sha256
            async with runtime.database.session() as session:
                seen = await _same_content(session, name=name, digest=digest)
            if seen is not None:
                return await _repeated(runtime, seen, actor=actor, policy=policy)
            evaluation_set = await active_set(runtime, kind)
            measured = None
            if evaluation_set is not None:
                measured = await measure_folder(
                    runtime, evaluation_set, kind, directory, checked.graphs
                )
        except InvalidUpload as error:
            await record_refusal(
                runtime, model_name=name, action="push_refused", actor=actor, detail=str(error)
            )
            raise
        return await push_version(
            runtime=runtime,
            name=name,
            checked=checked,
            actor=actor,
            digest=digest,
            measured=measured,
            policy=policy,
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


def model_key(name: str, version: int, file: str) -> str:
    """Object store key of one stored file of a version."""
    return f"models/{name}/{version}/{file}"


async def push_version(
    *,
    runtime: Runtime,
    name: str,
    checked: CheckedBundle,
    actor: str,
    digest: str,
    measured: Measurement | None,
    policy: GatePolicy,
) -> Pushed:
    """Store a checked, measured bundle as the model's next version: files first, then the row
    with its measurements and audit entry, in one transaction."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await lock_model(session, name)
                kind = as_kind(model.kind)
                seen = await _same_content(session, name=name, digest=digest)
                if seen is not None:  # an identical push committed while this one was measured
                    break
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
                    content_sha256=digest,
                    checks=json.dumps(checked.checks, default=str),
                    created_by=actor,
                    created_at=dt.datetime.now(dt.UTC),
                )
                session.add(row)
                if measured is not None:
                    add_metrics(session, name=name, version=number, measured=measured)
                await session.flush()
                pushed = await _read(session, row, kind=kind, policy=policy)
                record(
                    session,
                    model_name=name,
                    action="push",
                    actor=actor,
                    version=number,
                    detail="; ".join([f"content sha256 {digest}", *pushed.warnings]),
                )
        except IntegrityError:
            # Only reachable if the row lock did not hold (it does on SQLite and PostgreSQL).
            if attempt == _WRITE_ATTEMPTS:
                raise
            log.warning("version number of %s taken concurrently; retrying", name)
            continue
        log.info("pushed %s version %d by %s", name, number, actor)
        return Pushed(version=pushed, created=True)
    if seen is None:  # pragma: no cover
        raise AssertionError("unreachable")
    return await _repeated(runtime, seen, actor=actor, policy=policy)


async def _same_content(session: AsyncSession, *, name: str, digest: str) -> ModelVersion | None:
    """The model's version with this content hash, if one was pushed."""
    return await session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_name == name, ModelVersion.content_sha256 == digest)
        .order_by(ModelVersion.version)
        .limit(1)
    )


async def _repeated(
    runtime: Runtime, row: ModelVersion, *, actor: str, policy: GatePolicy
) -> Pushed:
    """Answer an identical push with the version that has its content, and audit it."""
    async with runtime.transaction() as session:
        model = await get_model(session, row.model_name)
        current = await get_version(session, row.model_name, row.version)
        read = await _read(session, current, kind=as_kind(model.kind), policy=policy)
        record(
            session,
            model_name=row.model_name,
            action="push_repeated",
            actor=actor,
            version=row.version,
            detail=f"content sha256 {row.content_sha256} is version {row.version} already",
        )
    log.info("push of %s repeats version %d", row.model_name, row.version)
    return Pushed(version=read, created=False)


async def _read(
    session: AsyncSession, row: ModelVersion, *, kind: ModelKind, policy: GatePolicy
) -> VersionRead:
    """The API form of a version in the caller's session, with its measurements."""
    aliases = await aliases_by_version(session, row.model_name)
    measures = await version_measures(
        session, kind=kind, rows=[row], preferred=policy.sentiment_variant
    )
    return version_read(
        row, kind=kind, aliases=aliases.get(row.version, []), measures=measures[row.version]
    )


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
