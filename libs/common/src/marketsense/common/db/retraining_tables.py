"""The retraining worker's table: one row per retrain request, its progress and its outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketsense.common.db.base import Base, UtcDateTime


class Retrain(Base):
    """A request to train a challenger for a model, from its arrival to its registry version."""

    __tablename__ = "retrains"
    __table_args__ = (
        # A redelivered `retrain.requested` is the same request, never a second one.
        UniqueConstraint("request_event_id"),
        Index(None, "state", "requested_at"),
        Index(None, "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    request_event_id: Mapped[str] = mapped_column(String(36))
    """Id of the `retrain.requested` event that asked for it."""
    reason: Mapped[str] = mapped_column(Text)
    window_start: Mapped[dt.date] = mapped_column(Date)
    """First day of the training window."""
    window_end: Mapped[dt.date] = mapped_column(Date)
    """Last day of the window that showed the decay; training reads on to the newest day."""
    state: Mapped[str] = mapped_column(String(16))
    """REQUESTED, WAITING, TRAINING, PUSHING, DONE or FAILED."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Times a worker took the request."""
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    """When a worker last took it: its lease runs from here."""
    rows: Mapped[int | None] = mapped_column(Integer)
    """Labelled rows the model was trained on."""
    days: Mapped[int | None] = mapped_column(Integer)
    """Distinct trading days among them."""
    training_set_sha256: Mapped[str | None] = mapped_column(String(64))
    """sha256 of the training set's Parquet bytes, stored under `retraining/<id>/`."""
    runs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Ids of the finished runs whose stored files gave the training set."""
    version: Mapped[int | None] = mapped_column(Integer)
    """Registry version of the trained challenger."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why the latest attempt failed, or why the request waits."""
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
