"""session abuse counters: wrong capture-token secrets and challenges issued

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:50:00

A wrong token secret ends a session only after repeated attempts, and a session
issues a bounded number of liveness challenges; both counts live on the session
row so every replica sees them under the row lock. Also indexes capture nonces by
time, so pruning old ones is a range delete.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bioverify.storage.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wrong_token_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("challenges_issued", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "capture_until",
                bioverify.storage.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    with op.batch_alter_table("capture_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_capture_nonces_seen_at", ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("capture_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_nonces_seen_at")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("capture_until")
        batch_op.drop_column("challenges_issued")
        batch_op.drop_column("wrong_token_attempts")
