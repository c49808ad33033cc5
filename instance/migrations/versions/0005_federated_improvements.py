"""federated improvements: what each copy's origin reports as funded, what we last sent

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import catalogue.columns


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('improvement_publication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('improvement_uri', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('published_at', catalogue.columns.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', catalogue.columns.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('improvement_publication', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_improvement_publication_improvement_uri'), ['improvement_uri'], unique=True
        )

    with op.batch_alter_table('improvement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_funded_cents', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('improvement', schema=None) as batch_op:
        batch_op.drop_column('origin_funded_cents')

    with op.batch_alter_table('improvement_publication', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_improvement_publication_improvement_uri'))

    op.drop_table('improvement_publication')
