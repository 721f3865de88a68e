"""Migrations form one line: branches merged with their own revisions chain them.

Two heads would make ``bioverify migrate`` (``upgrade head``) refuse to run on every
install, so a merge that adds a second head must fail here first.
"""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from bioverify.storage.migrate import alembic_config, is_current


def test_the_migrations_have_one_head(db_engine: Engine) -> None:
    heads = ScriptDirectory.from_config(alembic_config(db_engine)).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_a_fresh_store_migrates_to_the_head_with_every_column(db_engine: Engine) -> None:
    assert is_current(db_engine)
    columns = {c["name"] for c in inspect(db_engine).get_columns("sessions")}
    # Issue 20's counters and capture hold (migration 0003) are in the store.
    assert {"wrong_token_attempts", "challenges_issued", "capture_until"} <= columns
