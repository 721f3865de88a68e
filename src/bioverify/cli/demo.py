"""``bioverify demo`` (what ``make run`` starts): migrate, a demo client, serve."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bioverify.cli._context import opened, settings
from bioverify.cli.serve import HostOption, PortOption, run_server

DEMO_FILE = "demo-client.json"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def demo_credentials(data_dir: Path) -> dict[str, Any]:
    """The demo client's credentials, created on first start and kept (0600) after."""
    from bioverify.accounts import service as accounts  # noqa: PLC0415 - fast start
    from bioverify.accounts.secretbox import KeyRingSealer  # noqa: PLC0415
    from bioverify.storage.database import transaction  # noqa: PLC0415

    cfg = settings()
    path = data_dir / DEMO_FILE
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored
    with opened(cfg) as svc, transaction(svc.factory) as db:
        _, issued = accounts.create_client(
            db, name="demo", sealer=KeyRingSealer(svc.need_keyring())
        )
    creds = issued.as_json()
    _write_private(path, creds)
    return creds


def demo(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """Start the service with a demo client and print how to use it."""
    cfg = settings()
    creds = demo_credentials(cfg.data_dir)
    base = f"http://{host}:{port}"
    if not cfg.public_url_set:
        cfg = cfg.with_overrides(public_url=base)
    if not quiet:
        # Plain print: rich would wrap the curl lines and break copy-paste.
        print(
            f"""
bioverify is starting on {base}  (API docs: {base}/docs)

Demo client (stored in {cfg.data_dir / DEMO_FILE}, mode 0600; for development only):
  x_api_key:    {creds["apiKey"]}
  clientID:     {creds["clientId"]}
  clientSecret: {creds["clientSecret"]}
  webhook secret (whsec_): {creds["webhookSecret"]}

Create a session:
  curl -s -X POST {base}/v2/verification-session \\
    -H 'content-type: application/json' \\
    -H 'x_api_key: {creds["apiKey"]}' \\
    -H 'clientID: {creds["clientId"]}' \\
    -H 'clientSecret: {creds["clientSecret"]}' \\
    -d '{{"type": "ENROLL", "customerId": "alice", "liveness": "passive"}}'

Then open the launchUrl it returns, or read the session back:
  curl -s {base}/v2/verification-session/SESSION_ID \\
    -H 'x_api_key: ...' -H 'clientID: ...' -H 'clientSecret: ...'
""",
            flush=True,
        )
    run_server(cfg, host=host, port=port, with_worker=True)


__all__ = ["demo", "demo_credentials"]
