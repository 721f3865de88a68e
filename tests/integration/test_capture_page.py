"""The hosted capture page, driven in Debian's Chromium with a fake camera.

Chromium plays a Y4M video made from a real face photo as its webcam
(``--use-file-for-fake-video-capture``); the page runs against the real app (uvicorn
on loopback, the real engine, a live worker delivering webhooks to a loopback
receiver). Camera permission is given or refused per browser context: without
``--use-fake-ui-for-media-stream``, Chromium answers ``getUserMedia`` with
``NotAllowedError`` unless the context was granted ``camera``.

The browser tests also save the screenshots that ``docs/capture-page.md`` shows.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fake_camera import framed_face, live_video, still_video, write_y4m
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from bioverify.api.page import CONTENT_SECURITY_POLICY
from bioverify.config import Settings
from bioverify.crypto.envelope import open_envelope
from bioverify.crypto.keyring import KeyRing
from bioverify.engine.matcher import load_thresholds
from bioverify.engine.pipeline import LocalEngine
from bioverify.errors import CATALOGUE
from bioverify.worker import Worker
from fixtures_faces import REPO_ROOT, load, registry_image
from support import Creds, Receiver, assert_envelope, serve

CHROMIUM = Path("/usr/bin/chromium")
CREATE = "/v2/verification-session"
DOCS_IMG = REPO_ROOT / "docs" / "img"
STATIC = REPO_ROOT / "src" / "bioverify" / "api" / "static"
OUTCOME = "#view-outcome:not([hidden])"
# Waits, not timings: an active challenge now has 3-4 steps (6-8 s of capture) and the
# server runs the dense landmark model on up to 24 frames, slow on a loaded machine.
PAGE_TIMEOUT_MS = 45_000
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
]
PHONE = {
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
    ),
    "viewport": {"width": 390, "height": 780},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: run "
    "scripts/install-browser.sh (make browser)",
)


@pytest.fixture
def backend() -> str:
    """SQLite only: the page does not depend on the store."""
    return "sqlite"


# ---------------------------------------------------------------- fake cameras


@pytest.fixture(scope="module")
def face_frame() -> np.ndarray:
    """A 640x480 selfie-like frame: the registry's astronaut photo, face centred."""
    photo = load(registry_image("astronaut.png"))
    faces = LocalEngine().detect(photo)
    assert len(faces) == 1
    return framed_face(photo, faces[0].box)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, face_frame: np.ndarray) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cameras")
    return {
        # One person, two takes with different hand-held motion and sensor noise.
        "live-a": write_y4m(folder / "live-a.y4m", live_video(face_frame, seed=1)),
        "live-b": write_y4m(folder / "live-b.y4m", live_video(face_frame, seed=2)),
        # A photo held still in front of the camera.
        "still": write_y4m(folder / "still.y4m", still_video(face_frame)),
    }


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browsers(playwright: Playwright, videos: dict[str, Path]) -> Iterator[Callable[[str], Browser]]:
    """A Chromium per fake camera video, launched on first use, closed at the end."""
    launched: dict[str, Browser] = {}

    def browser(video: str) -> Browser:
        if video not in launched:
            launched[video] = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={videos[video]}"],
            )
        return launched[video]

    yield browser
    for opened in launched.values():
        opened.close()


# ---------------------------------------------------------------- the service


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[[], Any]:
    """The real app with its worker (webhooks delivered), on a real clock."""

    def start() -> Any:
        fast = settings.with_overrides(
            webhook_test_schedule=True, sweep_interval_s=0.1, max_body_bytes=16 * 1024 * 1024
        )
        return serve(make_app(settings=fast, run_worker=True, worker_factory=Worker, clock=_utcnow))

    return start


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create(client: httpx.Client, creds: Creds, **fields: Any) -> dict[str, Any]:
    response = client.post(CREATE, json=fields, headers=creds.headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def session_state(client: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    response = client.get(f"{CREATE}/{session_id}", headers=creds.headers())
    assert response.status_code == 200, response.text
    return dict(response.json())


class PageRun:
    """One browser context on the page, recording what a user would care about."""

    def __init__(self, browser: Browser, *, phone: bool = True, camera: bool = True) -> None:
        options: dict[str, Any] = dict(PHONE) if phone else {}
        self.context = browser.new_context(
            permissions=["camera"] if camera else [], locale="en-US", **options
        )
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.log: list[str] = []
        self.events_posts = 0
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        self.page.on("request", self._request)
        self.page.on(
            "response",
            lambda r: self.log.append(
                f"{r.status} {r.request.method} {r.url.rsplit('/', 2)[-1][:40]}"
            ),
        )
        self.page.on("requestfailed", lambda r: self.log.append(f"failed {r.url}"))

    def _console(self, message: Any) -> None:
        self.log.append(f"{message.type}: {message.text}")
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.problems.append(message.text)

    def _request(self, request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/events"):
            self.events_posts += 1

    def open(self, base_url: str, launch_url: str) -> Page:
        token = launch_url.rsplit("/", 1)[1]
        self.page.goto(f"{base_url}/capture/{token}")
        return self.page

    def outcome(self) -> dict[str, str]:
        try:
            self.page.wait_for_selector(OUTCOME, timeout=PAGE_TIMEOUT_MS)
        except PlaywrightError as exc:
            view = self.page.evaluate("document.body.dataset.view")
            guidance = self.page.inner_text("#guidance")
            raise AssertionError(
                f"no outcome shown; view {view!r}, guidance {guidance!r}, "
                f"console {self.log}, problems {self.problems}"
            ) from exc
        view = self.page.locator("#view-outcome")
        return {
            "status": view.get_attribute("data-status") or "",
            "code": view.get_attribute("data-code") or "",
            "title": self.page.inner_text("#outcome-title"),
            "remedy": self.page.inner_text("#outcome-remedy"),
        }

    def screenshot(self, name: str) -> None:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(DOCS_IMG / name), animations="disabled", scale="css")

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems


# ---------------------------------------------------------------- browser tests


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.timeout(90)
def test_enroll_then_verify_of_the_same_person_succeed(
    live: Callable[[], Any],
    creds: Creds,
    browsers: Callable[[str], Browser],
) -> None:
    with Receiver() as receiver, live() as client:
        base = str(client.base_url).rstrip("/")
        done_url = f"{base}/healthz"
        # ENROLL through the page: success screen, then the redirect.
        enrol = create(
            client,
            creds,
            type="ENROLL",
            customerId="astro-1",
            liveness="passive",
            callback={"url": receiver.url},
            redirectURL=f"{done_url}?from=capture",
        )
        run = PageRun(browsers("live-a"))
        started = time.monotonic()
        page = run.open(base, enrol["launchUrl"])
        page.wait_for_selector("#start:not([disabled])")
        assert page.url == f"{base}/capture/"  # the token left the address bar
        run.page.click("#start")
        outcome = run.outcome()
        run.screenshot("capture-success.png")
        assert outcome["status"] == "SUCCESS"
        # The redirect says what happened (and keeps the URL's own parameters).
        page.wait_for_url(f"{done_url}?**", timeout=10_000)
        query = parse_qs(urlsplit(page.url).query)
        assert query == {
            "from": ["capture"],
            "sessionId": [enrol["sessionId"]],
            "status": ["SUCCESS"],
            "reason": ["success"],
        }
        run.close()
        enrol_seconds = time.monotonic() - started
        state = session_state(client, creds, enrol["sessionId"])
        assert state["status"] == "SUCCESS"
        assert state["customerId"] == "astro-1"
        [hook] = receiver.wait_for(1)
        payload = hook.json()
        assert payload["sessionId"] == enrol["sessionId"]
        assert payload["status"] == "SUCCESS"
        assert payload["result"]["liveness"]["method"] == "passive-signals"
        # The page's integrity indicators reach the integrator, in PrivateID's shape:
        # this is a WebDriver-controlled browser with Chromium's fake camera.
        assert payload["indicators"]["headless"]["webdriver"] is True
        assert payload["indicators"]["virtualCamera"]["suspiciousLabels"] is True
        assert payload["indicators"]["virtualCamera"]["browserCompatibility"] == {
            "browser": "Chrome",
            "supportLevel": "full",
        }
        assert payload["deviceInfo"]["deviceType"] == "mobile"
        assert payload["deviceInfo"]["osName"] == "Android"
        assert payload["deviceInfo"]["screenDimensions"] == {"width": 390, "height": 780}
        # ...and the risk evaluation uses that evidence.
        assert payload["riskEvaluation"]["recommendation"] in {"REVIEW", "DENY"}
        assert {"AUTOMATION", "VIRTUAL_CAMERA"} <= set(payload["riskEvaluation"]["flags"])

        # VERIFY the same person from another take of the camera.
        verify = create(
            client,
            creds,
            type="VERIFY",
            customerId="astro-1",
            liveness="passive",
            callback={"url": receiver.url},
        )
        run = PageRun(browsers("live-b"))
        run.open(base, verify["launchUrl"])
        run.page.click("#start")
        outcome = run.outcome()
        assert outcome["status"] == "SUCCESS"
        assert run.page.is_hidden("#continue")  # no redirectURL: the user is told to close
        run.close()
        state = session_state(client, creds, verify["sessionId"])
        assert state["status"] == "SUCCESS"
        hook = receiver.wait_for(2)[1]
        payload = hook.json()
        assert payload["sessionId"] == verify["sessionId"]
        assert payload["status"] == "SUCCESS"
        assert payload["result"]["matchScore"] >= load_thresholds().verify
    assert enrol_seconds < 30


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(120)
def test_still_photo_under_active_liveness_ends_spoof(
    live: Callable[[], Any],
    creds: Creds,
    browsers: Callable[[str], Browser],
) -> None:
    with Receiver() as receiver, live() as client:
        base = str(client.base_url).rstrip("/")
        made = create(
            client, creds, type="ENROLL", liveness="active", callback={"url": receiver.url}
        )
        run = PageRun(browsers("still"))
        page = run.open(base, made["launchUrl"])
        page.wait_for_selector("#intro-active:not([hidden])")
        page.click("#start")
        # The page walks the user through the challenge's movements in order.
        page.wait_for_selector("#guidance[data-step]", timeout=PAGE_TIMEOUT_MS)
        step = page.get_attribute("#guidance", "data-step")
        assert step in {"TURN_LEFT", "TURN_RIGHT", "NOD", "MOVE_CLOSER", "BLINK", "SMILE"}
        assert page.inner_text("#steps [aria-current=step]")
        run.screenshot("capture-guidance.png")
        outcome = run.outcome()
        run.close()
        assert outcome == {
            "status": "FAILED",
            "code": "1",
            "title": CATALOGUE[1].message,
            "remedy": CATALOGUE[1].remedy,
        }
        state = session_state(client, creds, made["sessionId"])
        assert state["status"] == "FAILED"
        assert state["errorCodes"] == [1]
        payload = receiver.wait_for(1)[0].json()
        assert payload["status"] == "FAILED"
        assert payload["errorCodes"] == [1]
        assert payload["result"]["liveness"]["method"] == "active-challenge"


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(60)
def test_denied_camera_ends_camera_fail_with_its_remedy(
    live: Callable[[], Any],
    creds: Creds,
    browsers: Callable[[str], Browser],
) -> None:
    with Receiver() as receiver, live() as client:
        base = str(client.base_url).rstrip("/")
        made = create(
            client, creds, type="ENROLL", liveness="passive", callback={"url": receiver.url}
        )
        run = PageRun(browsers("live-a"), camera=False)
        run.open(base, made["launchUrl"])
        run.page.click("#start")
        outcome = run.outcome()
        run.screenshot("capture-failure.png")
        assert outcome == {
            "status": "FAILED",
            "code": "-7",
            "title": CATALOGUE[-7].message,
            "remedy": CATALOGUE[-7].remedy,
        }
        # A fatal code with a transient remedy ends the session: no retry in this one.
        assert run.page.is_hidden("#retry")
        run.close()
        state = session_state(client, creds, made["sessionId"])
        assert state["status"] == "FAILED"
        assert state["errorCodes"] == [-7]
        payload = receiver.wait_for(1)[0].json()
        assert payload["errorCodes"] == [-7]
        assert payload["indicators"]["headless"]["webdriver"] is True
        assert payload["riskEvaluation"]["recommendation"] == "DENY"


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(60)
def test_desktop_browser_is_refused_when_desktop_is_disabled(
    live: Callable[[], Any],
    creds: Creds,
    browsers: Callable[[str], Browser],
) -> None:
    with Receiver() as receiver, live() as client:
        base = str(client.base_url).rstrip("/")
        made = create(
            client,
            creds,
            type="ENROLL",
            liveness="passive",
            enableDesktop=False,
            callback={"url": receiver.url},
        )
        run = PageRun(browsers("live-a"), phone=False)
        run.open(base, made["launchUrl"])
        outcome = run.outcome()
        run.close()
        assert outcome == {
            "status": "FAILED",
            "code": "-5",
            "title": CATALOGUE[-5].message,
            "remedy": CATALOGUE[-5].remedy,
        }
        state = session_state(client, creds, made["sessionId"])
        assert state["status"] == "FAILED"
        assert state["errorCodes"] == [-5]
        assert receiver.wait_for(1)[0].json()["errorCodes"] == [-5]


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(60)
def test_recovered_load_and_failed_module_are_reported_once_in_french(
    live: Callable[[], Any],
    creds: Creds,
    browsers: Callable[[str], Browser],
) -> None:
    french = json.loads((STATIC / "i18n" / "fr.json").read_text(encoding="utf-8"))
    with live() as client:
        base = str(client.base_url).rstrip("/")
        made = create(client, creds, type="ENROLL", liveness="passive", locale="fr-FR")
        token = made["launchUrl"].rsplit("/", 1)[1]
        run = PageRun(browsers("live-a"))
        failed_loads: list[str] = []

        def flaky_load(route: Any) -> None:
            if not failed_loads:
                failed_loads.append(route.request.url)
                route.fulfill(
                    status=503,
                    content_type="application/json",
                    body=json.dumps(
                        {"status": "error", "message": "busy", "errorCodes": [], "requestId": "x"}
                    ),
                )
            else:
                route.continue_()

        run.page.route(f"**{CREATE}/{token}", flaky_load)
        run.page.route("**/capture-assets/js/flow.js*", lambda route: route.abort())
        run.open(base, made["launchUrl"])
        outcome = run.outcome()
        assert outcome["code"] == "-20"
        assert outcome["remedy"] == french["remedy.-20"]
        assert run.page.get_attribute("html", "lang") == "fr"
        assert run.page.is_visible("#retry")
        posts_before_retry = run.events_posts
        run.page.click("#retry")  # the module fails again: -20 is not sent twice
        run.page.wait_for_selector(f"{OUTCOME}[data-code='-20']")
        run.page.wait_for_selector("#retry:not([hidden])")
        assert run.events_posts == posts_before_retry == 2
        run.close()
        state = session_state(client, creds, made["sessionId"])
        assert state["status"] == "IN_PROGRESS"  # diagnostics never end a session
        assert state["errorCodes"] == [-24, -20]
        assert failed_loads


@pytest.mark.browser
@needs_chromium
def test_webcrypto_envelope_opens_with_the_server_key(
    app_client: httpx.Client,
    keyring: KeyRing,
    browsers: Callable[[str], Browser],
) -> None:
    run = PageRun(browsers("live-a"))
    run.page.goto(f"{str(app_client.base_url).rstrip('/')}/capture/")
    document = app_client.get("/public-key").json()
    frame = "A" * 300_000  # a frame-sized field: base64 of large buffers in chunks
    plaintexts = [
        {"events": [{"code": -24, "detail": "réseau ✓ 日本"}]},
        {"frames": [frame], "frameTimes": [0.0], "challengeId": "c-1"},
    ]
    for fields in plaintexts:
        envelope = run.page.evaluate(
            """async ([doc, fields]) => {
                const { Sealer } = await import('/capture-assets/js/envelope.js');
                const sealer = await Sealer.create(doc, 'session-1');
                return sealer.seal('capture', fields);
            }""",
            [document, fields],
        )
        assert set(envelope) == {
            "encryptedKey",
            "encryptedMessage",
            "iv",
            "gcmTag",
            "gcmAad",
            "kid",
        }
        opened = open_envelope(envelope, keyring=keyring, session_id="session-1", route="capture")
        assert {k: opened[k] for k in fields} == fields
        assert isinstance(opened["timestamp"], int)
        assert abs(opened["timestamp"] - time.time()) < 60
        assert len(str(opened["nonce"])) >= 22
        with pytest.raises(Exception, match="gcmAad"):
            open_envelope(envelope, keyring=keyring, session_id="session-2", route="capture")
    run.close()


# ---------------------------------------------------------------- without a browser


def test_page_is_served_with_strict_security_headers_and_no_token(app_client: httpx.Client) -> None:
    token = "A" * 20 + ".secret-part"
    response = app_client.get(f"/capture/{token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert token not in response.text
    assert "<script>" not in response.text and " style=" not in response.text
    for asset, kind in (
        ("js/boot.js", "text/javascript"),
        ("capture.css", "text/css"),
        ("i18n/fr.json", "application/json"),
    ):
        served = app_client.get(f"/capture-assets/{asset}")
        assert served.status_code == 200, asset
        assert served.headers["content-type"].startswith(kind)
        assert served.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert_envelope(app_client.get("/capture-assets/../config.py"), 404, [])
    assert_envelope(app_client.get("/capture-assets/capture.html"), 404, [])


def test_catalogue_json_is_the_error_catalogue(app_client: httpx.Client) -> None:
    served = app_client.get("/capture-assets/catalogue.json").json()
    assert set(served["codes"]) == {str(code) for code in CATALOGUE}
    for code, row in CATALOGUE.items():
        entry = served["codes"][str(code)]
        assert entry == {
            "name": row.name,
            "kind": str(row.kind),
            "retry": str(row.retry),
            "message": row.message,
            "remedy": row.remedy,
        }


def test_french_strings_cover_english_and_every_catalogue_code() -> None:
    english = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
    french = json.loads((STATIC / "i18n" / "fr.json").read_text(encoding="utf-8"))
    assert set(english) <= set(french)
    for code in CATALOGUE:
        assert french.get(f"message.{code}") and french.get(f"remedy.{code}"), code
    # English remedies are never restated: they come from the catalogue.
    assert not [key for key in english if key.startswith(("remedy.", "message."))]
