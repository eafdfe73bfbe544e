"""Two versions of a model side by side: metrics the registry measured on the same evaluation
set and variant, where each came from, which manifest fields and files differ."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import EvaluationSet, ModelVersion, VersionMetric
from marketsense.models.versions import version_files
from marketsense.registry.schemas import FileRead
from marketsense.registry.schemas_lifecycle import (
    CompareRead,
    FileChange,
    FileDifference,
    MetricComparison,
    VersionLineage,
)
from marketsense.registry.service import get_model, get_version

_RENAMED_BY_REGISTRY = ("name", "version")
_LINEAGE_FIELDS = ("source", "training")
"""Where a manifest records what it was built from: sentiment `source`, predictor `training`."""


async def compare_versions(*, session: AsyncSession, name: str, a: int, b: int) -> CompareRead:
    """Versions `a` and `b` of a model side by side; NotFound if either is unknown."""
    await get_model(session, name)
    first = await get_version(session, name, a)
    second = await get_version(session, name, b)
    first_manifest = json.loads(first.manifest)
    second_manifest = json.loads(second.manifest)
    return CompareRead(
        model_name=name,
        a=lineage(first, first_manifest),
        b=lineage(second, second_manifest),
        metrics=await shared_metrics(session, name, a, b),
        manifest_fields_changed=changed_fields(first_manifest, second_manifest),
        files=file_differences(first, second),
    )


def lineage(row: ModelVersion, manifest: dict[str, Any]) -> VersionLineage:
    """Where a version came from, from its row and its stored manifest."""
    source: Any = next((manifest[f] for f in _LINEAGE_FIELDS if manifest.get(f)), {})
    built_at = manifest.get("created_at")
    return VersionLineage(
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        built_at=None if built_at is None else str(built_at),
        content_sha256=row.content_sha256,
        evaluation_window=row.evaluation_window,
        source=source if isinstance(source, dict) else {"value": source},
        description=row.description,
        archived_at=row.archived_at,
    )


async def shared_metrics(
    session: AsyncSession, name: str, a: int, b: int
) -> list[MetricComparison]:
    """Each metric measured for both versions on the same evaluation set and variant; a metric
    only one of them has on a set says nothing about the other, so it is left out."""
    rows = await session.execute(
        select(VersionMetric, EvaluationSet)
        .join(EvaluationSet, EvaluationSet.id == VersionMetric.evaluation_set_id)
        .where(VersionMetric.model_name == name, VersionMetric.version.in_((a, b)))
    )
    values: dict[tuple[int, str, str], dict[int, float]] = {}
    sets: dict[int, EvaluationSet] = {}
    for metric, evaluation_set in rows:
        key = (metric.evaluation_set_id, metric.variant, metric.metric)
        values.setdefault(key, {})[metric.version] = metric.value
        sets[evaluation_set.id] = evaluation_set
    return [
        MetricComparison(
            evaluation_set_id=set_id,
            evaluation_set_name=sets[set_id].name,
            evaluation_set_sha256=sets[set_id].sha256,
            variant=variant,
            metric=metric_name,
            a=pair[a],
            b=pair[b],
            difference=pair[b] - pair[a],
        )
        for (set_id, variant, metric_name), pair in sorted(values.items())
        if a in pair and b in pair
    ]


def changed_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Manifest fields whose values differ, the ones the registry writes itself left out."""
    names = (set(a) | set(b)) - set(_RENAMED_BY_REGISTRY)
    return sorted(n for n in names if a.get(n) != b.get(n))


def file_differences(a: ModelVersion, b: ModelVersion) -> list[FileDifference]:
    """Every file of either version, by name, with how it changed from `a` to `b`."""
    before = {f.name: FileRead(name=f.name, sha256=f.sha256, size=f.size) for f in version_files(a)}
    after = {f.name: FileRead(name=f.name, sha256=f.sha256, size=f.size) for f in version_files(b)}
    return [
        FileDifference(
            name=file,
            change=_change(before.get(file), after.get(file)),
            a=before.get(file),
            b=after.get(file),
        )
        for file in sorted(set(before) | set(after))
    ]


def _change(a: FileRead | None, b: FileRead | None) -> FileChange:
    """How one file changed between versions."""
    if a is None:
        return "added"
    if b is None:
        return "removed"
    return "same" if (a.sha256, a.size) == (b.sha256, b.size) else "changed"
