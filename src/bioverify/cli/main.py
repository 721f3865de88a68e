"""The ``bioverify`` command: one group per area, one top-level handler (``main``).

Exit status (API.md section 6): 0 success; 1 what was asked failed (a refused input,
an unreachable store, a log that does not verify, a configuration error); 2 usage
error. Failures print one line, ``error: ...``, on standard error; a traceback only
with ``--verbose``. Command modules import their heavy dependencies inside the
commands, so that ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

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

#: Exit statuses of every command.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Ctrl-C: the shell's convention (128 + SIGINT), not a result of the command.
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="bioverify",
    help="Self-hosted biometric verification Session API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: rendering it with rich costs more start-up time than all our code.
    rich_markup_mode=None,
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


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"


def _fail(status: int, message: str) -> int:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()
    return status


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # standalone_mode=False: errors come back here (one handler, one format) and
        # typer.Exit's code is *returned*, which must become the exit status.
        result = app(args=args, prog_name="bioverify", standalone_mode=False)
    except typer.Exit as exc:  # raised outside a command's context
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except typer.TyperException as exc:  # click's usage and parameter errors
        status = int(getattr(exc, "exit_code", EXIT_FAILED))
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            return EXIT_USAGE  # a bare group: typer has printed its help, the answer
        message = exc.format_message()
        if status == EXIT_USAGE and ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        return _fail(status, message)
    except Exception as exc:  # noqa: BLE001 - the one top-level handler (CONVENTIONS: CLI)
        from bioverify.errors import BioverifyError  # noqa: PLC0415 - only on failure

        if _verbose:
            traceback.print_exc()
        if isinstance(exc, BioverifyError):
            return _fail(EXIT_FAILED, exc.message)
        hint = "" if _verbose else " (run with --verbose for details)"
        return _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}{hint}")
    return result if isinstance(result, int) else EXIT_OK


def main() -> None:
    """Entry point of the ``bioverify`` script."""
    sys.exit(run())


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app", "main", "run"]
