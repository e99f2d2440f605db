"""datastores and the model registry

Revision ID: 0005_assets
Revises: 0004_rejected_events
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_assets"
down_revision = "0004_rejected_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datastores",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "models",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("framework", sa.String(length=64), nullable=True),
        sa.Column("framework_version", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=512), nullable=True),
        sa.Column("experiment", sa.String(length=255), nullable=True),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("root", sa.String(length=1024), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_index("ix_models_run_id", "models", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_models_run_id", table_name="models")
    op.drop_table("models")
    op.drop_table("datastores")
