"""``bioverify capture LAUNCH_URL (--image FILE... | --camera N) [--document FRONT
[--document-back BACK]]``: the capture SDK from a shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioverify.cli._context import console, print_json


def capture(
    launch_url: Annotated[str, typer.Argument(help="The session's launchUrl.")],
    *,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            "--image", exists=True, dir_okay=False, help="A JPEG/PNG frame (repeat for a burst)."
        ),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="Camera index (0) or a video file to read the burst from."),
    ] = None,
    document: Annotated[
        Path | None,
        typer.Option(
            "--document",
            exists=True,
            dir_okay=False,
            help="A photo of the identity document's front (identity_document sessions).",
        ),
    ] = None,
    document_back: Annotated[
        Path | None,
        typer.Option(
            "--document-back",
            exists=True,
            dir_okay=False,
            help="A photo of its back, for cards whose data is there (ID cards, licences).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Complete a session's capture from image files or a camera, then its document."""
    if image and camera is not None:
        raise typer.BadParameter("give either --image (one or more) or --camera, not both")
    if not image and camera is None and document is None:
        raise typer.BadParameter("give --image (one or more), --camera or --document")
    if document_back is not None and document is None:
        raise typer.BadParameter("--document-back needs --document (the front comes first)")
    from bioverify.capture.camera import capture_from_camera  # noqa: PLC0415 - fast start
    from bioverify.capture.sdk import CaptureOutcome, CaptureSession  # noqa: PLC0415

    with CaptureSession.from_launch_url(launch_url) as session:
        outcome: CaptureOutcome | None = None
        if image:
            outcome = session.submit(image)
        elif camera is not None:
            source: int | str = int(camera) if camera.isdigit() else camera
            outcome = capture_from_camera(session, source, prompt=console().print)
        # The document follows a face that passed now (or in an earlier run).
        if document is not None and (outcome is None or outcome.next_step == "document"):
            outcome = session.submit_document(document, side="front")
            if outcome.next_step == "back" and document_back is not None:
                outcome = session.submit_document(document_back, side="back")
    assert outcome is not None  # the checks above require a face or a document
    if as_json:
        print_json(
            {
                "status": outcome.status,
                "sessionId": outcome.session_id,
                "errorCodes": list(outcome.error_codes),
                "attemptsLeft": outcome.attempts_left,
                "remedy": outcome.remedy,
                "next": outcome.next_step,
            }
        )
        if outcome.status == "FAILED":
            raise typer.Exit(1)  # the same exit code with or without --json
        return
    console().print(
        f"Session {outcome.session_id}: [bold]{outcome.status}[/bold] "
        f"{list(outcome.error_codes) or ''}"
    )
    if outcome.remedy:
        console().print(outcome.remedy)
    if outcome.next_step is not None:
        flag = "--document and --document-back" if outcome.next_step == "back" else "--document"
        console().print(f"Next: the document's {outcome.next_step}; run again with {flag}")
    if outcome.status == "FAILED":
        raise typer.Exit(1)  # the session failed: a failure, not a misuse (2)


__all__ = ["capture"]
