"""runs count the spool lines the ingest rejected

Revision ID: 0004_rejected_events
Revises: 0003_compute_targets
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_rejected_events"
down_revision = "0003_compute_targets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("rejected_events", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("rejected_events")
