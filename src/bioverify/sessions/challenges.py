"""Issuing liveness challenges on session load, a bounded number per session.

Every load draws a new random challenge, so reloading the page used to let an
attacker re-roll until a challenge suited the attack (for example one a prepared
video already shows). After :data:`MAX_CHALLENGES` loads the session keeps its last
steps: a reload gets a fresh id and expiry but the same movements.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Final

from bioverify.engine.interfaces import new_challenge
from bioverify.sessions import views

#: Distinct challenges one session may be issued (page loads beyond reuse the last).
MAX_CHALLENGES: Final = 5


def issue(
    previous: Mapping[str, Any] | None, *, now: dt.datetime, ttl: dt.timedelta, ends: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the session row stores, what the capture client is shown)."""
    issued = int(previous.get("issued", 1)) if previous else 0
    if previous and issued >= MAX_CHALLENGES and previous.get("steps"):
        steps = [str(s) for s in previous["steps"]]
    else:
        steps = [str(s) for s in new_challenge().steps]
        issued += 1
    challenge_id = str(uuid.uuid4())
    expires = min(now + ttl, ends)
    stored = {
        "id": challenge_id,
        "steps": steps,
        "expiresAt": expires.isoformat(),
        "issued": issued,
    }
    shown = {"id": challenge_id, "steps": steps, "expiresAt": views.rfc3339(expires)}
    return stored, shown
