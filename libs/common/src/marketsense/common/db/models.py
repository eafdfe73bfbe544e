"""Tables of the shared database; Alembic migrations create them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketsense.common.db.base import Base as Base
from marketsense.common.db.base import BigId as BigId
from marketsense.common.db.base import UtcDateTime as UtcDateTime
from marketsense.common.db.base import server_now as _now
from marketsense.common.db.monitoring_tables import Challenge as Challenge
from marketsense.common.db.monitoring_tables import DecayAlert as DecayAlert
from marketsense.common.db.monitoring_tables import DriftMeasurement as DriftMeasurement
from marketsense.common.db.monitoring_tables import Outcome as Outcome
from marketsense.common.db.monitoring_tables import PerformanceDay as PerformanceDay
from marketsense.common.db.registry_tables import AliasChange as AliasChange
from marketsense.common.db.registry_tables import EvaluationSet as EvaluationSet
from marketsense.common.db.registry_tables import ModelAlias as ModelAlias
from marketsense.common.db.registry_tables import ModelServing as ModelServing
from marketsense.common.db.registry_tables import ModelVersion as ModelVersion
from marketsense.common.db.registry_tables import RegisteredModel as RegisteredModel
from marketsense.common.db.registry_tables import RegistryAudit as RegistryAudit
from marketsense.common.db.registry_tables import VersionMetric as VersionMetric
from marketsense.common.db.retention_tables import RetentionHold as RetentionHold
from marketsense.common.db.retention_tables import RetentionPass as RetentionPass
from marketsense.common.db.retraining_tables import Retrain as Retrain
from marketsense.common.events import ObjectRef


class StoredObject:
    """Columns of a row that records one object in the object store, and its reference."""

    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    def ref(self) -> ObjectRef:
        """The reference to read the object with (its checksum verified)."""
        return ObjectRef(uri=self.uri, sha256=self.sha256, size=self.size)

    def point_at(self, ref: ObjectRef) -> None:
        """Record the object a reference names."""
        self.uri, self.sha256, self.size = ref.uri, ref.sha256, ref.size


LIVE_RUN_STATES = ("PENDING", "RUNNING")
"""Run states that hold their trading day: a second run for the day is refused meanwhile."""

DAILY_RUN = "daily"
"""Kind of a run for one trading day."""

BACKFILL_RUN = "backfill"
"""Kind of a run over a range of trading days, `start` to `as_of`."""


_LIVE_DAILY = f"state IN {LIVE_RUN_STATES} AND kind = '{DAILY_RUN}'"
_LIVE_BACKFILL = f"state IN {LIVE_RUN_STATES} AND kind = '{BACKFILL_RUN}'"


class Run(Base):
    """One run over a universe of symbols: a daily run, or a backfill of a range of days."""

    __tablename__ = "runs"
    __table_args__ = (
        # At most one live daily run per trading day, enforced by the database even across
        # replicas; backfills cover ranges and neither block nor wait for daily runs.
        Index(
            "uq_runs_live_as_of",
            "as_of",
            unique=True,
            postgresql_where=text(_LIVE_DAILY),
            sqlite_where=text(_LIVE_DAILY),
        ),
        # One live backfill per request: two identical requests racing start one run.
        Index(
            "uq_runs_live_request_key",
            "request_key",
            unique=True,
            postgresql_where=text(_LIVE_BACKFILL),
            sqlite_where=text(_LIVE_BACKFILL),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16))
    symbols: Mapped[int] = mapped_column(Integer)
    failure_threshold: Mapped[float] = mapped_column(Float, default=0.01)
    kind: Mapped[str] = mapped_column(String(16), server_default=DAILY_RUN, default=DAILY_RUN)
    """`daily` (the day `as_of`) or `backfill` (every session from `start` to `as_of`)."""
    start: Mapped[dt.date | None] = mapped_column(Date)
    """First day of a backfill; None for a daily run."""
    request_key: Mapped[str | None] = mapped_column(String(64), index=True)
    """sha256 of a backfill's request, so the same request finds its run again."""
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


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


class RawObject(StoredObject, Base):
    """A raw object that ingestion stored for a (run, symbol)."""

    __tablename__ = "raw_objects"
    __table_args__ = (UniqueConstraint("run_id", "symbol", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _now()


class FeatureSet(StoredObject, Base):
    """A feature row that processing stored for a (run, symbol)."""

    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("run_id", "symbol", "feature_schema"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    feature_schema: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _now()


class Prediction(Base):
    """A scored prediction for a (run, symbol, day, horizon)."""

    __tablename__ = "predictions"
    __table_args__ = (
        # One prediction per day and model version: a promotion re-scores the latest features
        # with the new version without overwriting what the old one said, and a backfill run
        # holds one row per day of its range.
        UniqueConstraint(
            "run_id",
            "symbol",
            "as_of",
            "horizon_days",
            "model_name",
            "model_version",
            "as_of",
            name="uq_predictions_per_model_version",
        ),
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


class ApiKey(Base):
    """An API key: its name, role and the sha256 of the secret (the secret itself is not kept)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = _now()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class DeadLetter(Base):
    """A record found on a dead-letter topic, indexed so operators can list and replay it."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("dlq_topic", "dlq_partition", "dlq_offset"),
        Index(None, "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dlq_topic: Mapped[str] = mapped_column(String(255))
    dlq_partition: Mapped[int] = mapped_column(Integer)
    dlq_offset: Mapped[int] = mapped_column(BigInteger)
    original_topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    """The record's bytes, unchanged, so a replay sends exactly what failed."""
    headers: Mapped[str] = mapped_column(Text, default="{}")
    """The dead-letter headers (`x-dlq-*`) as a JSON object."""
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    event_type: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(36))
    symbol: Mapped[str | None] = mapped_column(String(32))
    failed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    recorded_at: Mapped[dt.datetime] = _now()
    replayed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    replayed_by: Mapped[str | None] = mapped_column(String(128))


class OperatorAction(Base):
    """The audit log of operator actions: retries, cancellations, replays, scheduled starts."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index(None, "target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    """What it acted on: a run id, or `dead-letters`."""
    actor: Mapped[str] = mapped_column(String(128))
    """Name of the API key, or `scheduler` for scheduled runs."""
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    """What the action did, as a JSON object (tasks retried, records replayed...)."""
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class AlertRecord(Base):
    """One alert per deduplication key: when it first and last fired, and how often."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    first_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    """When the sinks last received it; repeats within the dedupe window are only counted."""
    count: Mapped[int] = mapped_column(Integer, default=1)


class OutboxMessage(Base):
    """An event written in the same transaction as the change it announces."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str | None] = mapped_column(Text)
    """The message's headers as a JSON list of [name, base64 value] pairs; None for an event."""
    created_at: Mapped[dt.datetime] = _now()
