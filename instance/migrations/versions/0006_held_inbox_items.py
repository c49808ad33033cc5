"""inbox items held until the object they need arrives

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import catalogue.columns


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("waiting_for", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "next_attempt_at", catalogue.columns.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(
            batch_op.f("ix_inbox_item_waiting_for"), ["waiting_for"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_item_waiting_for"))
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("waiting_for")
