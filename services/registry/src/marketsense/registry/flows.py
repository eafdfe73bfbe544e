"""What moves the registry's aliases: a model registered, an alias moved through the production
gate or rolled back. Each flow owns its transaction, audits and announces the change; pushes
are in `pushes`."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import (
    AliasChange,
    EvaluationSet,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
)
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, ModelPromoted
from marketsense.common.runtime import Runtime
from marketsense.models.checks import (
    InvalidUpload,
)
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.kinds import ModelKind, as_kind
from marketsense.models.versions import (
    PRODUCTION,
    manifest_file,
    version_files,
)
from marketsense.registry.audit import record, record_refusal
from marketsense.registry.evaluation_sets import active_set
from marketsense.registry.gate import (
    FORCE_HINT,
    Contender,
    GatePolicy,
    judge,
    no_set_refusal,
    refuse_archived,
)
from marketsense.registry.measure import (
    ensure_measured,
    metrics_on,
    version_variant,
)
from marketsense.registry.schemas import (
    AliasChangeRead,
    AliasUpdate,
    ModelCreate,
    ModelRead,
)
from marketsense.registry.service import (
    Conflict,
    Unprocessable,
    alias_row,
    change_read,
    get_model,
    get_version,
    lock_model,
    model_read,
)

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


async def move_alias(
    *,
    runtime: Runtime,
    name: str,
    alias: str,
    body: AliasUpdate,
    actor: str,
    policy: GatePolicy,
) -> AliasChangeRead:
    """Point an alias at a version, through the production gate unless forced, and announce it;
    a refusal is audited."""
    if body.force and not body.reason.strip():
        raise Unprocessable("force skips the production gate and needs a reason for the audit log")
    gated = alias == PRODUCTION and not body.force
    try:
        evaluation_set = await _prepare_gate(runtime, name, body.version, policy) if gated else None
        return await _move_alias(
            runtime, name, alias, body, actor=actor, policy=policy, evaluation_set=evaluation_set
        )
    except (Conflict, Unprocessable) as problem:
        await record_refusal(
            runtime,
            model_name=name,
            action="promote_refused",
            actor=actor,
            detail=str(problem),
            version=body.version,
            alias=alias,
            reason=body.reason,
        )
        raise


async def _move_alias(
    runtime: Runtime,
    name: str,
    alias: str,
    body: AliasUpdate,
    *,
    actor: str,
    policy: GatePolicy,
    evaluation_set: EvaluationSet | None,
) -> AliasChangeRead:
    """The alias move itself, under the model's lock; gated when `evaluation_set` is given."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            async with runtime.transaction() as session:
                model = await lock_model(session, name)
                target = await get_version(session, name, body.version)
                refuse_archived(target)
                current = await alias_row(session, name, alias)
                if current is not None and current.version == body.version:
                    raise Conflict(f"{alias} of {name!r} already points at version {body.version}")
                if evaluation_set is not None:
                    holder = None
                    if current is not None:
                        holder = await get_version(session, name, current.version)
                    await _gate(
                        session,
                        kind=as_kind(model.kind),
                        policy=policy,
                        evaluation_set=evaluation_set,
                        candidate=target,
                        holder=holder,
                    )
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


async def _prepare_gate(
    runtime: Runtime, name: str, version: int, policy: GatePolicy
) -> EvaluationSet:
    """The evaluation set the gate compares on, with the candidate and the production holder
    measured on it (a version pushed before the set was added is measured now)."""
    async with runtime.database.session() as session:
        kind = as_kind((await get_model(session, name)).kind)
        target = await get_version(session, name, version)
        holding = await session.get(ModelAlias, (name, PRODUCTION))
        holder = None if holding is None else await get_version(session, name, holding.version)
    refuse_archived(target)
    evaluation_set = await active_set(runtime, kind)
    if evaluation_set is None:
        raise no_set_refusal(kind)
    for row in (target, holder):
        if row is None:
            continue
        try:
            await ensure_measured(
                runtime, kind=kind, row=row, evaluation_set=evaluation_set, work_dir=policy.work_dir
            )
        except InvalidUpload as error:
            raise Conflict(
                f"version {row.version} cannot be measured on evaluation set "
                f"{evaluation_set.name!r}: {error}{FORCE_HINT}"
            ) from error
    return evaluation_set


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
        refuse_archived(target)
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


async def _gate(
    session: AsyncSession,
    *,
    kind: ModelKind,
    policy: GatePolicy,
    evaluation_set: EvaluationSet,
    candidate: ModelVersion,
    holder: ModelVersion | None,
) -> None:
    """Refuse a production move that the registry's measurements of the served variant on one
    evaluation set do not support; a first production version must clear the floor."""

    async def contender(row: ModelVersion) -> Contender:
        return Contender(
            version=row.version,
            variant=version_variant(kind, row, policy.sentiment_variant),
            metrics=await metrics_on(
                session,
                name=row.model_name,
                version=row.version,
                evaluation_set_id=evaluation_set.id,
            ),
        )

    judge(
        kind=kind,
        policy=policy,
        evaluation_set=evaluation_set,
        candidate=await contender(candidate),
        champion=None if holder is None else await contender(holder),
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
    record(
        session,
        model_name=target.model_name,
        action="rollback" if action == "rollback" else "promote",
        actor=actor,
        version=target.version,
        alias=alias,
        from_version=previous,
        reason=reason,
        forced=forced,
    )
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
