"""``bioverify capture LAUNCH_URL (--image FILE... | --camera N)``: the capture SDK from a shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioverify.cli._context import console, print_json


def capture(
    launch_url: Annotated[str, typer.Argument(help="The session's launchUrl.")],
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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Complete a session's capture from image files or a camera."""
    if bool(image) == (camera is not None):
        raise typer.BadParameter("give either --image (one or more) or --camera")
    from bioverify.capture.camera import capture_from_camera  # noqa: PLC0415 - fast start
    from bioverify.capture.sdk import CaptureSession  # noqa: PLC0415

    with CaptureSession.from_launch_url(launch_url) as session:
        if image:
            outcome = session.submit(image)
        else:
            assert camera is not None
            source: int | str = int(camera) if camera.isdigit() else camera
            outcome = capture_from_camera(session, source, prompt=console().print)
    if as_json:
        print_json(
            {
                "status": outcome.status,
                "sessionId": outcome.session_id,
                "errorCodes": list(outcome.error_codes),
                "attemptsLeft": outcome.attempts_left,
                "remedy": outcome.remedy,
            }
        )
        return
    console().print(
        f"Session {outcome.session_id}: [bold]{outcome.status}[/bold] "
        f"{list(outcome.error_codes) or ''}"
    )
    if outcome.remedy:
        console().print(outcome.remedy)
    if outcome.status == "FAILED":
        raise typer.Exit(1)  # the session failed: a failure, not a misuse (2)


__all__ = ["capture"]
