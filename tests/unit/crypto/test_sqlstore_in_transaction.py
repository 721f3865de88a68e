"""Data keys read inside a locked write transaction (a capture's conclusion).

Per-customer data keys (crypto-erase) meant a SIGN-IN after a restart, or an ENROLL
without a customerId, read or made a key the process had not cached while the
capture's transaction held SQLite's write lock; the second transaction waited on
the first until the busy timeout and the capture never answered.
"""

from __future__ import annotations

from sqlalchemy import Engine, update

from bioverify.crypto import KeyRing, TemplateCipher
from bioverify.crypto.datakeys import customer_scope
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import session_factory, transaction


def test_a_key_missing_from_the_cache_is_read_inside_a_write_transaction(
    db_engine: Engine, keyring: KeyRing
) -> None:
    factory = session_factory(db_engine)
    scope = customer_scope("tenant", "erin")
    written = TemplateCipher(keyring, SqlDataKeyStore(factory))
    blob = written.encrypt(scope, b"template", b"aad")
    # Another process (or this one after a restart): nothing cached.
    fresh = TemplateCipher(keyring, SqlDataKeyStore(factory))
    with transaction(factory) as db:
        db.execute(update(SessionRow).where(SessionRow.id == "none").values(status="x"))
        assert fresh.decrypt(scope, blob, b"aad") == b"template"
