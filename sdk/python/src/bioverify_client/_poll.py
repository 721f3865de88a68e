"""How ``wait_for_result`` spaces its polls: backing off, bounded by a deadline."""

from __future__ import annotations

from bioverify_client import retry
from bioverify_client.errors import WaitTimeout

#: Each wait is this much longer than the last, up to ``MAX_POLL_S``.
GROWTH = 1.5
MAX_POLL_S = 15.0


class PollSchedule:
    """The waits between polls of one session; raises :class:`WaitTimeout` at the deadline."""

    def __init__(self, session_id: str, timeout: float, poll: float) -> None:
        if timeout < 0 or poll <= 0:
            raise ValueError("timeout must be >= 0 and poll > 0")
        self.session_id = session_id
        self.timeout = timeout
        self._deadline = retry.monotonic() + timeout
        self._next = poll

    def next_delay(self) -> float:
        """Seconds until the next poll (never past the deadline)."""
        left = self._deadline - retry.monotonic()
        if left <= 0:
            raise WaitTimeout(
                f"Session {self.session_id} did not finish within {self.timeout:g} s",
                session_id=self.session_id,
            )
        delay = min(self._next, left)
        self._next = min(self._next * GROWTH, MAX_POLL_S)
        return delay


__all__ = ["GROWTH", "MAX_POLL_S", "PollSchedule"]
