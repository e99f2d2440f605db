"""initial schema

Revision ID: 0001_initial
Revises: (none)
"""
import sqlalchemy as sa
from alembic import op

revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('experiments',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('metric_series',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'name', 'kind', name='uq_metric_series')
    )
    op.create_table('metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_json', sa.Text(), nullable=True),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['series_id'], ['metric_series.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index('ix_metrics_series_step', ['series_id', 'step'], unique=False)

    op.create_table('run_attempts',
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('run_id', 'attempt')
    )
    op.create_table('run_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('run_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_events_run_id'), ['run_id'], unique=False)

    op.create_table('run_files',
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('name', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'name')
    )
    op.create_table('run_properties',
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'key')
    )
    op.create_table('run_tags',
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('run_id', 'key')
    )
    op.create_table('spool_offsets',
    sa.Column('run_id', sa.String(length=512), nullable=False),
    sa.Column('stream', sa.String(length=255), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'stream')
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=512), nullable=False),
    sa.Column('experiment', sa.String(length=255), nullable=False),
    sa.Column('parent_id', sa.String(length=512), nullable=True),
    sa.Column('run_type', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('start_time', sa.Float(), nullable=True),
    sa.Column('end_time', sa.Float(), nullable=True),
    sa.Column('snapshot_id', sa.String(length=64), nullable=True),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('handle', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['experiment'], ['experiments.name'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_experiment_created', ['experiment', 'created_at'], unique=False)
        batch_op.create_index('ix_runs_parent', ['parent_id'], unique=False)
        batch_op.create_index('ix_runs_status', ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status')
        batch_op.drop_index('ix_runs_parent')
        batch_op.drop_index('ix_runs_experiment_created')

    op.drop_table('runs')
    op.drop_table('spool_offsets')
    op.drop_table('run_tags')
    op.drop_table('run_properties')
    op.drop_table('run_files')
    with op.batch_alter_table('run_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_events_run_id'))

    op.drop_table('run_events')
    op.drop_table('run_attempts')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_metrics_series_step')

    op.drop_table('metrics')
    op.drop_table('metric_series')
    op.drop_table('experiments')

