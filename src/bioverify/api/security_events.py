"""Security events, aggregated where they are emitted: one audit entry per
(event, session, address) and window, then one counted entry for its repeats.

Refused tokens, tampered envelopes, replayed nonces and rejected credentials are
audited, and the audit log is permanent: one entry per request would let anyone
grow it without bound. The first occurrence in a window is written at once (an
isolated event is never delayed); repeats within the window are counted in memory
and written as one entry with ``repeats: N`` when the window closes (at the next
security event after it, or at shutdown).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bioverify.crypto.keyring import KeyRing
from bioverify.sessions.effects import ServiceEffects
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import transaction
from bioverify.windows import Window, WindowCounts

#: How long repeats of one (event, session, address) are folded into one entry.
AGGREGATION_WINDOW_S = 300.0


@dataclass(frozen=True, slots=True)
class _Occurrence:
    kind: str
    client_id: str | None
    session_id: str | None
    subjects: Mapping[str, str]
    details: Mapping[str, object]


_Key = tuple[str, str | None, str]


class SecurityEvents:
    """The capture service's security hook and the auth-failure recorder, aggregated."""

    def __init__(
        self,
        effects: ServiceEffects,
        keyring: KeyRing,
        *,
        window_s: float = AGGREGATION_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._effects = effects
        self._keyring = keyring
        self._windows: WindowCounts[_Key, _Occurrence] = WindowCounts(window_s, clock)

    def capture_hook(
        self, db: Session, kind: str, row: SessionRow | None, details: Mapping[str, object]
    ) -> None:
        """:data:`bioverify.sessions.capture.SecurityHook`; ``details["address"]`` is hashed."""
        rest = dict(details)
        address = str(rest.pop("address", "") or "")
        self.observe(
            db,
            kind,
            client_id=row.client_id if row else None,
            session_id=row.id if row else None,
            address=address,
            details=rest,
        )

    def observe(
        self,
        db: Session,
        kind: str,
        *,
        client_id: str | None,
        session_id: str | None,
        address: str,
        details: Mapping[str, object],
    ) -> None:
        """Audit this occurrence now if it opens a window; count it otherwise."""
        hashed = self._keyring.keyed_hash(address, "address") if address else ""
        occurrence = _Occurrence(
            kind, client_id, session_id, {"address": hashed} if hashed else {}, dict(details)
        )
        window, closed = self._windows.add((kind, session_id, hashed), occurrence)
        self._write_repeats(db, closed)
        if window.count == 1:
            self._write(db, occurrence, 0)

    def flush(self, factory: sessionmaker[Session]) -> None:
        """Write the counted entries of every open window (shutdown)."""
        closed = self._windows.drain()
        if any(window.count > 1 for _, window in closed):
            with transaction(factory) as db:
                self._write_repeats(db, closed)

    def _write_repeats(self, db: Session, closed: list[tuple[_Key, Window[_Occurrence]]]) -> None:
        for _, window in closed:
            if window.count > 1:
                self._write(db, window.first, window.count - 1)

    def _write(self, db: Session, occurrence: _Occurrence, repeats: int) -> None:
        self._effects.security_entry(
            db,
            occurrence.kind,
            client_id=occurrence.client_id,
            session_id=occurrence.session_id,
            details=occurrence.details,
            subjects=occurrence.subjects,
            repeats=repeats,
        )


__all__ = ["AGGREGATION_WINDOW_S", "SecurityEvents"]
