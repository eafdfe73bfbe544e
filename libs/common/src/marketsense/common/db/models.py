"""Tables of the shared database; Alembic migrations create them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names, so migrations stay stable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _now() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Run(Base):
    """One daily run over a universe of symbols."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16))
    symbols: Mapped[int] = mapped_column(Integer)
    failure_threshold: Mapped[float] = mapped_column(Float, default=0.01)
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Task(Base):
    """One (run, symbol, stage) unit of work and its state."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("run_id", "symbol", "stage"),
        Index(None, "run_id", "stage", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    """What the stage cleaned or rejected in its input, one reason per line."""
    updated_at: Mapped[dt.datetime] = _now()


class RawObject(Base):
    """A raw object that ingestion stored for a (run, symbol)."""

    __tablename__ = "raw_objects"
    __table_args__ = (UniqueConstraint("run_id", "symbol", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _now()


class FeatureSet(Base):
    """A feature row that processing stored for a (run, symbol)."""

    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("run_id", "symbol", "feature_schema"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    feature_schema: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _now()


class Prediction(Base):
    """A scored prediction for a (run, symbol, horizon)."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("run_id", "symbol", "horizon_days"),
        Index(None, "symbol", "as_of"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    horizon_days: Mapped[int] = mapped_column(Integer)
    prob_up: Mapped[float] = mapped_column(Float)
    signal: Mapped[str] = mapped_column(String(8))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _now()


class OutboxMessage(Base):
    """An event written in the same transaction as the change it announces."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = _now()
