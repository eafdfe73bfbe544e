"""The registry's own measurement of a version: every variant a service can serve, scored on the
evaluation set of its kind that the registry owns, never taken from the manifest."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import EvaluationSet, ModelVersion, VersionMetric
from marketsense.common.runtime import Runtime
from marketsense.models.checks import GRAPH_THREADS, InvalidUpload
from marketsense.models.evaluation import (
    PredictorSet,
    SentimentSet,
    predictor_metrics,
    sentiment_metrics,
)
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE
from marketsense.models.kinds import PRIMARY_METRIC, ModelKind, Variant
from marketsense.models.predictor import OnnxPredictor
from marketsense.models.sentiment import SentimentModel
from marketsense.models.versions import version_files
from marketsense.registry.evaluation_sets import read_set
from marketsense.registry.schemas import MeasuredRead

log = logging.getLogger(__name__)

VARIANT_FILES: dict[Variant, str] = {"fp32": MODEL_FILE, "int8": QUANTIZED_MODEL_FILE}
"""The bundle file of each variant."""
ADD_SET: dict[ModelKind, str] = {
    "predictor": "add one with POST /v1/evaluation-sets?kind=predictor (a Parquet table of "
    "features and outcomes) or POST /v1/evaluation-sets/predictor/from-runs",
    "sentiment": "add one with POST /v1/evaluation-sets?kind=sentiment (a text,label CSV)",
}
"""How an operator gives the registry an evaluation set of each kind."""
CLAIM_GAP = 0.05
"""How far a claimed primary metric may exceed the measured one before the push warns."""


@dataclass(frozen=True)
class Measurement:
    """The metrics of each variant of one version on one evaluation set."""

    evaluation_set: EvaluationSet
    metrics: dict[Variant, dict[str, float]]


def variants_in(kind: ModelKind, directory: Path) -> list[Variant]:
    """The variants a bundle folder holds: a predictor is fp32 only."""
    if kind == "predictor":
        return ["fp32"]
    return [v for v, file in VARIANT_FILES.items() if (directory / file).is_file()]


def score_folder(
    kind: ModelKind,
    directory: Path,
    data: SentimentSet | PredictorSet,
    set_name: str,
    loaded: Mapping[str, SentimentModel] | None = None,
) -> dict[Variant, dict[str, float]]:
    """Score every variant in a bundle folder on a set (a sentiment graph in `loaded` as it is,
    without loading it again); InvalidUpload names a graph that fails."""
    scores: dict[Variant, dict[str, float]] = {}
    for variant in variants_in(kind, directory):
        try:
            if isinstance(data, SentimentSet):
                model = loaded.get(variant) if loaded else None
                if model is None:
                    model = SentimentModel(
                        directory, quantized=variant == "int8", threads=GRAPH_THREADS
                    )
                scores[variant] = sentiment_metrics(model, data)
            else:
                scores[variant] = predictor_metrics(OnnxPredictor(directory), data)
        except Exception as error:  # whatever stops scoring the set would stop serving too
            raise InvalidUpload(
                f"{VARIANT_FILES[variant]} fails on the registry's evaluation set "
                f"{set_name!r}: {error}"
            ) from error
    return scores


async def measure_folder(
    runtime: Runtime,
    evaluation_set: EvaluationSet,
    kind: ModelKind,
    directory: Path,
    loaded: Mapping[str, SentimentModel] | None = None,
) -> Measurement:
    """Score a checked bundle folder on an evaluation set, reusing graphs the checks `loaded`
    (scoring runs off the event loop)."""
    data = await read_set(runtime.store, evaluation_set)
    metrics = await asyncio.to_thread(
        score_folder, kind, directory, data, evaluation_set.name, loaded
    )
    return Measurement(evaluation_set=evaluation_set, metrics=metrics)


def add_metrics(session: AsyncSession, *, name: str, version: int, measured: Measurement) -> None:
    """Queue one row per variant and metric in the caller's transaction."""
    for variant, values in measured.metrics.items():
        for metric, value in values.items():
            session.add(
                VersionMetric(
                    model_name=name,
                    version=version,
                    variant=variant,
                    evaluation_set_id=measured.evaluation_set.id,
                    metric=metric,
                    value=value,
                )
            )


async def metrics_on(
    session: AsyncSession, *, name: str, version: int, evaluation_set_id: int
) -> dict[Variant, dict[str, float]]:
    """What the registry measured for one version on one set, by variant."""
    found: dict[Variant, dict[str, float]] = {}
    for row in await session.scalars(
        select(VersionMetric).where(
            VersionMetric.model_name == name,
            VersionMetric.version == version,
            VersionMetric.evaluation_set_id == evaluation_set_id,
        )
    ):
        variant: Variant = "int8" if row.variant == "int8" else "fp32"
        found.setdefault(variant, {})[row.metric] = row.value
    return found


async def ensure_measured(
    runtime: Runtime,
    *,
    kind: ModelKind,
    row: ModelVersion,
    evaluation_set: EvaluationSet,
    work_dir: Path,
) -> None:
    """Measure a stored version on a set it has no metrics on yet (pushed before the set was
    added): download its files, score them, keep the rows."""
    async with runtime.database.session() as session:
        known = await metrics_on(
            session, name=row.model_name, version=row.version, evaluation_set_id=evaluation_set.id
        )
    if known:
        return
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=work_dir))
    try:
        for stored in version_files(row):
            data = await runtime.store.read_key(runtime.store.key_for(stored.uri))
            await asyncio.to_thread((directory / stored.name).write_bytes, data)
        if not (directory / MANIFEST_FILE).is_file():
            raise InvalidUpload(f"version {row.version} of {row.model_name!r} has no manifest")
        measured = await measure_folder(runtime, evaluation_set, kind, directory)
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)
    try:
        async with runtime.transaction() as session:
            add_metrics(session, name=row.model_name, version=row.version, measured=measured)
    except IntegrityError:  # measured concurrently by another request: the same numbers
        log.info("%s version %d measured concurrently", row.model_name, row.version)
        return
    log.info(
        "measured %s version %d on evaluation set %d",
        row.model_name,
        row.version,
        evaluation_set.id,
    )


def served_variant(kind: ModelKind, files: set[str], preferred: Variant) -> Variant:
    """The variant services serve: the configured one when the bundle has it, else fp32."""
    if kind == "predictor":
        return "fp32"
    return preferred if VARIANT_FILES[preferred] in files else "fp32"


def version_variant(kind: ModelKind, row: ModelVersion, preferred: Variant) -> Variant:
    """The variant services serve of a stored version."""
    return served_variant(kind, {f.name for f in version_files(row)}, preferred)


async def newest_set(session: AsyncSession, kind: ModelKind) -> EvaluationSet | None:
    """The evaluation set versions of a kind are gated on now, without installing one."""
    return await session.scalar(
        select(EvaluationSet)
        .where(EvaluationSet.kind == kind)
        .order_by(EvaluationSet.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class VersionMeasures:
    """What a version's API form says about its measurement."""

    metrics: dict[str, float]
    measured: list[MeasuredRead]
    warnings: list[str]


async def version_measures(
    session: AsyncSession, *, kind: ModelKind, rows: Sequence[ModelVersion], preferred: Variant
) -> dict[int, VersionMeasures]:
    """The measurements of some versions of one model, by version number."""
    if not rows:
        return {}
    active = await newest_set(session, kind)
    found: dict[int, list[MeasuredRead]] = {row.version: [] for row in rows}
    query = (
        select(VersionMetric, EvaluationSet)
        .join(EvaluationSet, EvaluationSet.id == VersionMetric.evaluation_set_id)
        .where(
            VersionMetric.model_name == rows[0].model_name,
            VersionMetric.version.in_(list(found)),
        )
        .order_by(VersionMetric.evaluation_set_id, VersionMetric.variant, VersionMetric.metric)
    )
    for metric, evaluation_set in await session.execute(query):
        found[metric.version].append(
            MeasuredRead(
                variant="int8" if metric.variant == "int8" else "fp32",
                metric=metric.metric,
                value=metric.value,
                evaluation_set_id=evaluation_set.id,
                evaluation_set_sha256=evaluation_set.sha256,
                evaluation_set_name=evaluation_set.name,
            )
        )
    result: dict[int, VersionMeasures] = {}
    for row in rows:
        variant = version_variant(kind, row, preferred)
        served = {
            m.metric: m.value
            for m in found[row.version]
            if active is not None and m.evaluation_set_id == active.id and m.variant == variant
        }
        claimed = json.loads(row.manifest).get("metrics") or {}
        result[row.version] = VersionMeasures(
            metrics=served,
            measured=found[row.version],
            warnings=measure_warnings(
                kind, claimed=claimed, served=served, variant=variant, active=active
            ),
        )
    return result


def measure_warnings(
    kind: ModelKind,
    *,
    claimed: dict[str, float],
    served: dict[str, float],
    variant: Variant,
    active: EvaluationSet | None,
) -> list[str]:
    """What a data scientist should know before promoting a version."""
    if active is None:
        return [
            f"the registry has no {kind} evaluation set yet, so it measured nothing and this "
            f"version cannot be promoted until one is added: {ADD_SET[kind]}"
        ]
    metric = PRIMARY_METRIC[kind]
    if metric not in served:
        return [
            f"not yet measured on the active evaluation set {active.name!r}; the registry "
            "measures it when it is promoted"
        ]
    warnings: list[str] = []
    claim = claimed.get(metric)
    if isinstance(claim, int | float) and claim - served[metric] > CLAIM_GAP:
        warnings.append(
            f"the manifest claims {metric} {claim:.4f} but the registry measured "
            f"{served[metric]:.4f} for the {variant} graph on evaluation set {active.name!r}; "
            "the gate uses the measurement"
        )
    return warnings
