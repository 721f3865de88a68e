"""gallery change log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bioverify.storage.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("at", bioverify.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_gallery_changes")),
    )
    with op.batch_alter_table("gallery_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gallery_changes_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gallery_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gallery_changes_client_id"))
    op.drop_table("gallery_changes")
