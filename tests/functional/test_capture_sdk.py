"""The capture SDK and ``bioverify capture`` against the real service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from typer.testing import CliRunner

from bioverify.capture.camera import capture_from_camera
from bioverify.capture.sdk import CaptureSession, split_launch_url
from bioverify.cli.main import app as cli
from support import Creds

CREATE = "/v2/verification-session"


def launch(client: httpx.Client, creds: Creds, **fields: Any) -> tuple[str, str]:
    made = client.post(
        CREATE, json={"type": "ENROLL", "liveness": "passive", **fields}, headers=creds.headers()
    ).json()
    url = str(made["launchUrl"]).replace("http://testserver", str(client.base_url))
    return url, str(made["sessionId"])


def faceless_video(path: Path, frames: int = 12) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    rng = np.random.default_rng(3)
    for _ in range(frames):
        writer.write(np.clip(rng.normal(120, 20, (240, 320, 3)), 0, 255).astype(np.uint8))
    writer.release()
    return path


def test_launch_url_splits_into_base_and_token() -> None:
    assert split_launch_url("https://id.example/capture/cs_abc.def") == (
        "https://id.example",
        "cs_abc.def",
    )
    assert split_launch_url("https://x.example/bv/capture/cs_1.2")[0] == "https://x.example/bv"


def test_camera_that_does_not_open_reports_camera_fail(
    app_client: httpx.Client, creds: Creds, tmp_path: Path
) -> None:
    url, session_id = launch(app_client, creds)
    with CaptureSession.from_launch_url(url) as sdk:
        outcome = capture_from_camera(
            sdk, str(tmp_path / "no-such-camera.avi"), prompt=lambda _m: None
        )
    assert outcome.status == "FAILED"
    assert outcome.error_codes == (-7,)
    assert "camera" in outcome.remedy.lower()
    got = app_client.get(f"{CREATE}/{session_id}", headers=creds.headers()).json()
    assert got["errorCodes"] == [-7]


def test_camera_burst_without_a_face_is_another_attempt(
    app_client: httpx.Client, creds: Creds, tmp_path: Path
) -> None:
    url, _ = launch(app_client, creds)
    prompts: list[str] = []
    with CaptureSession.from_launch_url(url) as sdk:
        outcome = capture_from_camera(
            sdk, str(faceless_video(tmp_path / "v.avi")), prompt=prompts.append
        )
    assert outcome.status == "IN_PROGRESS"
    assert outcome.error_codes == (-22,)
    assert outcome.attempts_left == 2
    assert prompts  # the user was told what to do


def test_cli_capture_from_images(app_client: httpx.Client, creds: Creds, tmp_path: Path) -> None:
    url, _ = launch(app_client, creds)
    image = tmp_path / "frame.jpg"
    cv2.imwrite(str(image), np.full((240, 320, 3), 128, np.uint8))
    result = CliRunner().invoke(cli, ["capture", url, "--image", str(image), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "IN_PROGRESS"
    assert body["errorCodes"] == [-22]
    assert body["remedy"]


def test_cli_capture_needs_exactly_one_source(app_client: httpx.Client, creds: Creds) -> None:
    url, _ = launch(app_client, creds)
    result = CliRunner().invoke(cli, ["capture", url])
    assert result.exit_code != 0
