"""Liveness through the API: a bounded number of challenges per session, and no
start without the dense landmark model (-20, readiness fails, no fallback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from test_capture_protocol import Capture, open_session

from bioverify.config import Settings
from bioverify.sessions.challenges import MAX_CHALLENGES
from support import Creds, assert_envelope, serve


def test_reloading_the_page_stops_re_rolling_the_challenge(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = open_session(app_client, creds, liveness="active")
    capture = Capture(app_client, str(made["launchUrl"]))
    loads = [capture.load().json()["challenge"] for _ in range(MAX_CHALLENGES + 3)]
    assert len({c["id"] for c in loads}) == len(loads)  # every load is a fresh challenge id
    last = loads[MAX_CHALLENGES - 1]["steps"]
    assert all(c["steps"] == last for c in loads[MAX_CHALLENGES:])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_missing_landmark_model_fails_readiness_with_minus_20(
    settings: Settings,
    make_app: Callable[..., FastAPI],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BIOVERIFY_LANDMARKER", str(tmp_path / "face_landmarker.task"))
    broken = settings.with_overrides(engine_workers=0)
    with serve(make_app(settings=broken, bio_engine=None)) as client:
        body = assert_envelope(client.get("/readyz"), 503, [-20])
        assert "models" in body["message"]
