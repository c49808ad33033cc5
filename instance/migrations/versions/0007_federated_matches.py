"""federated matches: remote funders' matches of our pledges, how far our ledger was published

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 22:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import catalogue.columns


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "remote_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("funder_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("funder_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("program_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("program_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("program_ratio", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("changed_at", catalogue.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledge.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("remote_match", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remote_match_origin"), ["origin"], unique=False)
        batch_op.create_index(batch_op.f("ix_remote_match_pledge_id"), ["pledge_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_remote_match_uri"), ["uri"], unique=True)

    op.create_table(
        "match_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_entry_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("match_feed")
    with op.batch_alter_table("remote_match", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remote_match_uri"))
        batch_op.drop_index(batch_op.f("ix_remote_match_pledge_id"))
        batch_op.drop_index(batch_op.f("ix_remote_match_origin"))
    op.drop_table("remote_match")
