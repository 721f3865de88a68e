"""A writer process of the sequencer tests: ``python audit_writer.py URL WRITER COUNT``.

Queues COUNT audit entries, one transaction each (as request transactions do),
with session ids ``w{WRITER}-{i}``, so the test can check each is sequenced once.
"""

from __future__ import annotations

import datetime as dt
import sys

from sqlalchemy.orm import Session

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.service import AuditLog
from bioverify.storage.database import make_engine


def main(url: str, writer: int, count: int) -> None:
    engine = make_engine(url, pool_size=1)
    log = AuditLog()
    for i in range(count):
        with Session(engine) as db, db.begin():
            log.append(
                db,
                build_entry(
                    AuditEvent.SESSION_CREATED,
                    client_id=f"writer-{writer}",
                    session_id=f"w{writer}-{i}",
                    at=dt.datetime.now(dt.UTC),
                ),
            )
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
