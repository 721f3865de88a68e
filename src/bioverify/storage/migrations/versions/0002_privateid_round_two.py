"""PrivateID round 2: frame ancestors per client, guid, observed device info

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:50:00

- ``clients.frame_ancestors``: origins allowed to frame the hosted capture page
  (empty for existing clients: their page stays unframeable, as before).
- ``enrolments.guid``: PrivateID's ``guid``, a stable random id per enrolled
  customer (existing enrolments get a fresh one each).
- ``sessions.guid`` and ``sessions.client_device_info``: the matched customer's
  guid, and the ``deviceInfo`` the capture client reported.
- ``sessions.indicators`` written before the closed schema are dropped: the old flat
  shape is never shown again, and a hostile one may be nested deep enough to break
  every read of its session (issue 20 item 8).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("frame_ancestors", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guid", sa.String(length=36), nullable=True))
    enrolments = sa.table("enrolments", sa.column("id", sa.String), sa.column("guid", sa.String))
    bind = op.get_bind()
    for (enrolment_id,) in bind.execute(sa.select(enrolments.c.id)).all():
        bind.execute(
            enrolments.update()
            .where(enrolments.c.id == enrolment_id)
            .values(guid=str(uuid.uuid4()))
        )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.alter_column("guid", existing_type=sa.String(length=36), nullable=False)
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guid", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("client_device_info", sa.JSON(), nullable=True))
    sessions = sa.table("sessions", sa.column("indicators", sa.JSON))
    bind.execute(sessions.update().values(indicators=sa.null()))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("client_device_info")
        batch_op.drop_column("guid")
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_column("guid")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("frame_ancestors")
