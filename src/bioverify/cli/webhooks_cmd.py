"""``bioverify webhooks``: list outbox messages, queue a redelivery."""

from __future__ import annotations

from typing import Annotated

import typer

from bioverify.cli._context import console, opened, print_json

app = typer.Typer(help="The webhook outbox.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only dead-lettered or stopped.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List webhook messages, newest first."""
    from rich.console import Console  # noqa: PLC0415 - fast start
    from rich.table import Table  # noqa: PLC0415

    from bioverify.storage.database import transaction  # noqa: PLC0415
    from bioverify.webhooks import outbox  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        messages = outbox.list_messages(db, failed_only=failed, limit=limit)
    if as_json:
        print_json([m.as_json() for m in messages])
        return
    table = Table("webhook-id", "session", "kind", "status", "attempts", "last", "next")
    for m in messages:
        data = m.as_json()
        table.add_row(
            str(data.get("webhookId")),
            str(data.get("sessionId")),
            str(data.get("kind")),
            str(data.get("status")),
            str(data.get("attempts")),
            str(data.get("lastStatus") or data.get("lastError") or ""),
            str(data.get("nextAttemptAt") or ""),
        )
    Console().print(table)


@app.command("redeliver")
def redeliver(session_id: Annotated[str, typer.Argument(help="The session id.")]) -> None:
    """Queue a session's final webhook again (same webhook-id); the worker sends it."""
    from sqlalchemy import select  # noqa: PLC0415 - fast start

    from bioverify.sessions.models import SessionRow  # noqa: PLC0415
    from bioverify.storage.database import transaction  # noqa: PLC0415
    from bioverify.webhooks import outbox  # noqa: PLC0415

    with opened() as svc, transaction(svc.factory) as db:
        client_id = db.scalar(select(SessionRow.client_id).where(SessionRow.id == session_id))
        if client_id is None:
            console().print(f"[red]error:[/red] no session {session_id}")
            raise typer.Exit(1)
        message_id = outbox.redeliver(db, session_id, client_id)
    console().print(f"Queued {message_id} for redelivery.")


__all__ = ["app"]
