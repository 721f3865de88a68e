"""Erasing a customer destroys its data key and leaves no copy of the template in the
store's files (review item 7): before, the row was deleted but the template stayed in
SQLite's WAL and decrypted with the tenant's live key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from test_biometrics_e2e import Faces, enrol, faces  # noqa: F401 - the fixture

from bioverify.crypto.datakeys import TemplateCipher, TemplateDecryptError, customer_scope
from bioverify.crypto.keyring import KeyRing
from bioverify.crypto.models import DataKey
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.sessions.models import Enrolment
from bioverify.storage.database import is_sqlite, session_factory
from support import Creds

pytestmark = pytest.mark.models


def _store_files(engine: Engine) -> bytes:
    database = Path(str(engine.url.database))
    return b"".join(
        path.read_bytes() for path in (database, Path(f"{database}-wal")) if path.exists()
    )


def test_an_erased_template_is_gone_and_its_copies_do_not_decrypt(
    app_client: httpx.Client,
    creds: Creds,
    faces: Faces,  # noqa: F811 - the fixture
    db_engine: Engine,
    keyring: KeyRing,
) -> None:
    enrol(app_client, creds, faces.alice, "alice")
    with Session(db_engine) as db:
        template = db.scalars(select(Enrolment.template)).one()
        keys_before = {row.key_id: row.wrapped for row in db.scalars(select(DataKey))}
    cipher = TemplateCipher(keyring, SqlDataKeyStore(session_factory(db_engine)))
    aad = f"template:{creds.client_id}:alice".encode()
    scopes = (creds.client_id, customer_scope(creds.client_id, "alice"))

    def decrypts() -> bool:
        for scope in scopes:
            try:
                cipher.decrypt(scope, template, aad)
            except TemplateDecryptError:
                continue
            return True
        return False

    assert decrypts()  # the stored template, with the keys the service holds
    assert app_client.delete("/v2/customers/alice", headers=creds.headers()).status_code == 204

    with Session(db_engine) as db:
        keys_after = {row.key_id: row.wrapped for row in db.scalars(select(DataKey))}
    destroyed = set(keys_before) - set(keys_after)
    assert len(destroyed) == 1  # the customer's own key; the tenant's stays
    # A copy of the template kept anywhere (backup, old WAL) does not decrypt any more.
    cipher = TemplateCipher(keyring, SqlDataKeyStore(session_factory(db_engine)))
    assert not decrypts()
    if is_sqlite(db_engine):
        files = _store_files(db_engine)
        assert template[-32:] not in files  # no page of the template survives
        for key_id in destroyed:
            assert keys_before[key_id] not in files  # nor of the destroyed key
