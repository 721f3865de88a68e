"""The capture SDK's constructor: it closes what it opened when the load fails, and its
clients share one verifying TLS context."""

from __future__ import annotations

import ssl

import httpx
import pytest

from bioverify.capture.sdk import CaptureError, CaptureSession, _tls_context


class _ClosingTransport(httpx.MockTransport):
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_failed_load_closes_the_sessions_connections() -> None:
    transport = _ClosingTransport(
        lambda request: httpx.Response(
            409,
            json={"status": "error", "message": "ended", "errorCodes": [-15], "requestId": "r"},
        )
    )
    with pytest.raises(CaptureError):
        CaptureSession.from_launch_url(
            "http://127.0.0.1:9/capture/cs_x.y", transport=transport, load_retries=0
        )
    assert transport.closed


def test_sessions_share_one_verifying_tls_context() -> None:
    """Each session's client reuses one TLS context (building one reads the whole CA
    bundle), and that context still verifies certificates and host names."""
    context = _tls_context()
    assert context is _tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
