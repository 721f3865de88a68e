"""``bioverify audit``: verify the whole log, prove an entry, export the log."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bioverify.cli._context import (
    console,
    keyring,
    migrated_engine,
    print_json,
    settings,
    store,
)

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True, rich_markup_mode=None)


@app.command("verify")
def verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Processes re-hashing entries (0: one per CPU, at most 8), "
            "used from 200,000 entries.",
        ),
    ] = 0,
) -> None:
    """Recompute every leaf, tile and tree head, check every checkpoint signature and the
    consistency between checkpoints. Exits 0 when all holds; 1 naming the first bad entry.
    """
    from rich.progress import (  # noqa: PLC0415 - imported per command: fast start
        BarColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from bioverify.audit.service import KEY_NAME  # noqa: PLC0415
    from bioverify.audit.verify import verify_log  # noqa: PLC0415

    cfg = settings()
    keys = keyring(cfg).all_signing_public_keys()
    with Progress(
        TextColumn("[bold]verifying audit log"),
        BarColumn(),
        TextColumn("{task.completed:,} entries"),
        TimeRemainingColumn(),
        console=console(),
        disable=quiet,
    ) as bar:
        task = bar.add_task("verify", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        engine = migrated_engine(cfg)
        try:
            report = verify_log(
                engine,
                public_keys=keys,
                key_name=KEY_NAME,
                origin=cfg.audit_origin,
                progress=progress,
                workers=workers or min(8, os.cpu_count() or 1),
            )
        finally:
            engine.dispose()
    if report.ok:
        console().print(
            f"[green]OK[/green]: {report.entries:,} entries and "
            f"{report.checkpoints:,} checkpoints verify."
        )
        return
    where = (
        f"entry {report.first_bad_index}"
        if report.first_bad_index is not None
        else f"checkpoint at tree size {report.bad_checkpoint}"
    )
    console().print(f"[red]FAILED[/red] at {where}: {report.reason}")
    raise typer.Exit(1)


@app.command("prove")
def prove(index: Annotated[int, typer.Argument(min=0, help="The entry's index.")]) -> None:
    """Print the entry, its leaf hash, and its inclusion proof against the latest checkpoint."""
    from sqlalchemy import select  # noqa: PLC0415 - imported per command: fast start

    from bioverify.audit.models import AuditEntry  # noqa: PLC0415
    from bioverify.audit.service import KEY_NAME, AuditLog  # noqa: PLC0415
    from bioverify.storage.database import transaction  # noqa: PLC0415

    cfg = settings()
    log = AuditLog()
    with store(cfg) as factory, transaction(factory) as db:
        body = db.scalar(select(AuditEntry.body).where(AuditEntry.idx == index))
        if body is None:
            console().print(f"[red]error:[/red] no audit entry {index}")
            raise typer.Exit(1)
        receipt = log.receipt(db, index)
        if receipt is None:
            console().print(
                f"[red]error:[/red] no signed checkpoint covers entry {index} yet; "
                "start `bioverify worker` (or `serve`) so the sequencer signs one"
            )
            raise typer.Exit(1)
        leaf = db.scalar(select(AuditEntry.leaf_hash).where(AuditEntry.idx == index))
    print_json(
        {
            "entry": json.loads(body),
            "leafHash": base64.b64encode(leaf or b"").decode(),
            "receipt": receipt,
            "keyName": KEY_NAME,
            "origin": cfg.audit_origin,
        }
    )


@app.command("export")
def export(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (JSON lines); standard output by default."),
    ] = None,
) -> None:
    """Export entries and checkpoints as JSON lines (for offline verification or archive)."""
    from sqlalchemy import select  # noqa: PLC0415 - imported per command: fast start

    from bioverify.audit.models import AuditCheckpoint, AuditEntry  # noqa: PLC0415

    cfg = settings()
    handle = out.open("w") if out else sys.stdout
    try:
        with store(cfg) as factory, factory() as db:
            for idx, body, leaf in db.execute(
                select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash)
                .order_by(AuditEntry.idx)
                .execution_options(yield_per=10_000)
            ):
                handle.write(
                    json.dumps(
                        {
                            "type": "entry",
                            "index": idx,
                            "leafHash": base64.b64encode(leaf).decode(),
                            "body": body.decode() if isinstance(body, bytes) else body,
                        }
                    )
                    + "\n"
                )
            for size, root, note in db.execute(
                select(
                    AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note
                ).order_by(AuditCheckpoint.tree_size)
            ):
                handle.write(
                    json.dumps(
                        {
                            "type": "checkpoint",
                            "treeSize": size,
                            "rootHash": base64.b64encode(root).decode(),
                            "note": note,
                        }
                    )
                    + "\n"
                )
    finally:
        if out:
            handle.close()


__all__ = ["app"]
