"""identity documents: the document step's pending state and the fields read

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 17:40:00

Two encrypted columns on ``sessions`` (AES-256-GCM with the tenant's data key):
``document_state`` holds the selfie (and a card front's portrait) embedding only
while the document step is open; ``identity`` holds ``identityInformation`` until
the customer is erased. Neither holds pixels.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_state", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("identity", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("identity")
        batch_op.drop_column("document_state")
