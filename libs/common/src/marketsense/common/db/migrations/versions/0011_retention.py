"""retention: operator holds on runs and the audit row of every retention pass

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketsense.common.db.base import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "retention_holds",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_retention_holds")),
    )
    op.create_table(
        "retention_passes",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_passes")),
    )
    op.create_index(
        op.f("ix_retention_passes_dry_run_finished_at"),
        "retention_passes",
        ["dry_run", "finished_at"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("retention_passes")
    op.drop_table("retention_holds")
