"""The model registry's tables: models, versions, aliases, evaluation sets, measurements, the
audit log and what each service replica reports serving."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketsense.common.db.base import Base, BigId, UtcDateTime
from marketsense.common.db.base import server_now as _now


class RegisteredModel(Base):
    """A model name in the registry: its kind and what it is for."""

    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`sentiment` or `predictor`."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = _now()


class ModelVersion(Base):
    """One pushed version of a registered model: its manifest and the files of its bundle."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_name", "version"),
        Index(None, "model_name", "content_sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    """1, 2, 3... per model, assigned by the registry."""
    manifest: Mapped[str] = mapped_column(Text)
    """The manifest as stored (JSON), with the registry's name and version written in."""
    files: Mapped[str] = mapped_column(Text)
    """JSON list of the bundle's stored files: name, uri, sha256, size (manifest included)."""
    evaluation_window: Mapped[str | None] = mapped_column(String(128))
    """What the pusher says the claimed metrics were measured on (kept for lineage only)."""
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    """Hash of the bundle's files and the manifest's content: an identical push finds it."""
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    """What this version is, editable after the push."""
    checks: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """What the registry measured at push beyond metrics (parity, label probes), as JSON."""
    archived_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    """When it was archived: never promotable again, still readable and downloadable."""
    archived_by: Mapped[str | None] = mapped_column(String(128))
    archive_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = _now()


class ModelAlias(Base):
    """Where an alias of a model points now; the key makes it one version per (model, alias)."""

    __tablename__ = "model_aliases"

    model_name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class AliasChange(Base):
    """Every alias move, who made it, when, from which version to which, and why."""

    __tablename__ = "alias_changes"
    __table_args__ = (Index(None, "model_name", "alias", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE")
    )
    alias: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    """`promote`, `rollback` or `delete`."""
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    """Version it points at after; null when the alias was deleted."""
    actor: Mapped[str] = mapped_column(String(128))
    """Name of the API key that made the change."""
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the metric gate was overridden."""
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    """Set by the application in UTC, so "which version at time T" reads the same on any engine."""


class EvaluationSet(Base):
    """A labelled data set the registry scores versions on; the newest of a kind is in use."""

    __tablename__ = "evaluation_sets"
    __table_args__ = (UniqueConstraint("kind", "sha256"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`sentiment` (labelled texts) or `predictor` (feature rows and realised outcomes)."""
    name: Mapped[str] = mapped_column(String(128))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text, default="")
    """Where the rows came from: the packaged texts, an upload, or stored runs and a window."""
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = _now()


class VersionMetric(Base):
    """One metric the registry measured for a version's graph variant on an evaluation set."""

    __tablename__ = "version_metrics"
    __table_args__ = (
        UniqueConstraint("model_name", "version", "variant", "evaluation_set_id", "metric"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(16))
    """`fp32` or `int8`: which graph file was scored."""
    evaluation_set_id: Mapped[int] = mapped_column(
        ForeignKey("evaluation_sets.id", ondelete="CASCADE")
    )
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    measured_at: Mapped[dt.datetime] = _now()


class RegistryAudit(Base):
    """The registry's audit log: pushes, refusals, promotions, rollbacks, archives and edits."""

    __tablename__ = "registry_audit"
    __table_args__ = (Index(None, "model_name", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(128))
    """No foreign key: a refusal is kept even for a name that was never registered."""
    action: Mapped[str] = mapped_column(String(32))
    version: Mapped[int | None] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    """Why, as the actor gave it."""
    detail: Mapped[str] = mapped_column(Text, default="")
    """What the registry said: a refusal's message, a push's warnings."""
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ModelServing(Base):
    """What one replica of a service last reported serving for one model."""

    __tablename__ = "model_serving"

    replica: Mapped[str] = mapped_column(String(128), primary_key=True)
    """Host name and process id of the replica."""
    model_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    service: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    """`registry` or `local`."""
    reported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
