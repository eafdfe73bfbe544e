"""Drift of one run: its stored features against the feature reference of the model version that
predicted in it, measured and stored once per run, feature and version."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import DriftMeasurement, FeatureSet, ModelVersion, Prediction, Run
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.models.feature_reference import read_feature_reference
from marketsense.models.files import FEATURE_REFERENCE_FILE
from marketsense.models.versions import StoredFile, version_files
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.drift import drift_summary, feature_drift
from marketsense.monitoring.performance_types import DriftFigure

log = logging.getLogger(__name__)

MAX_RUN_ROWS = 50_000
"""Most feature rows of one run that are tested; a backfill holding more is cut to each symbol's
latest rows, so memory stays bounded however many symbols and days it covers."""

_READS = 16
"""Feature files read at once."""


async def measure_run_drift(
    runtime: Runtime, settings: MonitoringSettings, *, run_id: str
) -> list[DriftFigure]:
    """Compare the run's features with the reference of the monitored model's version that
    predicted in it; store one row per feature (replacing an earlier measurement of the same run
    and version) and return the figures; [] when there is nothing to compare."""
    model = settings.monitored_model
    async with runtime.database.session() as session:
        run = await session.get(Run, run_id)
        version = await _predicting_version(session, run_id=run_id, model=model)
        stored = None if version is None else await _version_row(session, model, version)
        if run is None or version is None or stored is None:
            log.info("run %s: no prediction of %s to measure drift for", run_id, model)
            return []
        reference_file = _reference_file(stored)
        if reference_file is None:
            log.info(
                "run %s: %s version %s has no %s; drift not measured",
                *(run_id, model, version, FEATURE_REFERENCE_FILE),
            )
            return []
        feature_sets = list(
            await session.scalars(
                select(FeatureSet)
                .where(FeatureSet.run_id == run_id, FeatureSet.feature_schema == _schema(stored))
                .order_by(FeatureSet.symbol)
            )
        )
    # get() verifies the bytes against the sha256 the registry recorded at push.
    reference = read_feature_reference(await runtime.store.get(reference_file.ref()))
    current = await _run_features(runtime, feature_sets)
    figures = await asyncio.to_thread(
        feature_drift,
        current,
        reference,
        threshold=settings.drift_threshold,
        p_value=settings.drift_p_value,
    )
    await _store(
        runtime, run_id=run_id, as_of=run.as_of, model=model, version=version, figures=figures
    )
    summary = drift_summary(figures)
    if summary is not None:
        log.warning("run %s, %s version %s: %s", run_id, model, version, summary)
    return figures


async def _predicting_version(session: AsyncSession, *, run_id: str, model: str) -> str | None:
    """The version of `model` that made most of the run's predictions (the newest on a tie)."""
    count = func.count(Prediction.id)
    row = (
        await session.execute(
            select(Prediction.model_version, count)
            .where(Prediction.run_id == run_id, Prediction.model_name == model)
            .group_by(Prediction.model_version)
            .order_by(count.desc(), Prediction.model_version.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else str(row[0])


async def _version_row(session: AsyncSession, model: str, version: str) -> ModelVersion | None:
    """The registry's row of a version, or None when the predictions name one it never had."""
    if not version.isdigit():
        return None
    found: ModelVersion | None = await session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_name == model, ModelVersion.version == int(version)
        )
    )
    return found


def _reference_file(stored: ModelVersion) -> StoredFile | None:
    """The stored feature reference among a version's files, if it has one."""
    return next((f for f in version_files(stored) if f.name == FEATURE_REFERENCE_FILE), None)


def _schema(stored: ModelVersion) -> str:
    """The feature schema the version reads, as its stored manifest says."""
    manifest = json.loads(stored.manifest)
    return str(manifest.get("feature_schema", FEATURE_SCHEMA))


async def _run_features(runtime: Runtime, feature_sets: list[FeatureSet]) -> pd.DataFrame:
    """Every feature row the run stored (a daily run: one per symbol; a backfill: every day of
    its range), each symbol's latest rows only when there are more than MAX_RUN_ROWS."""
    per_file = max(1, MAX_RUN_ROWS // max(1, len(feature_sets)))
    gate = asyncio.Semaphore(_READS)

    async def read(stored: FeatureSet) -> pd.DataFrame:
        async with gate:
            data = await runtime.store.get(stored.ref())
        frame = from_parquet_bytes(data)
        return frame[[c for c in FEATURE_COLUMNS if c in frame.columns]].tail(per_file)

    frames = await asyncio.gather(*(read(stored) for stored in feature_sets))
    if not frames:
        return pd.DataFrame(columns=list(FEATURE_COLUMNS))
    return pd.concat(frames, ignore_index=True)


async def _store(
    runtime: Runtime,
    *,
    run_id: str,
    as_of: dt.date,
    model: str,
    version: str,
    figures: list[DriftFigure],
) -> None:
    """Replace the run's measurement for this version with `figures`, in one transaction."""
    async with runtime.transaction() as session:
        await session.execute(
            delete(DriftMeasurement).where(
                DriftMeasurement.run_id == run_id,
                DriftMeasurement.model_name == model,
                DriftMeasurement.model_version == version,
            )
        )
        session.add_all(
            DriftMeasurement(
                run_id=run_id,
                as_of=as_of,
                model_name=model,
                model_version=version,
                feature=figure.feature,
                statistic=figure.statistic,
                p_value=figure.p_value,
                rows=figure.rows,
                reference_rows=figure.reference_rows,
                drifted=figure.drifted,
            )
            for figure in figures
        )
