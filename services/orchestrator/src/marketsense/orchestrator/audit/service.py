"""Audit entries, added in the transaction of the action they describe."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import OperatorAction

SCHEDULER = "scheduler"
"""The actor of runs the daily schedule starts."""


def record_action(
    session: AsyncSession,
    *,
    action: str,
    target: str,
    actor: str,
    reason: str = "",
    details: dict[str, object] | None = None,
) -> None:
    """Add an audit entry in the caller's transaction, so it commits with what it describes."""
    session.add(
        OperatorAction(
            action=action,
            target=target,
            actor=actor,
            reason=reason,
            details=json.dumps(details or {}, sort_keys=True, default=str),
            at=dt.datetime.now(dt.UTC),
        )
    )
