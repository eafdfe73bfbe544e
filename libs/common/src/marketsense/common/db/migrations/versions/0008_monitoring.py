"""monitoring: outcomes, daily performance per model version, drift, decay alerts

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketsense.common.db.base import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _created_at() -> sa.Column[object]:
    """The insert-time column every table has."""
    return sa.Column("created_at", UtcDateTime(), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "decay_alerts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("sharpe", sa.Float(), nullable=False),
        sa.Column("benchmark_sharpe", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decay_alerts")),
        sa.UniqueConstraint(
            "model_name",
            "model_version",
            "day",
            name=op.f("uq_decay_alerts_model_name_model_version_day"),
        ),
    )
    op.create_index(op.f("ix_decay_alerts_day"), "decay_alerts", ["day"], unique=False)
    op.create_table(
        "drift_measurements",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_measurements")),
        sa.UniqueConstraint(
            "run_id",
            "model_name",
            "model_version",
            "feature",
            name=op.f("uq_drift_measurements_run_id_model_name_model_version_feature"),
        ),
    )
    op.create_index(
        op.f("ix_drift_measurements_as_of"), "drift_measurements", ["as_of"], unique=False
    )
    op.create_index(
        op.f("ix_drift_measurements_run_id"), "drift_measurements", ["run_id"], unique=False
    )
    op.create_table(
        "performance_daily",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("predictions", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("book_positions", sa.Integer(), nullable=False),
        sa.Column("book_hits", sa.Integer(), nullable=False),
        sa.Column("ic", sa.Float(), nullable=True),
        sa.Column("rank_ic", sa.Float(), nullable=True),
        sa.Column("gross_return", sa.Float(), nullable=False),
        sa.Column("turnover", sa.Float(), nullable=False),
        sa.Column("strategy_return", sa.Float(), nullable=False),
        sa.Column("benchmark_return", sa.Float(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_daily")),
        sa.UniqueConstraint(
            "model_name",
            "model_version",
            "day",
            name=op.f("uq_performance_daily_model_name_model_version_day"),
        ),
    )
    op.create_index(op.f("ix_performance_daily_day"), "performance_daily", ["day"], unique=False)
    op.create_table(
        "outcomes",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("prediction_id", _BIG_ID, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("prob_up", sa.Float(), nullable=False),
        sa.Column("outcome_day", sa.Date(), nullable=False),
        sa.Column("realized_return", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("resolved_by_run", sa.String(length=36), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_outcomes_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("prediction_id", name=op.f("uq_outcomes_prediction_id")),
    )
    op.create_index(
        op.f("ix_outcomes_model_name_model_version_outcome_day"),
        "outcomes",
        ["model_name", "model_version", "outcome_day"],
        unique=False,
    )
    op.create_index(op.f("ix_outcomes_symbol_as_of"), "outcomes", ["symbol", "as_of"], unique=False)
    op.create_index(
        op.f("ix_outcomes_resolved_by_run"), "outcomes", ["resolved_by_run"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("outcomes", "performance_daily", "drift_measurements", "decay_alerts"):
        op.drop_table(table)
