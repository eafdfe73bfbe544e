"""registry measures its versions: evaluation sets, measured metrics, audit, serving reports

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketsense.common.db.base import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("checks", sa.Text(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("archived_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("archived_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("archive_reason", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_model_versions_model_name_content_sha256", ["model_name", "content_sha256"]
        )
    with op.batch_alter_table("alias_changes", schema=None) as batch_op:
        batch_op.alter_column("to_version", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "evaluation_sets",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_sets")),
        sa.UniqueConstraint("kind", "sha256", name=op.f("uq_evaluation_sets_kind_sha256")),
    )
    op.create_table(
        "version_metrics",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("evaluation_set_id", _BIG_ID, nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("measured_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name"],
            ["registered_models.name"],
            name=op.f("fk_version_metrics_model_name_registered_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_set_id"],
            ["evaluation_sets.id"],
            name=op.f("fk_version_metrics_evaluation_set_id_evaluation_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_metrics")),
        sa.UniqueConstraint(
            "model_name",
            "version",
            "variant",
            "evaluation_set_id",
            "metric",
            name=op.f("uq_version_metrics_model_name_version_variant_evaluation_set_id_metric"),
        ),
    )
    op.create_table(
        "registry_audit",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_audit")),
    )
    op.create_index(
        "ix_registry_audit_model_name_id", "registry_audit", ["model_name", "id"], unique=False
    )
    op.create_table(
        "model_serving",
        sa.Column("replica", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reported_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("replica", "model_name", name=op.f("pk_model_serving")),
    )
    # Every push and alias move made before this revision, so the audit log starts complete.
    op.execute(
        "INSERT INTO registry_audit "
        "(model_name, action, version, alias, from_version, actor, reason, detail, forced, at) "
        "SELECT model_name, action, to_version, alias, from_version, actor, reason, '', forced, at "
        "FROM alias_changes"
    )
    op.execute(
        "INSERT INTO registry_audit "
        "(model_name, action, version, alias, from_version, actor, reason, detail, forced, at) "
        "SELECT model_name, 'push', version, NULL, NULL, created_by, '', '', false, created_at "
        "FROM model_versions"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("model_serving")
    op.drop_index("ix_registry_audit_model_name_id", table_name="registry_audit")
    op.drop_table("registry_audit")
    op.drop_table("version_metrics")
    op.drop_table("evaluation_sets")
    op.execute("DELETE FROM alias_changes WHERE to_version IS NULL")
    with op.batch_alter_table("alias_changes", schema=None) as batch_op:
        batch_op.alter_column("to_version", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_model_name_content_sha256")
        for column in (
            "archive_reason",
            "archived_by",
            "archived_at",
            "checks",
            "description",
            "content_sha256",
        ):
            batch_op.drop_column(column)
