"""``make run`` (= ``bioverify demo``): serves, prints a curl command, and that command works."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_prints_a_curl_that_creates_a_session(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "BIOVERIFY_DATA_DIR": str(tmp_path / "data"),
        "BIOVERIFY_ENGINE_WORKERS": "0",
    }
    env.pop("BIOVERIFY_DATABASE_URL", None)
    bioverify = str(Path(sys.executable).with_name("bioverify"))
    proc = subprocess.Popen(
        [bioverify, "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "read the session back" in line:
                break
        output = "".join(lines)
        block = output.split("Create a session:", 1)[1].split("\n\n", 1)[0]
        command = block.replace("\\\n", " ").strip()
        assert command.startswith("curl ")
        for _ in range(200):  # the server starts after printing; wait (bounded) for it
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
        )
        created = json.loads(result.stdout)
        assert created["status"] == "PENDING"
        assert created["launchUrl"].startswith(f"http://127.0.0.1:{port}/capture/")
        assert re.fullmatch(r"[0-9a-f-]{36}", created["sessionId"])
        creds_file = tmp_path / "data" / "demo-client.json"
        assert oct(creds_file.stat().st_mode & 0o777) == "0o600"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
