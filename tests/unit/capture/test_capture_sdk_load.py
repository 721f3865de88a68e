"""The capture SDK's constructor closes what it opened when the load fails."""

from __future__ import annotations

import httpx
import pytest

from bioverify.capture.sdk import CaptureError, CaptureSession


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
