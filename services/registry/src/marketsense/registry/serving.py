"""What the replicas of processing and prediction report serving, as the registry shows it, and
the warnings an alias move earns when no replica would serve it as gated."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import ModelServing, ModelVersion
from marketsense.common.runtime import Runtime
from marketsense.models.kinds import ModelKind, Variant, as_kind
from marketsense.models.versions import PRODUCTION, alias_target
from marketsense.registry.config import RegistrySettings
from marketsense.registry.measure import version_variant
from marketsense.registry.schemas import AliasChangeRead
from marketsense.registry.schemas_serving import (
    AliasMoveRead,
    ReplicaRead,
    ServiceServingRead,
    ServingRead,
)
from marketsense.registry.service import get_model

SERVED_BY: dict[ModelKind, tuple[str, str]] = {
    "sentiment": ("processing", "MARKETSENSE_SENTIMENT_MODEL"),
    "predictor": ("prediction", "MARKETSENSE_PREDICTOR_MODEL"),
}
"""The service that serves each kind, and the setting that names the model it serves."""


def gated_variant(kind: ModelKind, row: ModelVersion | None, configured: Variant) -> Variant:
    """The variant the gate measures for a version: predictors and sentiment bundles without an
    int8 graph are served, and gated, as fp32."""
    return "fp32" if row is None else version_variant(kind, row, configured)


async def fresh_reports(
    session: AsyncSession,
    *,
    now: dt.datetime,
    stale_seconds: float,
    model_name: str | None = None,
    service: str | None = None,
) -> list[ModelServing]:
    """Reports newer than `stale_seconds`, by service and replica."""
    query = select(ModelServing).where(
        ModelServing.reported_at >= now - dt.timedelta(seconds=stale_seconds)
    )
    if model_name is not None:
        query = query.where(ModelServing.model_name == model_name)
    if service is not None:
        query = query.where(ModelServing.service == service)
    query = query.order_by(ModelServing.service, ModelServing.replica, ModelServing.model_name)
    return list(await session.scalars(query))


async def serving_view(
    session: AsyncSession, *, name: str, settings: RegistrySettings, now: dt.datetime
) -> ServingRead:
    """Which version of model `name` each fresh replica serves, against the production one."""
    kind = as_kind((await get_model(session, name)).kind)
    production = await alias_target(session, name, PRODUCTION)
    variant = gated_variant(kind, production, settings.registry_sentiment_variant)
    stale = settings.registry_serving_stale_seconds
    grouped: dict[str, list[ReplicaRead]] = {}
    for row in await fresh_reports(session, now=now, stale_seconds=stale, model_name=name):
        on_production = (
            production is not None
            and row.source == "registry"
            and row.version == str(production.version)
        )
        grouped.setdefault(row.service, []).append(
            ReplicaRead(
                replica=row.replica,
                version=row.version,
                variant=row.variant,
                source=row.source,
                reported_at=row.reported_at,
                serves_production=on_production,
                serves_gated_variant=row.variant == variant,
            )
        )
    replicas = [replica for group in grouped.values() for replica in group]
    return ServingRead(
        model_name=name,
        production_version=None if production is None else production.version,
        gated_variant=variant,
        stale_seconds=stale,
        answering_versions=sorted({r.version for r in replicas}, key=_version_order),
        services=[ServiceServingRead(service=s, replicas=r) for s, r in grouped.items()],
    )


async def promotion_warnings(
    session: AsyncSession,
    *,
    name: str,
    alias: str,
    version: int | None,
    settings: RegistrySettings,
    now: dt.datetime,
) -> list[str]:
    """What a move of `production` to `version` leaves unserved or served otherwise than gated."""
    if alias != PRODUCTION or version is None:
        return []
    kind = as_kind((await get_model(session, name)).kind)
    service, setting = SERVED_BY[kind]
    stale = settings.registry_serving_stale_seconds
    reports = await fresh_reports(session, now=now, stale_seconds=stale, model_name=name)
    if not reports:
        others = await fresh_reports(session, now=now, stale_seconds=stale, service=service)
        served = sorted({r.model_name for r in others})
        now_serving = f" (its replicas serve {', '.join(served)})" if served else ""
        return [
            f"no running service reported serving {name} in the last {stale:g} s: {service} "
            f"serves the model named by {setting}{now_serving}; set {setting}={name} to serve "
            "this one"
        ]
    row = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_name == name, ModelVersion.version == version)
    )
    variant = gated_variant(kind, row, settings.registry_sentiment_variant)
    other = sorted({r.variant for r in reports} - {variant})
    if not other:
        return []
    names = sorted(r.replica for r in reports if r.variant != variant)
    return [
        f"replicas {', '.join(names)} serve variant {', '.join(other)} but the gate measured "
        f"{variant}; make MARKETSENSE_SENTIMENT_QUANTIZED (processing) and "
        "MARKETSENSE_REGISTRY_SENTIMENT_VARIANT (registry) agree"
    ]


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


async def with_serving_warnings(
    runtime: Runtime, change: AliasChangeRead, settings: RegistrySettings
) -> AliasMoveRead:
    """An alias move as answered: the change and the warnings about who will serve it."""
    async with runtime.database.session() as session:
        warnings = await promotion_warnings(
            session,
            name=change.model_name,
            alias=change.alias,
            version=change.to_version,
            settings=settings,
            now=dt.datetime.now(dt.UTC),
        )
    return AliasMoveRead(**change.model_dump(), warnings=warnings)
