"""The ``bioverify`` command: one group per area, one top-level error handler."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from bioverify.cli import (
    audit_cmd,
    capture_cmd,
    clients,
    demo,
    eval_cmd,
    keys,
    serve,
    webhooks_cmd,
)
from bioverify.cli._context import console
from bioverify.errors import BioverifyError

app = typer.Typer(
    name="bioverify",
    help="Self-hosted biometric verification Session API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("migrate")(serve.migrate)
app.command("demo")(demo.demo)
app.command("capture")(capture_cmd.capture)
app.command("eval")(eval_cmd.eval_command)
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(webhooks_cmd.app, name="webhooks")

_verbose = False


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")
    ] = False,
) -> None:
    global _verbose  # noqa: PLW0603 - one flag read by main()'s handler
    _verbose = verbose


def main() -> None:
    """Entry point: domain errors become a message and exit code 1, not a traceback."""
    try:
        app(standalone_mode=False)
    except BioverifyError as exc:
        if _verbose:
            raise
        console.print(f"[red]error:[/red] {exc.message}")
        sys.exit(1)
    except typer.Abort:
        sys.exit(130)
    except (typer.BadParameter, typer.Exit) as exc:  # pragma: no cover - typer handles
        raise exc
    except Exception as exc:
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if _verbose:
            raise
        console.print(
            f"[red]error:[/red] {type(exc).__name__}: {exc} (run with --verbose for details)"
        )
        sys.exit(1)


__all__ = ["app", "main"]
