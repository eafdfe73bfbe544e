"""The registry's audit log: one entry for every push, refusal, promotion, rollback, archive
and edit, with who did it and why; and its pages for readers."""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import RegistryAudit
from marketsense.common.runtime import Runtime
from marketsense.registry.pagination import cut_page
from marketsense.registry.schemas_lifecycle import AuditEntryRead, AuditPageRead

AuditAction = Literal[
    "push",
    "push_repeated",
    "push_refused",
    "promote",
    "promote_refused",
    "rollback",
    "alias_deleted",
    "archive",
    "description_edited",
    "evaluation_set_added",
]
"""What an audit entry records."""
AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)
"""Every action, for filters and their documentation."""
_ALIAS_MOVES = ("promote", "rollback")
_DETAIL_CHARS = 4000


def record(
    session: AsyncSession,
    *,
    model_name: str,
    action: AuditAction,
    actor: str,
    version: int | None = None,
    alias: str | None = None,
    from_version: int | None = None,
    reason: str = "",
    detail: str = "",
    forced: bool = False,
) -> RegistryAudit:
    """Add an entry to the caller's transaction: it commits with the change it records."""
    entry = RegistryAudit(
        model_name=model_name,
        action=action,
        version=version,
        alias=alias,
        from_version=from_version,
        actor=actor,
        reason=reason,
        detail=detail[:_DETAIL_CHARS],
        forced=forced,
        at=dt.datetime.now(dt.UTC),
    )
    session.add(entry)
    return entry


async def record_refusal(
    runtime: Runtime,
    *,
    model_name: str,
    action: Literal["push_refused", "promote_refused"],
    actor: str,
    detail: str,
    version: int | None = None,
    alias: str | None = None,
    reason: str = "",
) -> None:
    """Keep a refusal in its own transaction: the refused change's transaction rolled back."""
    async with runtime.transaction() as session:
        record(
            session,
            model_name=model_name,
            action=action,
            actor=actor,
            version=version,
            alias=alias,
            reason=reason,
            detail=detail,
        )


def entry_read(row: RegistryAudit) -> AuditEntryRead:
    """The API form of an audit entry; `to_version` kept for readers of alias moves."""
    return AuditEntryRead(
        id=row.id,
        model_name=row.model_name,
        action=row.action,
        version=row.version,
        alias=row.alias,
        from_version=row.from_version,
        to_version=row.version if row.action in _ALIAS_MOVES else None,
        actor=row.actor,
        reason=row.reason,
        detail=row.detail,
        forced=row.forced,
        at=row.at,
    )


async def audit_page(
    session: AsyncSession,
    *,
    model: str | None,
    action: str | None,
    limit: int,
    before: int | None,
) -> AuditPageRead:
    """A page of the audit log, newest first, entries below the id `before`."""
    query = select(RegistryAudit).order_by(RegistryAudit.id.desc()).limit(limit + 1)
    if model is not None:
        query = query.where(RegistryAudit.model_name == model)
    if action is not None:
        query = query.where(RegistryAudit.action == action)
    if before is not None:
        query = query.where(RegistryAudit.id < before)
    rows, next_cursor = cut_page(list(await session.scalars(query)), limit, lambda r: r.id)
    return AuditPageRead(items=[entry_read(row) for row in rows], next_cursor=next_cursor)
