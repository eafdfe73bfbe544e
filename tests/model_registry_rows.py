"""Test helpers writing what the registry and a pipeline run leave behind, without those services.

`register_version` and `promote` (or both at once: `publish`) store a model version and move its
alias exactly as the registry does (objects under `models/<name>/<version>/`, the rows, the audit
entry, `model.promoted` through the outbox), so the services' live-swap tests do not depend on the
registry's API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.auth import Role, create_key
from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    AliasChange,
    FeatureSet,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    Task,
)
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, FeaturesReady, ModelPromoted, ObjectRef
from marketsense.common.features import FEATURE_SCHEMA, MIN_BARS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.versions import PRODUCTION, StoredFile, dump_files, version_files
from marketsense.processing.service import feature_row, features_key


def unloadable_copy(source: Path, directory: Path) -> Path:
    """A copy of an artifact whose model.onnx is not an ONNX graph (its manifest is intact)."""
    shutil.copytree(source, directory)
    (directory / MODEL_FILE).write_bytes(b"these bytes are not an ONNX graph")
    return directory


async def register_version(
    runtime: Runtime,
    *,
    name: str,
    kind: str,
    folder: Path,
    metrics: dict[str, float] | None = None,
    created_by: str = "test-publisher",
) -> int:
    """Store `folder` as the next version of model `name` (registering the name if new)."""
    async with runtime.transaction() as session:
        if await session.get(RegisteredModel, name) is None:
            session.add(
                RegisteredModel(name=name, kind=kind, description="", created_by=created_by)
            )
            await session.flush()
        latest = await session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_name == name)
        )
        version = (latest or 0) + 1
        contents = await asyncio.to_thread(_read_bundle, folder)
        manifest = json.loads(contents[MANIFEST_FILE])
        manifest |= {"name": name, "version": str(version)}
        if metrics is not None:
            manifest["metrics"] = metrics
        contents[MANIFEST_FILE] = json.dumps(manifest, indent=2).encode()
        files = []
        for file_name, data in contents.items():
            ref = await runtime.store.put(f"models/{name}/{version}/{file_name}", data)
            files.append(StoredFile(name=file_name, uri=ref.uri, sha256=ref.sha256, size=ref.size))
        session.add(
            ModelVersion(
                model_name=name,
                version=version,
                manifest=json.dumps(manifest),
                files=dump_files(files),
                evaluation_window=manifest.get("evaluation_window"),
                created_by=created_by,
            )
        )
    return version


def _read_bundle(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


async def promote(
    runtime: Runtime,
    *,
    name: str,
    version: int,
    alias: str = PRODUCTION,
    announce: bool = True,
    actor: str = "test-approver",
) -> None:
    """Point an alias at a version, audit the move and (unless `announce` is false, as when an
    event is lost) queue `model.promoted` in the same transaction."""
    now = dt.datetime.now(dt.UTC)
    async with runtime.transaction() as session:
        target = await session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.version == version
            )
        )
        assert target is not None, f"{name} has no version {version}"
        row = await session.get(ModelAlias, (name, alias))
        previous = None if row is None else row.version
        if row is None:
            session.add(ModelAlias(model_name=name, alias=alias, version=version, updated_at=now))
        else:
            row.version, row.updated_at = version, now
        session.add(
            AliasChange(
                model_name=name,
                alias=alias,
                action="promote",
                from_version=previous,
                to_version=version,
                actor=actor,
                reason="test",
                forced=False,
                at=now,
            )
        )
        if announce:
            manifest = next(f for f in version_files(target) if f.name == MANIFEST_FILE)
            add_event(
                session,
                Envelope.wrap(
                    ModelPromoted(
                        model_name=name,
                        alias=alias,
                        version=str(version),
                        previous_version=None if previous is None else str(previous),
                        manifest=manifest.ref(),
                    )
                ),
                source=runtime.service,
            )


async def publish(
    runtime: Runtime,
    *,
    name: str,
    folder: Path,
    kind: str = "predictor",
    metrics: dict[str, float] | None = None,
    announce: bool = True,
) -> int:
    """Store `folder` as the next version of model `name` and promote it to production; the
    version it became."""
    version = await register_version(runtime, name=name, kind=kind, folder=folder, metrics=metrics)
    await promote(runtime, name=name, version=version, announce=announce)
    return version


async def stored_file(runtime: Runtime, *, name: str, version: int, file_name: str) -> StoredFile:
    """A registered version's stored file."""
    async with runtime.database.session() as session:
        target = await session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.version == version
            )
        )
    assert target is not None
    return next(f for f in version_files(target) if f.name == file_name)


async def new_api_key(
    database: Database, *, role: Role = Role.READER, name: str | None = None
) -> str:
    """A new API key of `role` (a reader's by default) in the database."""
    async with database.session() as session:
        key = await create_key(
            session, name=name or f"test-{role.value}-{uuid.uuid4().hex[:8]}", role=role
        )
        await session.commit()
    return key


async def add_features(
    session: AsyncSession,
    store: ObjectStore,
    *,
    run_id: str,
    as_of: dt.date,
    rows: Mapping[str, pd.DataFrame],
) -> dict[str, ObjectRef]:
    """Store each symbol's feature row as processing does and mark its process task done;
    returns the stored files by symbol."""
    refs: dict[str, ObjectRef] = {}
    for symbol, row in rows.items():
        ref = await store.put(
            features_key(as_of=as_of, run_id=run_id, symbol=symbol), to_parquet_bytes(row)
        )
        refs[symbol] = ref
        session.add(
            FeatureSet(
                run_id=run_id,
                symbol=symbol,
                as_of=as_of,
                feature_schema=FEATURE_SCHEMA,
                uri=ref.uri,
                sha256=ref.sha256,
                size=ref.size,
            )
        )
        session.add(
            Task(run_id=run_id, symbol=symbol, stage=Stage.PROCESS, state=TaskState.SUCCESS)
        )
    return refs


async def processed_run(
    runtime: Runtime, *, symbols: list[str], as_of: dt.date, announce: bool = True
) -> tuple[str, dict[str, pd.DataFrame]]:
    """A run whose features are stored and marked processed, its predict tasks PENDING and (when
    `announce`) `features.ready` queued; returns the run id and each symbol's feature row."""
    run_id = str(uuid.uuid4())
    market = SimulatedMarket(seed=5)
    rows = {
        symbol: feature_row(
            market.daily_bars(symbol, as_of=as_of, days=MIN_BARS), as_of=as_of, symbol=symbol
        )
        for symbol in symbols
    }
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(symbols)))
        await session.flush()
        refs = await add_features(session, runtime.store, run_id=run_id, as_of=as_of, rows=rows)
        for symbol, ref in refs.items():
            session.add(
                Task(run_id=run_id, symbol=symbol, stage=Stage.PREDICT, state=TaskState.PENDING)
            )
            if announce:
                add_event(
                    session,
                    Envelope.wrap(
                        FeaturesReady(as_of=as_of, feature_schema=FEATURE_SCHEMA, features=ref),
                        run_id=run_id,
                        symbol=symbol,
                    ),
                    source=runtime.service,
                )
    return run_id, rows
