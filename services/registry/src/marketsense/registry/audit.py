"""The registry's audit log: one entry for every push, refusal, promotion, rollback, archive
and edit, with who did it and why."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import RegistryAudit
from marketsense.common.runtime import Runtime

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
