"""The TypeScript SDK (sdk/typescript): its own ``npm test`` against a real
``bioverify serve`` (started by the Node tests), and its types against the OpenAPI
document the server publishes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fixtures_faces import registry_image

PACKAGE = Path(__file__).resolve().parents[2] / "sdk" / "typescript"
#: The must-show tests of the Node suite, each of which must pass by name.
MUST_PASS = (
    "retries a 503 after its Retry-After with the same idempotency key: one session",
    "does not retry a 400, and says it is permanent",
    "completes the capture with the Python capture SDK",
    "verifies the real webhook with the v1 secret and the v1a JWKS key",
    "refuses a tampered webhook, a wrong secret and a stale timestamp",
    "verifies the receipt and refuses a tampered one",
    "signs requests with SLC instead of a secret, and a stranger's key is refused",
    "packs dist/ with an empty dependencies list, and the tarball works on its own",
)


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not on PATH: the TypeScript SDK needs Node.js >= 20 and npm")
    return found


def install_dev_dependencies() -> None:
    """``npm ci`` inside the package when its node_modules is missing or stale (never global)."""
    marker = PACKAGE / "node_modules" / ".package-lock.json"
    lock = PACKAGE / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(
        [npm(), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PACKAGE,
        check=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.models
def test_npm_test_passes_against_a_real_server() -> None:
    install_dev_dependencies()
    env = {
        **os.environ,
        "BIOVERIFY_BIN": str(Path(sys.executable).parent / "bioverify"),
        "BIOVERIFY_TEST_FACE": str(registry_image("astronaut.png")),
    }
    done = subprocess.run(
        [npm(), "test"],
        cwd=PACKAGE,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert re.search(r"^# fail 0$", report, re.MULTILINE), report[-3000:]
    passed = int(re.search(r"^# pass (\d+)$", report, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert passed >= len(MUST_PASS)
    for name in MUST_PASS:
        assert re.search(rf"^\s*ok \d+ - {re.escape(name)}$", report, re.MULTILINE), name


def interface_fields(name: str) -> set[str]:
    """Property names of ``export interface {name}`` in the SDK's types.ts."""
    text = (PACKAGE / "src" / "types.ts").read_text(encoding="utf-8")
    match = re.search(rf"export interface {name}\b[^{{]*\{{(.*?)\n\}}", text, re.DOTALL)
    assert match, f"types.ts has no interface {name}"
    return set(re.findall(r"^  (\w+)\??:", match.group(1), re.MULTILINE))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("schema", "interface"),
    [
        ("CreateSessionRequest", "CreateSessionRequest"),
        ("CreateSessionResponse", "CreateSessionResponse"),
        ("SessionView", "Session"),
        ("SessionError", "SessionError"),
        ("CustomerView", "Customer"),
        ("ErrorEnvelope", "ErrorEnvelope"),
        ("Callback", "Callback"),
    ],
)
def test_typescript_types_cover_the_openapi_document(
    app_client: httpx.Client, schema: str, interface: str
) -> None:
    document = app_client.get("/openapi.json").json()
    properties = set(document["components"]["schemas"][schema]["properties"])
    missing = properties - interface_fields(interface)
    assert not missing, f"sdk/typescript/src/types.ts {interface} lacks {sorted(missing)}"
