"""Captures cannot amplify memory or CPU (review item 2): frame and per-capture pixel
limits are checked from the image headers before anything is decoded, one capture
per session is analysed at a time, and each tenant gets a share of the engine.

Memory is measured, not assumed: the server and its engine (thread mode) run in this
process, whose peak resident size is reset (``/proc/self/clear_refs``) before each
request and read (``VmHWM``) after it. Timing is measured by bench/capture_limits.py.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, update
from test_capture_protocol import Capture, open_session

from bioverify.config import Settings
from bioverify.engine.decode import MAX_FRAME_PIXELS, MAX_REQUEST_PIXELS
from bioverify.sessions.engine_share import TenantShare
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import is_sqlite, session_factory, transaction
from support import Creds, assert_envelope, serve

MB = 1024 * 1024


def grey_png(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG, built row by row (a 40 MP one is ~40 KB compressed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _peak_rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def measured(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
    """``call()``'s answer and how far this process's peak RSS rose above its start."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    before = _peak_rss_bytes()
    answer = call()
    return answer, _peak_rss_bytes() - before


@pytest.fixture
def big_bodies(settings: Settings, make_app: Callable[..., FastAPI]) -> Iterator[httpx.Client]:
    """The production body limit (16 MB), so frames reach the capture checks."""
    app = make_app(settings=settings.with_overrides(max_body_bytes=16 * MB))
    with serve(app) as client:
        yield client


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll another thread's progress until ``predicate`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _active_capture(http: httpx.Client, creds: Creds, frames: list[bytes]) -> httpx.Response:
    made = open_session(http, creds, liveness="active")
    capture = Capture(http, str(made["launchUrl"]))
    loaded = capture.load()
    assert loaded.status_code == 200, loaded.text
    plain = capture.plaintext(
        frames=[base64.b64encode(f).decode() for f in frames],
        frameTimes=[i * 100.0 for i in range(len(frames))],
        challengeId=loaded.json()["challenge"]["id"],
    )
    return capture.post("capture", capture.envelope("capture", plain))


def test_the_reviews_worst_case_is_refused_before_any_decode(
    big_bodies: httpx.Client, creds: Creds
) -> None:
    # 24 grey 40-megapixel PNGs: 31.6 s and 2.9 GB in one engine worker before the fix.
    frame = grey_png(6325, 6324)
    answer, peak = measured(lambda: _active_capture(big_bodies, creds, [frame] * 24))
    body = assert_envelope(answer, 400)
    assert "limit per frame" in body["message"]
    # Nothing was decoded: one decoded frame alone would be 120 MB of pixels.
    assert peak < 64 * MB, f"peak RSS rose by {peak / MB:.0f} MB"


def test_frames_over_the_per_capture_total_are_refused_before_any_decode(
    big_bodies: httpx.Client, creds: Creds
) -> None:
    # Each frame is allowed; together they are over the capture's total.
    frame = grey_png(2560, 1440)
    assert 2560 * 1440 <= MAX_FRAME_PIXELS < 24 * 2560 * 1440
    assert MAX_REQUEST_PIXELS < 24 * 2560 * 1440
    answer, peak = measured(lambda: _active_capture(big_bodies, creds, [frame] * 24))
    assert "limit per capture" in assert_envelope(answer, 400)["message"]
    assert peak < 64 * MB, f"peak RSS rose by {peak / MB:.0f} MB"


def test_the_largest_allowed_capture_is_analysed_in_bounded_memory(
    big_bodies: httpx.Client, creds: Creds
) -> None:
    frames = [grey_png(1920, 1080)] * 24  # exactly the per-capture total
    answer, peak = measured(lambda: _active_capture(big_bodies, creds, frames))
    # Grey frames have no face: the capture is analysed and answered (not refused).
    assert answer.status_code in (200, 422), answer.text
    # Decoded BGR pixels of the whole capture, plus the detector's working copies.
    bound = 3 * MAX_REQUEST_PIXELS * 3 + 128 * MB
    assert peak < bound, f"peak RSS rose by {peak / MB:.0f} MB (bound {bound / MB:.0f} MB)"


def test_one_capture_in_flight_per_session(
    big_bodies: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    made = open_session(big_bodies, creds, liveness="active")
    capture = Capture(big_bodies, str(made["launchUrl"]))
    loaded = capture.load()
    large = [base64.b64encode(grey_png(1920, 1080)).decode()] * 24

    def post() -> httpx.Response:
        plain = capture.plaintext(
            frames=large,
            frameTimes=[i * 100.0 for i in range(24)],
            challengeId=loaded.json()["challenge"]["id"],
        )
        return capture.post("capture", capture.envelope("capture", plain))

    def held() -> bool:
        with db_engine.connect() as conn:
            until = conn.scalar(
                select(SessionRow.capture_until).where(SessionRow.id == made["sessionId"])
            )
        return until is not None

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post)
        wait_until(lambda: held() or first.done(), 60, "the first capture to be accepted")
        assert not first.done(), "the first capture was answered before the second was sent"
        second = post()  # while the first is being analysed (seconds for 24 x 1080p)
        assert "still being analysed" in assert_envelope(second, 429)["message"]
        assert int(second.headers["retry-after"]) > 0
        assert first.result(timeout=120).status_code in (200, 422)
    # Once answered, the hold is released: the session takes its next capture.
    assert not held()
    again = post()
    assert again.status_code != 429, again.text


def test_a_hold_left_by_a_crash_is_void_on_sqlite_and_expires_elsewhere(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    made = open_session(app_client, creds)
    capture = Capture(app_client, str(made["launchUrl"]))
    assert capture.load().status_code == 200
    # The process that was analysing a capture of this session died mid-way.
    with transaction(session_factory(db_engine)) as db:
        db.execute(
            update(SessionRow)
            .where(SessionRow.id == made["sessionId"])
            .values(capture_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
        )
    frame = base64.b64encode(grey_png(640, 480)).decode()
    answer = capture.post("capture", capture.envelope("capture", capture.plaintext(frames=[frame])))
    if is_sqlite(db_engine):
        # SQLite has one writer process: a hold it is not analysing is a crash's leftover.
        assert answer.status_code in (200, 422), answer.text
    else:
        # Another replica may still be analysing: wait for the hold (Retry-After).
        assert_envelope(answer, 429)
        assert 1 <= int(answer.headers["retry-after"]) <= 30


def _share_scenario(capacity: int, arrivals: list[tuple[str, str]], finish: list[str]) -> list[str]:
    """Pure logic of the share: ``arrivals`` (tenant, name) ask for a slot in order;
    after they settled, the running jobs named in ``finish`` end one by one. Returns
    the order in which jobs got a slot."""

    async def scenario() -> list[str]:
        share = TenantShare(capacity=capacity)
        order: list[str] = []
        done = {name: asyncio.Event() for _, name in arrivals}

        async def job(tenant: str, name: str) -> None:
            async with share.slot(tenant):
                order.append(name)
                await done[name].wait()

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        tasks = []
        for tenant, name in arrivals:
            tasks.append(asyncio.create_task(job(tenant, name)))
            await settle()
        for name in finish:
            done[name].set()
            await settle()
        for event in done.values():
            event.set()
        await asyncio.gather(*tasks)
        return order

    return asyncio.run(scenario())


def test_a_tenant_alone_uses_the_whole_engine() -> None:
    """With no one else waiting, one tenant's captures take every engine slot (a slot
    kept idle would leave a core unused)."""
    arrivals = [("a", "a0"), ("a", "a1"), ("a", "a2")]
    assert _share_scenario(2, arrivals, [])[:2] == ["a0", "a1"]


def test_a_tenant_cannot_take_the_whole_engine() -> None:
    """Another tenant's capture is never queued behind the first tenant's backlog: it
    takes the first slot that frees, before the first tenant's waiting captures."""
    arrivals = [("a", "a0"), ("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b0")]
    assert _share_scenario(2, arrivals, ["a0"]) == ["a0", "a1", "b0", "a2", "a3"]


def test_the_share_goes_to_the_tenant_served_least() -> None:
    """A freed slot goes to the waiting tenant with the fewest analyses running, then to
    the one served least recently: a tenant's backlog cannot starve tenants that
    arrive after it."""
    arrivals = [("a", "a0"), ("a", "a1"), ("a", "a2"), ("b", "b0"), ("c", "c0")]
    # a0 ends: b and c run nothing, b came first. a1 ends: a and c run nothing, c has
    # not been served yet, so c0 goes before a's waiting a2.
    order = _share_scenario(2, arrivals, ["a0", "a1"])
    assert order == ["a0", "a1", "b0", "c0", "a2"]


def test_a_cancelled_wait_gives_its_slot_on() -> None:
    """A capture cancelled while waiting (its client went away) neither holds nor loses
    a slot: the next waiter still gets the freed one."""

    async def scenario() -> list[str]:
        share = TenantShare(capacity=1)
        order: list[str] = []
        release = asyncio.Event()

        async def job(tenant: str, name: str) -> None:
            async with share.slot(tenant):
                order.append(name)
                await release.wait()

        first = asyncio.create_task(job("a", "a0"))
        await asyncio.sleep(0)
        gone = asyncio.create_task(job("b", "b0"))
        later = asyncio.create_task(job("c", "c0"))
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        await asyncio.gather(first, later)
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert share.busy("a") == share.busy("b") == share.busy("c") == 0
        return order

    assert asyncio.run(scenario()) == ["a0", "c0"]


def test_a_wait_cancelled_just_before_its_slot_frees_is_skipped() -> None:
    """A waiter cancelled in the same step as the slot it waits for frees (its task has
    not run yet) is passed over: the slot goes to the next waiter, none is lost."""

    async def scenario() -> list[str]:
        share = TenantShare(capacity=1)
        order: list[str] = []

        async def job(tenant: str, name: str) -> None:
            async with share.slot(tenant):
                order.append(name)

        async with share.slot("a"):
            gone = asyncio.create_task(job("b", "b0"))
            later = asyncio.create_task(job("c", "c0"))
            for _ in range(3):
                await asyncio.sleep(0)
            gone.cancel()  # no await: the slot frees before the task sees its cancel
        await later
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert share.busy("b") == share.busy("c") == 0
        async with share.slot("b"):  # the slot came back
            order.append("b1")
        return order

    assert asyncio.run(scenario()) == ["c0", "b1"]
