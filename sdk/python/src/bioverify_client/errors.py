"""The SDK's exceptions, classified permanent or transient from the server's catalogue.

Exception tree::

    BioverifyError                   base of everything the SDK raises on purpose
    ├── PermanentError               do not retry: credentials, bad request, unknown
    │                                object, or a permanent session code (SPOOF, -9, ...)
    ├── TransientError               retrying can help: 429/5xx/timeouts/connection errors
    │   │                            (the SDK already repeated the request), or a
    │   │                            transient session code (-7, -8, ...: new session)
    │   └── WaitTimeout              ``wait_for_result`` ran out of time (also a TimeoutError)
    └── VerificationError            a webhook or receipt does not check out (fail closed)
        ├── WebhookVerificationError
        └── ReceiptVerificationError

This ``BioverifyError`` deliberately does NOT subclass the server's
``bioverify.errors.BioverifyError``: the server maps every subclass of its base
to an HTTP answer with that class's status, so a service that calls another
bioverify through this SDK would otherwise answer its own caller with the upstream
status. The SDK takes the data (codes, retry class, remedy) from its copy of the
catalogue (:mod:`bioverify_client.catalogue`, generated from the server's), never
the class.
"""

from __future__ import annotations

from collections.abc import Sequence

from bioverify_client import catalogue

#: HTTP statuses where repeating the very same request may succeed.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class BioverifyError(Exception):
    """Base of the SDK's errors; carries data, not formatted strings.

    ``status`` is ``None`` when no HTTP answer arrived (connection error, timeout).
    ``code`` is the catalogue row that decided the class, if any; ``remedy`` its
    user-facing remedy text.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_codes: Sequence[int] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
        session_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_codes = tuple(error_codes)
        self.request_id = request_id
        self.retry_after = retry_after
        self.session_id = session_id
        self.code: catalogue.ErrorCode | None = deciding_code(self.error_codes)

    @property
    def remedy(self) -> str | None:
        """The catalogue's remedy for the deciding code, if a code decided."""
        return self.code.remedy if self.code is not None else None

    @property
    def retry_class(self) -> catalogue.RetryClass:
        """PERMANENT or TRANSIENT, as this error's class says."""
        if isinstance(self, TransientError):
            return catalogue.RetryClass.TRANSIENT
        return catalogue.RetryClass.PERMANENT

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, "
            f"error_codes={list(self.error_codes)!r}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class PermanentError(BioverifyError):
    """Repeating the request (or the session) cannot change the answer."""


class TransientError(BioverifyError):
    """Trying again may succeed.

    ``request_retryable`` is True when the same request may succeed later (the
    SDK has already repeated it up to its budget); False when the transience is
    the session's (a transient session code: start a new session).
    """

    @property
    def request_retryable(self) -> bool:
        return self.code is None


class WaitTimeout(TransientError, TimeoutError):
    """The session did not finish within ``wait_for_result``'s timeout."""


class VerificationError(BioverifyError):
    """Something signed by the service did not verify. Never retry with looser checks."""


class WebhookVerificationError(VerificationError):
    """A received webhook's headers, timestamp or signature do not check out."""


class ReceiptVerificationError(VerificationError):
    """An audit receipt does not prove its entry under a checkpoint the service signed."""


def deciding_code(codes: Sequence[int]) -> catalogue.ErrorCode | None:
    """The catalogue row that decides: the first fatal code, else the last code.

    The service ends a failed session on the same rule (``SessionState.outcome_code``),
    so an error envelope and a finished session classify alike. Unknown codes (a
    newer server) are skipped: the HTTP status decides then.
    """
    rows = [catalogue.lookup(c) for c in codes if catalogue.is_known(c)]
    for row in rows:
        if row.is_fatal:
            return row
    return rows[-1] if rows else None


def error_class(status: int | None, codes: Sequence[int]) -> type[BioverifyError]:
    """PermanentError or TransientError: a catalogue code decides, else the HTTP status."""
    row = deciding_code(codes)
    if row is not None:
        return PermanentError if row.is_permanent else TransientError
    if status is None or status in RETRYABLE_STATUSES:
        return TransientError
    return PermanentError


__all__ = [
    "RETRYABLE_STATUSES",
    "BioverifyError",
    "PermanentError",
    "ReceiptVerificationError",
    "TransientError",
    "VerificationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "deciding_code",
    "error_class",
]
