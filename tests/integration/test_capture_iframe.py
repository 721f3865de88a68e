"""The hosted page inside an integrator's iframe, in Debian's Chromium (issue 14 item 1).

An integrator page is served on another loopback origin (``127.0.0.2``, its own port:
a different origin from the service on ``127.0.0.1``). It frames ``launchUrl`` the
way PrivateID integrations do (``allow="camera; microphone"``, ``sandbox="allow-same-
origin allow-scripts allow-forms allow-popups"``) and listens for ``postMessage``.
The client is given that origin with ``bioverify clients update --frame-ancestor``;
a client without frame ancestors (or with another origin) still cannot be framed.
"""

# The browser fixtures are imported by name from the page tests, so tests shadow them.
# ruff: noqa: F811

from __future__ import annotations

import html
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Frame, Page
from test_capture_page import (  # noqa: F401 - fixtures
    CREATE,
    DOCS_IMG,
    PAGE_TIMEOUT_MS,
    PHONE,
    browsers,
    create,
    face_frame,
    live,
    needs_chromium,
    playwright,
    session_state,
    videos,
)
from typer.testing import CliRunner

from bioverify.cli.main import app as cli
from bioverify.config import Settings
from support import Creds

SANDBOX = "allow-same-origin allow-scripts allow-forms allow-popups"
OUTCOME = "#view-outcome:not([hidden])"


@pytest.fixture
def backend() -> str:
    """SQLite only: framing does not depend on the store."""
    return "sqlite"


class IntegratorSite:
    """The integrator's own web page, on 127.0.0.2 (another origin than the service)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.pages.get(urlsplit(self.path).path, "<!doctype html><p>done</p>")
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.2:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> IntegratorSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def embed(self, name: str, launch_url: str) -> str:
        """A page that frames ``launch_url`` and records the messages it gets."""
        self.pages[f"/{name}"] = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Bank</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: sans-serif; margin: 0; padding: 10px; background: #e8edf5; }}
h1 {{ font-size: 18px; margin: 4px 0 10px; color: #1b2a49; }}
iframe {{ width: 390px; height: 660px; border: 1px solid #9aa7bd; border-radius: 12px;
  background: #fff; }}
</style></head>
<body><h1>Acme Bank &middot; confirm it is you</h1>
<iframe id="bv" src="{html.escape(launch_url)}" allow="camera; microphone"
  sandbox="{SANDBOX}" title="Identity check"></iframe>
<script>
window.received = [];
window.addEventListener('message', (event) => {{
  window.received.push({{ origin: event.origin, data: event.data }});
}});
</script></body></html>"""
        return f"{self.origin}/{name}"


@pytest.fixture
def site() -> Iterator[IntegratorSite]:
    with IntegratorSite() as integrator:
        yield integrator


def frame_ancestors(settings: Settings, client_id: str, *args: str) -> None:
    """``bioverify clients update CLIENT_ID ...`` against the test's store."""
    env = {
        "BIOVERIFY_DATA_DIR": str(settings.data_dir),
        "BIOVERIFY_DATABASE_URL": settings.resolved_database_url,
    }
    result = CliRunner().invoke(cli, ["clients", "update", client_id, *args, "--json"], env=env)
    assert result.exit_code == 0, result.output


class EmbeddedRun:
    """One browser context on the integrator's page."""

    def __init__(self, browser: Browser) -> None:
        options: dict[str, Any] = {**PHONE, "viewport": {"width": 412, "height": 720}}
        self.context = browser.new_context(permissions=["camera"], locale="en-US", **options)
        self.page: Page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))

    def open(self, url: str) -> Page:
        self.page.goto(url)
        return self.page

    def frame(self) -> Frame:
        frames = [f for f in self.page.frames if f is not self.page.main_frame]
        assert len(frames) == 1, [f.url for f in self.page.frames]
        return frames[0]

    def messages(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("window.received"))

    def wait_for_message(self, status: str) -> list[dict[str, Any]]:
        self.page.wait_for_function(
            "(status) => window.received.some((m) => m.data && m.data.status === status)",
            arg=status,
            timeout=PAGE_TIMEOUT_MS,
        )
        return self.messages()

    def screenshot(self, name: str) -> None:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(DOCS_IMG / name), animations="disabled", scale="css")

    def close(self) -> None:
        self.context.close()


def page_url(client: httpx.Client, launch_url: str) -> str:
    """The launchUrl on the test server (the settings' public URL is not resolvable)."""
    return f"{str(client.base_url).rstrip('/')}/capture/{launch_url.rsplit('/', 1)[1]}"


def _ours(messages: list[dict[str, Any]], session_id: str) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m["data"].get("sessionId") == session_id]


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(120)
def test_framed_page_enrols_and_verifies_and_tells_the_parent(
    live: Callable[[], Any],
    settings: Settings,
    creds: Creds,
    site: IntegratorSite,
    browsers: Callable[[str], Browser],
) -> None:
    frame_ancestors(settings, creds.client_id, "--frame-ancestor", site.origin)
    with live() as client:
        service_origin = str(client.base_url).rstrip("/")
        enrol = create(
            client,
            creds,
            type="ENROLL",
            customerId="framed-1",
            liveness="passive",
            redirectURL=f"{site.origin}/done?flow=enrol",
        )
        run = EmbeddedRun(browsers("live-a"))
        run.open(site.embed("enrol", page_url(client, enrol["launchUrl"])))
        frame = run.frame()
        frame.wait_for_selector("#start:not([disabled])", timeout=PAGE_TIMEOUT_MS)
        run.screenshot("capture-embedded.png")
        frame.click("#start")
        messages = run.wait_for_message("SUCCESS")
        ours = _ours(messages, enrol["sessionId"])
        # Progress first, then the result; each from the service's origin only.
        assert ours[0] == {
            "type": "bioverify.session",
            "sessionId": enrol["sessionId"],
            "status": "IN_PROGRESS",
            "reason": "loaded",
        }
        assert ours[-1] == {
            "type": "bioverify.session",
            "sessionId": enrol["sessionId"],
            "status": "SUCCESS",
            "reason": "success",
        }
        assert {m["origin"] for m in messages} == {service_origin}
        frame.wait_for_selector(OUTCOME, timeout=PAGE_TIMEOUT_MS)
        run.screenshot("capture-embedded-success.png")
        # The frame then goes to the redirect, which says what happened.
        run.frame().wait_for_url(f"{site.origin}/done?**", timeout=PAGE_TIMEOUT_MS)
        query = parse_qs(urlsplit(run.frame().url).query)
        assert query["flow"] == ["enrol"] and query["reason"] == ["success"]
        assert query["sessionId"] == [enrol["sessionId"]] and query["status"] == ["SUCCESS"]
        run.close()
        assert session_state(client, creds, enrol["sessionId"])["status"] == "SUCCESS"

        # VERIFY the same person, framed the same way, from another camera take.
        verify = create(client, creds, type="VERIFY", customerId="framed-1", liveness="passive")
        run = EmbeddedRun(browsers("live-b"))
        run.open(site.embed("verify", page_url(client, verify["launchUrl"])))
        frame = run.frame()
        frame.wait_for_selector("#start:not([disabled])", timeout=PAGE_TIMEOUT_MS)
        frame.click("#start")
        ours = _ours(run.wait_for_message("SUCCESS"), verify["sessionId"])
        assert ours[-1]["status"] == "SUCCESS" and ours[-1]["reason"] == "success"
        assert "customerId" not in str(ours)  # the frame's messages never name the customer
        run.close()
        state = session_state(client, creds, verify["sessionId"])
        assert state["status"] == "SUCCESS"
        assert state["customerId"] == "framed-1"


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(60)
@pytest.mark.parametrize("registered", [None, "https://app.example.com"])
def test_a_client_without_this_frame_ancestor_cannot_be_framed(  # noqa: PLR0917 - fixtures
    live: Callable[[], Any],
    settings: Settings,
    creds: Creds,
    site: IntegratorSite,
    browsers: Callable[[str], Browser],
    registered: str | None,
) -> None:
    if registered:
        frame_ancestors(settings, creds.client_id, "--frame-ancestor", registered)
    with live() as client:
        made = create(client, creds, type="ENROLL", liveness="passive")
        run = EmbeddedRun(browsers("live-a"))
        with run.page.expect_console_message(
            lambda message: "violates the following Content Security Policy" in message.text,
            timeout=PAGE_TIMEOUT_MS,
        ) as refused:
            run.open(site.embed("blocked", page_url(client, made["launchUrl"])))
        policy = registered or "'none'"
        assert f"frame-ancestors {policy}" in refused.value.text
        assert "has been blocked" in refused.value.text
        run.page.wait_for_load_state("load")
        # The page never ran: nothing loaded the session, nothing was posted.
        assert run.frame().query_selector("#start") is None
        assert run.messages() == []
        run.close()
        assert session_state(client, creds, made["sessionId"])["status"] == "PENDING"


def test_framing_headers_follow_the_clients_frame_ancestors(
    app_client: httpx.Client, settings: Settings, creds: Creds
) -> None:
    made = app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()).json()
    page = f"/capture/{made['launchUrl'].rsplit('/', 1)[1]}"
    default = app_client.get(page).headers
    assert "frame-ancestors 'none'" in default["content-security-policy"]
    assert default["x-frame-options"] == "DENY"

    frame_ancestors(
        settings,
        creds.client_id,
        "--frame-ancestor",
        "https://app.example.com",
        "--frame-ancestor",
        "https://*.example.org",
    )
    framed = app_client.get(page).headers
    assert framed["content-security-policy"].endswith(
        "frame-ancestors https://app.example.com https://*.example.org"
    )
    assert "x-frame-options" not in framed
    assert framed["permissions-policy"].startswith(
        'camera=(self "https://app.example.com" "https://*.example.org")'
    )
    # The load tells the page where it may post its messages.
    token = made["launchUrl"].rsplit("/", 1)[1]
    loaded = app_client.get(f"{CREATE}/{token}").json()
    assert loaded["frameAncestors"] == ["https://app.example.com", "https://*.example.org"]
    # A wrong secret in the link gets the default (unframeable) page.
    forged = app_client.get(page[:-4] + "AAAA").headers
    assert "frame-ancestors 'none'" in forged["content-security-policy"]

    frame_ancestors(settings, creds.client_id, "--no-frame-ancestors")
    assert "frame-ancestors 'none'" in app_client.get(page).headers["content-security-policy"]
