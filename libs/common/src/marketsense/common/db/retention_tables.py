"""Retention's tables: operator holds on runs, and the audit row of every retention pass."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketsense.common.db.base import Base, BigId, UtcDateTime


class RetentionHold(Base):
    """An operator's hold on a run: retention deletes none of its objects or rows meanwhile."""

    __tablename__ = "retention_holds"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """No foreign key: a hold outlives nothing it protects, and a run with a hold is never
    deleted."""
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class RetentionPass(Base):
    """One retention pass: when it ran, whether it only listed, what it deleted, how it ended."""

    __tablename__ = "retention_passes"
    __table_args__ = (Index(None, "dry_run", "finished_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    """None while it runs, or when its process died before it could say how it ended."""
    dry_run: Mapped[bool] = mapped_column(Boolean)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Per prefix (`raw/`, `features/`) objects and bytes, per table rows: deleted, or listed by
    a dry run."""
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    """Why the pass stopped; what it deleted before that is in `counts`."""
