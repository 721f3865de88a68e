"""Helpers of the reliability tests: service processes, a gated webhook receiver, waits.

Every process is started in its own process group and registered with a
:class:`Processes` registry whose ``close`` (a fixture finalizer) kills the groups
that are still alive, so no test leaves a server behind even when it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine

from bioverify.crypto.keyring import KeyRing
from support import Creds, Receiver, make_client

BIN = Path(sys.executable).parent
CREATE = "/v2/verification-session"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of a service process: fast test schedules, loopback callbacks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env.update(
        BIOVERIFY_DATA_DIR=str(data_dir),
        BIOVERIFY_WEBHOOK_TEST_SCHEDULE="1",
        BIOVERIFY_ALLOW_PRIVATE_CALLBACKS="1",
        BIOVERIFY_ENGINE_WORKERS="0",
        BIOVERIFY_SWEEP_INTERVAL="0.2",
        BIOVERIFY_CHECKPOINT_SECONDS="1",
        BIOVERIFY_LOG_LEVEL="warning",
    )
    if database_url:
        env["BIOVERIFY_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def make_creds(engine: Engine, data_dir: Path) -> Creds:
    """A client whose webhook secret is sealed by the data directory's own key ring
    (the one the service processes will load)."""
    return make_client(engine, keyring=KeyRing.load_or_create(data_dir / "keys"))


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # bounded poll of another process's progress


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Proc:
    """One service process (``bioverify serve`` or ``bioverify worker``)."""

    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group and reap it."""
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=20)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Processes:
    """Registry of the processes a test started; ``close`` kills the survivors."""

    workdir: Path
    started: list[Proc] = field(default_factory=list)

    def _proc(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(
            [str(BIN / "bioverify"), *args], env, self.workdir / f"{name}-{len(self.started)}.log"
        ).start()
        self.started.append(proc)
        return proc

    def serve(self, env: dict[str, str], port: int, *extra: str) -> tuple[Proc, str]:
        """``bioverify serve`` on ``port``; returns once /healthz answers. One API process
        unless ``extra`` says ``--workers``: these tests kill and restart *the* server."""
        if "--workers" not in extra:
            extra = ("--workers", "1", *extra)
        proc = self._proc(
            "serve", ["serve", "--host", "127.0.0.1", "--port", str(port), *extra], env
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: answers(url) or not proc.alive, 60, "the server to start")
        finally:
            if not proc.alive:
                raise AssertionError(f"server exited: {proc.output()}")
        return proc, url

    def worker(self, env: dict[str, str]) -> Proc:
        return self._proc("worker", ["worker"], env)

    def cli(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "bioverify"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def close(self) -> None:
        for proc in self.started:
            proc.kill(signal.SIGTERM)


def GatedReceiver(open_gate: bool = True) -> Receiver:  # noqa: N802 - reads as a class
    """A loopback receiver that may hold its answers (``open_gate=False``) until
    ``receiver.gate.set()``: a sender killed meanwhile has its sends in flight."""
    return Receiver(hold=not open_gate)


@contextlib.contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    registry = Processes(workdir)
    try:
        yield registry
    finally:
        registry.close()
