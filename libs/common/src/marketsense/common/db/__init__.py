"""Database access: engine, tables, migrations and the outbox."""

from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    Base,
    FeatureSet,
    OutboxMessage,
    Prediction,
    RawObject,
    Run,
    Task,
)

__all__ = [
    "Base",
    "Database",
    "FeatureSet",
    "OutboxMessage",
    "Prediction",
    "RawObject",
    "Run",
    "Task",
]
