"""Migration 0002 on a store written by the previous release (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import text

from bioverify.storage.database import make_engine
from bioverify.storage.migrate import alembic_config, is_current, upgrade


def test_existing_clients_stay_unframeable_and_enrolments_get_a_guid(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO clients (id, name, api_key_hash, key_only, webhook_secrets, "
                    "created_at) VALUES ('c-1', 'old', :key, false, '[]', :now)"
                ),
                {"key": b"k" * 32, "now": now},
            )
            for index in range(3):
                conn.execute(
                    text(
                        "INSERT INTO enrolments (id, client_id, customer_id, puid, template, "
                        "model_version, enrolled_at) "
                        "VALUES (:id, 'c-1', :cid, :puid, :t, 'm', :now)"
                    ),
                    {
                        "id": f"e-{index}",
                        "cid": f"cust-{index}",
                        "puid": f"puid_{index}",
                        "t": b"x",
                        "now": now,
                    },
                )
        upgrade(engine)
        assert is_current(engine)
        with engine.connect() as conn:
            guids = [row[0] for row in conn.execute(text("SELECT guid FROM enrolments"))]
            ancestors = conn.execute(text("SELECT frame_ancestors FROM clients")).scalar_one()
        assert len(guids) == 3 and len(set(guids)) == 3 and all(len(g) == 36 for g in guids)
        assert ancestors in ("[]", [])  # the hosted page of old clients stays unframeable
    finally:
        engine.dispose()
