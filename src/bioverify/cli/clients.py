"""``bioverify clients``: create, update, list, revoke, rotate-secret."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from bioverify.cli._context import console, opened, print_json

app = typer.Typer(
    help="Integrator client applications and their credentials.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name to recognise the client by.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Ed25519 public key (PEM) to register for SLC request signing.",
        ),
    ] = None,
    key_only: Annotated[
        bool,
        typer.Option(
            "--key-only", help="The API key alone authenticates (PrivateID-style integrations)."
        ),
    ] = False,
    frame_ancestor: Annotated[
        list[str] | None,
        typer.Option(
            "--frame-ancestor",
            help="An origin allowed to frame the hosted capture page (repeatable), e.g. "
            "https://app.example.com or https://*.example.com.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON.")] = False,
) -> None:
    """Create a client and print its credentials once (they are stored only as hashes)."""
    from bioverify.accounts import service as accounts  # noqa: PLC0415 - fast start
    from bioverify.accounts.secretbox import KeyRingSealer  # noqa: PLC0415
    from bioverify.storage.database import transaction  # noqa: PLC0415

    pem = public_key.read_text() if public_key else None
    with opened() as svc, transaction(svc.factory) as db:
        _, issued = accounts.create_client(
            db,
            name=name,
            public_key_pem=pem,
            key_only=key_only,
            sealer=KeyRingSealer(svc.need_keyring()),
            frame_ancestors=frame_ancestor or (),
        )
    if as_json:
        print_json(issued.as_json())
        return
    console().print("[bold]Client created.[/bold] These secrets are shown once; store them now.")
    for key, value in issued.as_json().items():
        console().print(f"  {key}: {value}")


@app.command("update")
def update(
    client_id: Annotated[str, typer.Argument(help="The clientId to change.")],
    frame_ancestor: Annotated[
        list[str] | None,
        typer.Option(
            "--frame-ancestor",
            help="An origin allowed to frame the hosted capture page (repeatable); "
            "replaces the current list.",
        ),
    ] = None,
    no_frame_ancestors: Annotated[
        bool,
        typer.Option("--no-frame-ancestors", help="Forbid framing the hosted page again."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Change who may frame the hosted capture page of this client's sessions."""
    if bool(frame_ancestor) == no_frame_ancestors:
        raise typer.BadParameter(
            "give --frame-ancestor ORIGIN (one or more) or --no-frame-ancestors"
        )
    from bioverify.accounts import service as accounts  # noqa: PLC0415 - fast start
    from bioverify.storage.database import transaction  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        origins = accounts.set_frame_ancestors(db, client_id, frame_ancestor or [])
    if as_json:
        print_json({"clientId": client_id, "frameAncestors": origins})
    elif origins:
        console().print(f"Client {client_id} may be framed by: {' '.join(origins)}")
    else:
        console().print(f"Client {client_id}: the hosted page may not be framed.")


@app.command("list")
def list_() -> None:
    """List clients (never their secrets)."""
    from rich.console import Console  # noqa: PLC0415 - fast start
    from rich.table import Table  # noqa: PLC0415

    from bioverify.accounts import service as accounts  # noqa: PLC0415
    from bioverify.storage.database import transaction  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        rows = [
            (c.id, c.name, c.key_only, bool(c.public_key_pem), c.created_at, c.revoked_at)
            for c in accounts.list_clients(db)
        ]
    table = Table("clientId", "name", "key-only", "SLC key", "created", "revoked")
    for cid, name, key_only, has_key, created, revoked in rows:
        table.add_row(
            cid,
            name,
            "yes" if key_only else "no",
            "yes" if has_key else "no",
            created.isoformat(timespec="seconds"),
            revoked.isoformat(timespec="seconds") if revoked else "",
        )
    Console().print(table)


@app.command("revoke")
def revoke(client_id: Annotated[str, typer.Argument(help="The clientId to revoke.")]) -> None:
    """Revoke a client: its credentials stop working at once."""
    from bioverify.accounts import service as accounts  # noqa: PLC0415 - fast start
    from bioverify.storage.database import transaction  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        accounts.revoke_client(db, client_id, _now())
    console().print(f"Client {client_id} revoked.")


@app.command("rotate-secret")
def rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The clientId whose secret to rotate.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a new client secret; the old one keeps working for 24 hours."""
    from bioverify.accounts import service as accounts  # noqa: PLC0415 - fast start
    from bioverify.storage.database import transaction  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        secret = accounts.rotate_secret(db, client_id, _now())
    if as_json:
        print_json({"clientId": client_id, "clientSecret": secret})
    else:
        console().print(
            f"New clientSecret (shown once): {secret}\n"
            "The previous secret keeps working for 24 hours."
        )


__all__ = ["app"]
