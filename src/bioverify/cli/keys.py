"""``bioverify keys``: rotate the capture and signing keys."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import typer

from bioverify.cli._context import console, print_json, settings

app = typer.Typer(help="The service's key ring.", no_args_is_help=True, rich_markup_mode=None)


class Which(StrEnum):
    CAPTURE = "capture"
    SIGNING = "signing"
    ALL = "all"


@app.command("rotate")
def rotate(
    which: Annotated[Which, typer.Option("--which", help="Which keys to rotate.")] = Which.ALL,
    grace_hours: Annotated[
        float,
        typer.Option("--grace-hours", min=0, help="How long old keys keep decrypting / verifying."),
    ] = 24.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Make new current keys; old ones keep working through the grace period.

    A running server picks the new keys up on its own (it watches the key files).
    """
    from bioverify.crypto.rotation import rotate_keys  # noqa: PLC0415 - fast start

    cfg = settings()
    result = rotate_keys(cfg.keys_dir, which=which.value, grace=dt.timedelta(hours=grace_hours))
    if as_json:
        print_json(result)
        return
    for kind, change in result.items():
        console().print(
            f"{kind}: new key {change['current']}; retired {change['retired']} "
            f"(usable for {grace_hours:g} more hours)"
        )


__all__ = ["app"]
