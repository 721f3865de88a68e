"""audit log as a transparency log: queue, tiles, head

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:30:00

Existing entries keep their indexes, bodies and leaf hashes: the tiles are built
from the stored leaf hashes, so every existing checkpoint's root is the root of
the migrated tree. The head takes the latest existing checkpoint; if entries were
appended after it, the first sequencer batch signs one that covers them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bioverify.storage.base
from bioverify.audit.tiles import TreeEdge
from bioverify.audit.tilestore import write_tiles

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PAGE = 1 << 16  # leaf hashes per read: a multiple of the tile width


def upgrade() -> None:
    op.create_table(
        "audit_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", bioverify.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_queue")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_tiles",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tiles")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=True),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("signed_at", bioverify.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_audit_entries_queue_id", ["queue_id"], unique=True)
    _build_tiles_and_head()


def _build_tiles_and_head() -> None:
    """Tiles from the stored leaf hashes, in index order; the head from the last checkpoint."""
    conn = op.get_bind()
    entries = sa.table("audit_entries", sa.column("idx"), sa.column("leaf_hash"))
    checkpoints = sa.table(
        "audit_checkpoints",
        sa.column("tree_size"),
        sa.column("root_hash"),
        sa.column("note"),
        sa.column("created_at"),
    )
    head = sa.table(
        "audit_head",
        sa.column("id"),
        sa.column("tree_size"),
        sa.column("checkpoint_size"),
        sa.column("root_hash"),
        sa.column("note"),
        sa.column("signed_at"),
    )
    edge = TreeEdge()
    while True:
        rows = conn.execute(
            sa.select(entries.c.idx, entries.c.leaf_hash)
            .where(entries.c.idx >= edge.size)
            .order_by(entries.c.idx)
            .limit(_PAGE)
        ).all()
        if not rows:
            break
        # Stop at a gap: indexes after it cannot be placed; `audit verify` names it.
        leaves = []
        for offset, (idx, leaf) in enumerate(rows):
            if idx != edge.size + offset:
                break
            leaves.append(bytes(leaf))
        write_tiles(conn, edge.append(b"".join(leaves)))
        if len(leaves) < len(rows):
            break
    if edge.size == 0:
        return
    latest = conn.execute(
        sa.select(
            checkpoints.c.tree_size,
            checkpoints.c.root_hash,
            checkpoints.c.note,
            checkpoints.c.created_at,
        )
        .where(checkpoints.c.tree_size <= edge.size)
        .order_by(checkpoints.c.tree_size.desc())
        .limit(1)
    ).first()
    conn.execute(
        sa.insert(head).values(
            id=1,
            tree_size=edge.size,
            checkpoint_size=latest.tree_size if latest else None,
            root_hash=latest.root_hash if latest else None,
            note=latest.note if latest else None,
            signed_at=latest.created_at if latest else None,
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_queue_id")
        batch_op.drop_column("queue_id")
    op.drop_table("audit_head")
    op.drop_table("audit_tiles")
    op.drop_table("audit_queue")
