"""Capture SDK (device side): load a session, encrypt, report codes, submit frames.

It talks to the capture routes with the capture token from ``launchUrl`` and
imports nothing from the server but :mod:`bioverify.errors`. Diagnostics are
deduplicated per session here as well as on the server, so each code is sent at
most once.
"""

from __future__ import annotations

import base64
import functools
import random
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import numpy.typing as npt
import pybase64

from bioverify import errors
from bioverify.capture.envelope import fresh_nonce, seal

Frame = bytes | Path | str | npt.NDArray[np.uint8]

_RETRY_STATUSES = {429, 500, 502, 503, 504}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process: building it reads
    the whole CA bundle (~35 ms of CPU), which each session's client paid again."""
    return httpx.create_ssl_context()


class CaptureError(errors.BioverifyError):
    """A capture call failed; ``codes`` and ``http_status`` say how."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        codes: Sequence[int] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, codes=codes, retry_after=retry_after)
        self.http_status = status


_DIAGNOSTIC_DETAIL = {
    errors.FACE_SCAN_ERROR: "no usable face in the attempt",
    errors.DOCUMENT_SCAN_ERROR: "no readable document in the attempt",
}


@dataclass(frozen=True)
class CaptureOutcome:
    """Where the session stands after a call."""

    status: str
    session_id: str
    error_codes: tuple[int, ...] = ()
    attempts_left: int | None = None
    message: str = ""
    http_status: int = 200
    #: What the session needs next while IN_PROGRESS: ``document`` (after the face of
    #: an identity_document session) or ``back`` (a card's back after its front).
    next_step: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in {"SUCCESS", "FAILED"}

    @property
    def remedy(self) -> str:
        """What the user should do, from the catalogue, for the deciding code."""
        for code in reversed(self.error_codes):
            if code in errors.CATALOGUE:
                return errors.CATALOGUE[code].remedy
        return ""


def split_launch_url(url: str) -> tuple[str, str]:
    """``(service base URL, capture token)`` of a ``launchUrl``."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    marker = "/capture/"
    if marker not in path or not parts.scheme or not parts.netloc:
        raise ValueError("not a bioverify launchUrl (expected .../capture/<token>)")
    prefix, _, token = path.rpartition(marker)
    return f"{parts.scheme}://{parts.netloc}{prefix}", token


def encode_frame(frame: Frame) -> bytes:
    """JPEG/PNG bytes of a frame given as bytes, a file path or a BGR/grey array."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, (str, Path)):
        return Path(frame).read_bytes()
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return bytes(buffer.tobytes())


@dataclass
class CaptureSession:
    """One session as the capture device sees it."""

    base_url: str
    token: str
    http: httpx.Client
    user_agent: str = "bioverify-capture-sdk/1 (Mobile)"
    device_info: Mapping[str, Any] | None = None
    #: Integrity indicators in PrivateID's shape (``headless``, ``virtualCamera``,
    #: ``browserAnomalies``: boolean flags) that the embedding app measured.
    indicators: Mapping[str, Any] | None = None
    load_retries: int = 4
    sleep: Callable[[float], None] = time.sleep
    session: dict[str, Any] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    _key: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_launch_url(
        cls,
        url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        user_agent: str | None = None,
        device_info: Mapping[str, Any] | None = None,
        indicators: Mapping[str, Any] | None = None,
        device_id: str = "",
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        load_retries: int = 4,
    ) -> CaptureSession:
        """Load the session behind ``url`` (retrying; reports -24 once if it had to)."""
        base, token = split_launch_url(url)
        headers = {"user-agent": user_agent or cls.user_agent}
        if device_id:
            headers["x-device-info"] = device_id
        http = httpx.Client(
            base_url=base,
            transport=transport,
            timeout=timeout,
            headers=headers,
            verify=_tls_context(),
        )
        capture = cls(
            base_url=base,
            token=token,
            http=http,
            device_info=device_info,
            indicators=indicators,
            sleep=sleep,
            load_retries=load_retries,
        )
        if user_agent:
            capture.user_agent = user_agent
        try:
            capture.load()
        except BaseException:
            # The caller never gets the session to close: close its connections here
            # (a failed load left the client's sockets to the garbage collector).
            capture.close()
            raise
        return capture

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CaptureSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    @staticmethod
    def _error(response: httpx.Response) -> CaptureError:
        try:
            body = response.json()
            message = str(body.get("message", response.reason_phrase))
            codes = [int(c) for c in body.get("errorCodes", [])]
        except (ValueError, AttributeError, TypeError):
            message, codes = response.reason_phrase or "request failed", []
        retry_after = response.headers.get("retry-after")
        return CaptureError(
            message,
            status=response.status_code,
            codes=codes,
            retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
        )

    def load(self) -> dict[str, Any]:
        """Load the session; transient failures are retried with jittered backoff."""
        failures = 0
        while True:
            try:
                response = self.http.get(f"/v2/verification-session/{self.token}")
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                break
            if response is not None and response.status_code not in _RETRY_STATUSES:
                raise self._error(response)
            failures += 1
            if failures > self.load_retries:
                if response is None:
                    raise CaptureError("The session could not be loaded: network error", status=0)
                raise self._error(response)
            self.sleep(min(8.0, 0.25 * 2**failures) * (0.5 + random.random() / 2))  # noqa: S311
        self.session = dict(response.json())
        if failures:
            # The session loaded only after retries: tell the backend once (-24).
            self.report(errors.SESSION_LOAD_FAILED, "loaded after retries")
        return self.session

    @property
    def session_id(self) -> str:
        return str(self.session["sessionId"])

    def public_key(self) -> dict[str, str]:
        if not self._key:
            response = self.http.get("/public-key")
            if response.status_code != 200:
                raise self._error(response)
            self._key = dict(response.json())
        return self._key

    def _post(self, route: str, plaintext: dict[str, Any]) -> httpx.Response:
        key = self.public_key()
        envelope = seal(
            plaintext,
            public_key_pem=key["publicKey"],
            kid=key["kid"],
            session_id=self.session_id,
            route=route,
        )
        return self.http.post(f"/v2/verification-session/{self.token}/{route}", json=envelope)

    def _base_plaintext(self) -> dict[str, Any]:
        plaintext: dict[str, Any] = {"nonce": fresh_nonce(), "timestamp": int(time.time())}
        if self.device_info is not None:
            plaintext["deviceInfo"] = dict(self.device_info)
        if self.indicators is not None:
            plaintext["indicators"] = dict(self.indicators)
        return plaintext

    def report(self, code: int, detail: str | None = None) -> CaptureOutcome | None:
        """Report a client-side code; a diagnostic already reported is not sent again."""
        row = errors.lookup(code)
        if row.kind is errors.Kind.DIAGNOSTIC and row.code in self.reported:
            return None
        event: dict[str, Any] = {"code": row.code}
        if detail:
            event["detail"] = detail[:512]
        response = self._post("events", {**self._base_plaintext(), "events": [event]})
        if response.status_code != 200:
            raise self._error(response)
        self.reported.add(row.code)
        body = response.json()
        return CaptureOutcome(
            status=body["status"],
            session_id=body["sessionId"],
            error_codes=tuple(body.get("errorCodes", ())),
            attempts_left=body.get("attemptsLeft"),
        )

    def submit(
        self, frames: Iterable[Frame], *, frame_times: Sequence[float] | None = None
    ) -> CaptureOutcome:
        """Encrypt and post frames; the outcome says SUCCESS, FAILED or try again."""
        encoded = [pybase64.b64encode(encode_frame(f)).decode("ascii") for f in frames]
        plaintext = {**self._base_plaintext(), "frames": encoded}
        if frame_times is not None:
            plaintext["frameTimes"] = list(frame_times)
        challenge = self.session.get("challenge")
        if challenge:
            plaintext["challengeId"] = challenge["id"]
        return self._outcome(self._post("capture", plaintext), errors.FACE_SCAN_ERROR)

    def submit_document(self, image: Frame, *, side: str = "front") -> CaptureOutcome:
        """Encrypt and post one photographed side of an identity document."""
        if side not in {"front", "back"}:
            raise ValueError('side must be "front" or "back"')
        plaintext = {
            "nonce": fresh_nonce(),
            "timestamp": int(time.time()),
            "side": side,
            "image": base64.b64encode(encode_frame(image)).decode("ascii"),
        }
        return self._outcome(self._post("document", plaintext), errors.DOCUMENT_SCAN_ERROR)

    def _outcome(self, response: httpx.Response, diagnostic: int) -> CaptureOutcome:
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code == 200:
            outcome = CaptureOutcome(
                status=body["status"],
                session_id=body["sessionId"],
                error_codes=tuple(body.get("errorCodes", ())),
                attempts_left=body.get("attemptsLeft"),
                message=str(body.get("message", "")),
                next_step=body.get("next"),
            )
            if diagnostic in outcome.error_codes and not outcome.finished:
                # Observability for the backend: sent once per session however many
                # attempts find nothing usable.
                self.report(diagnostic, _DIAGNOSTIC_DETAIL[diagnostic])
            return outcome
        if response.status_code in {401, 403, 409, 410, 422}:
            # The session ended (or was already over): a final outcome, not an exception.
            return CaptureOutcome(
                status="FAILED",
                session_id=self.session_id,
                error_codes=tuple(body.get("errorCodes", ())),
                message=str(body.get("message", "")),
                http_status=response.status_code,
            )
        raise self._error(response)


__all__ = ["CaptureError", "CaptureOutcome", "CaptureSession", "encode_frame", "split_launch_url"]
