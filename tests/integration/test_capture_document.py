"""The hosted page's document step, in Debian's Chromium with a fake camera.

The face step is done first with the capture SDK (the face's own browser tests are in
test_capture_page.py); the page, opened on the session, then goes straight to the
document step with a fake camera showing a generated passport: a real face photo
printed as its portrait, valid MRZ lines printed in OCR-B, photographed in software.
The test saves the screenshot that docs/capture-page.md shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fake_camera import HEIGHT, WIDTH, write_y4m
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright
from test_capture_page import (
    CHROMIUM_ARGS,
    OUTCOME,
    PAGE_TIMEOUT_MS,
    PageRun,
    create,
    needs_chromium,
    session_state,
)

from bioverify.capture.sdk import CaptureSession
from bioverify.config import Settings
from bioverify.documents.conditions import photograph
from bioverify.documents.generate import OCRB_FONT, Holder, render_mrz_document
from bioverify.documents.mrz_fields import MrzFormat
from bioverify.engine.pipeline import LocalEngine
from bioverify.worker import Worker
from fixtures_faces import load, registry_image
from support import Creds, serve

pytestmark = [pytest.mark.browser, pytest.mark.models, needs_chromium]

#: The public-domain astronaut photo (as in the face page's screenshots) is both the
#: selfie and the printed portrait: the docs' screenshot shows no other person.
ASTRONAUT = "astronaut.png"


@pytest.fixture
def backend() -> str:
    """SQLite only: the page does not depend on the store."""
    return "sqlite"


@pytest.fixture(scope="module")
def holder() -> Holder:
    return Holder(
        surname="Eriksson",
        given_names="Anna Maria",
        document_number="L898902C3",
        birth_date=date(1974, 8, 12),
        expiry_date=dt.datetime.now(UTC).date() + timedelta(days=5 * 365),
    )


def passport_photo() -> np.ndarray:
    """The astronaut cropped as passport photos are: the face about half the photo's height
    (the uncropped photo prints a face too small to compare at 640 px)."""
    photo = load(registry_image(ASTRONAUT))
    [face] = LocalEngine().detect(photo)
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    top, bottom = int(max(0, cy - 0.95 * h)), int(min(photo.shape[0], cy + 0.95 * h))
    left, right = int(max(0, cx - 0.8 * w)), int(min(photo.shape[1], cx + 0.8 * w))
    return np.ascontiguousarray(photo[top:bottom, left:right])


@pytest.fixture(scope="module")
def document_camera(tmp_path_factory: pytest.TempPathFactory, holder: Holder) -> Path:
    """A passport lying on a desk in front of the camera, with sensor noise."""
    if not OCRB_FONT.is_file():
        pytest.skip("fonts-ocr-b is not installed: run scripts/install-documents.sh")
    page = render_mrz_document(MrzFormat.TD3, holder, passport_photo()).image
    frame = cv2.resize(photograph(page, seed=3), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(5)
    frames = [
        np.clip(frame + rng.normal(0.0, 1.5, frame.shape), 0, 255).astype(np.uint8)
        for _ in range(30)
    ]
    return write_y4m(tmp_path_factory.mktemp("cameras") / "passport.y4m", frames)


@pytest.fixture(scope="module")
def browser(document_camera: Path) -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={document_camera}"],
        )
        yield launched
        launched.close()


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[[], Any]:
    def start() -> Any:
        fast = settings.with_overrides(webhook_test_schedule=True, max_body_bytes=16 * 2**20)
        return serve(
            make_app(
                settings=fast,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )

    return start


@pytest.mark.timeout(120)
def test_document_step_reads_the_passport_in_the_outline(
    live: Callable[[], Any], creds: Creds, browser: Browser, holder: Holder
) -> None:
    with live() as client:
        base = str(client.base_url).rstrip("/")
        made = create(
            client,
            creds,
            type="ENROLL",
            customerId="anna-page",
            liveness="passive",
            requirements=["face", "identity_document"],
        )
        launch = str(made["launchUrl"]).replace("http://testserver", base)
        with CaptureSession.from_launch_url(launch) as sdk:
            face = sdk.submit([registry_image(ASTRONAUT)])
        assert (face.status, face.next_step) == ("IN_PROGRESS", "document")

        run = PageRun(browser)
        page = run.open(base, launch)
        page.wait_for_selector("#start:not([disabled])")
        # The face has passed: the intro says what comes now.
        assert page.inner_text("#intro-title") == "Now your identity document"
        page.click("#start")
        page.wait_for_selector("#view-document:not([hidden])", timeout=PAGE_TIMEOUT_MS)
        assert page.get_attribute("#view-document", "data-side") == "front"
        # The outline and live hints are up before the photo is taken.
        page.wait_for_selector('#doc-guidance[data-key^="doc."]', timeout=PAGE_TIMEOUT_MS)
        run.screenshot("capture-document.png")
        page.wait_for_selector(OUTCOME, timeout=PAGE_TIMEOUT_MS)
        outcome = run.outcome()
        assert outcome["status"] == "SUCCESS", (outcome, run.log)
        state = session_state(client, creds, str(made["sessionId"]))
        assert state["status"] == "SUCCESS"
        info = state["identityInformation"]
        assert info["documentNumber"] == holder.document_number
        assert info["checks"] == {"checkDigits": True, "expired": False, "portraitMatch": True}
        # Only the document route carried the image; the page never saw the fields.
        assert holder.document_number not in page.content()
        run.close()
