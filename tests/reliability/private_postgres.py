"""A PostgreSQL server of one test's own, for the tests that stop and start it.

Stopping the machine's shared server would break every other suite running at the
same time (a second checkout's CI, a developer's run), so the restart test gets a
real server of its own: Debian's ``initdb`` and ``pg_ctl`` on a free loopback port,
in a temporary directory removed at teardown. PostgreSQL refuses to run as root, so
as root the cluster belongs to the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import free_port

OWNER = "postgres"


def _bindir() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PrivateCluster:
    """One PostgreSQL server: ``ctl("stop")`` and ``ctl("start")`` are the faults."""

    bindir: Path
    datadir: Path
    port: int
    as_owner: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OWNER}@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str) -> subprocess.CompletedProcess[str]:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.datadir}"
        )
        return subprocess.run(
            [
                *self.as_owner,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir / "data"),
                "-l",
                str(self.datadir / "server.log"),
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "-o",
                options,
                action,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """Start a fresh cluster; stop it and delete its files whatever the test did."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb is not installed (Debian package postgresql)")
    as_owner: list[str] = []
    root = tempfile.mkdtemp(prefix="bioverify-pg-")
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OWNER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", OWNER, "--"]
    cluster = PrivateCluster(bindir, Path(root), free_port(), as_owner)
    try:
        made = subprocess.run(
            [
                *as_owner,
                str(bindir / "initdb"),
                "-D",
                str(cluster.datadir / "data"),
                "-U",
                OWNER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        started = cluster.ctl("start")
        assert started.returncode == 0, started.stderr + started.stdout
        yield cluster
    finally:
        cluster.ctl("stop")
        shutil.rmtree(root, ignore_errors=True)
