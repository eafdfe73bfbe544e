"""backfills

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "state IN ('PENDING', 'RUNNING')"
_LIVE_DAILY = "state IN ('PENDING', 'RUNNING') AND kind = 'daily'"
_LIVE_BACKFILL = "state IN ('PENDING', 'RUNNING') AND kind = 'backfill'"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="daily", nullable=False)
        )
        batch_op.add_column(sa.Column("start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_request_key"), ["request_key"], unique=False)
        # Two identical backfill requests racing start one run.
        batch_op.create_index(
            "uq_runs_live_request_key",
            ["request_key"],
            unique=True,
            postgresql_where=sa.text(_LIVE_BACKFILL),
            sqlite_where=sa.text(_LIVE_BACKFILL),
        )
        # A backfill neither blocks a daily run nor is blocked by one: the index holds daily runs.
        batch_op.drop_index(
            "uq_runs_live_as_of",
            postgresql_where=sa.text(_LIVE),
            sqlite_where=sa.text(_LIVE),
        )
        batch_op.create_index(
            "uq_runs_live_as_of",
            ["as_of"],
            unique=True,
            postgresql_where=sa.text(_LIVE_DAILY),
            sqlite_where=sa.text(_LIVE_DAILY),
        )
    # A backfill writes one prediction per day of its range under one run.
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_predictions_per_model_version", type_="unique")
        batch_op.create_unique_constraint(
            "uq_predictions_per_model_version",
            ["run_id", "symbol", "as_of", "horizon_days", "model_name", "model_version"],
        )


def downgrade() -> None:
    """Revert this revision."""
    # Backfills hold many days per run: they cannot be kept under the older constraint.
    op.execute("DELETE FROM runs WHERE kind = 'backfill'")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_predictions_per_model_version", type_="unique")
        batch_op.create_unique_constraint(
            "uq_predictions_per_model_version",
            ["run_id", "symbol", "horizon_days", "model_name", "model_version"],
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_runs_live_as_of",
            postgresql_where=sa.text(_LIVE_DAILY),
            sqlite_where=sa.text(_LIVE_DAILY),
        )
        batch_op.create_index(
            "uq_runs_live_as_of",
            ["as_of"],
            unique=True,
            postgresql_where=sa.text(_LIVE),
            sqlite_where=sa.text(_LIVE),
        )
        batch_op.drop_index(
            "uq_runs_live_request_key",
            postgresql_where=sa.text(_LIVE_BACKFILL),
            sqlite_where=sa.text(_LIVE_BACKFILL),
        )
        batch_op.drop_index(batch_op.f("ix_runs_request_key"))
        batch_op.drop_column("request_key")
        batch_op.drop_column("start")
        batch_op.drop_column("kind")
