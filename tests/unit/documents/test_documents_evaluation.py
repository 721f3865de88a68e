"""``bioverify eval --documents`` on a few photos, and the pieces it is made of."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bioverify.cli.main import app as cli
from bioverify.documents.conditions import CONDITIONS, FRAME, photograph
from bioverify.documents.evaluation import ISSUER_ALPHABET, random_holder
from bioverify.documents.generate import Holder, render_mrz_document
from bioverify.documents.mrz_fields import MrzFormat
from fixtures_faces import labelled_identities


def test_random_holders_are_valid_adults_with_issuer_style_numbers() -> None:
    rng = np.random.default_rng(0)
    today = date(2026, 12, 2)
    for _ in range(200):
        holder = random_holder(rng, today)
        assert len(holder.document_number) == 9
        assert set(holder.document_number) <= set(ISSUER_ALPHABET)
        assert not set(holder.document_number) & set("IOQ")
        assert (today - holder.birth_date).days >= 18 * 365
        assert holder.expiry_date > today


@pytest.mark.usefixtures("ocrb")
@pytest.mark.parametrize("name", list(CONDITIONS))
def test_every_condition_yields_a_camera_frame(name: str, holder: Holder) -> None:
    frame = photograph(render_mrz_document(MrzFormat.TD3, holder, None).image)
    assert frame.shape == (FRAME[1], FRAME[0], 3)
    out = CONDITIONS[name](frame, 3)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (name == "clean") == bool(np.array_equal(out, frame))


@pytest.mark.models
@pytest.mark.slow
@pytest.mark.usefixtures("ocrb")
def test_eval_documents_writes_its_report_without_touching_the_thresholds(tmp_path: Path) -> None:
    by_person: dict[str, list[Path]] = {}
    for path, identity in labelled_identities():
        by_person.setdefault(identity, []).append(path)
    faces = tmp_path / "faces"
    faces.mkdir()
    rows = ["file,identity"]
    for identity in ("person01", "person08"):
        for path in by_person[identity][:2]:
            shutil.copy(path, faces / path.name)
            rows.append(f"{path.name},{identity}")
    (faces / "identities.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "--documents",
            "--faces",
            str(faces),
            "--out",
            str(out),
            "--ocr-sample",
            "1",
            "--no-write-thresholds",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "documents.json").read_text())
    assert set(report["conditions"]) == set(CONDITIONS)
    clean = report["conditions"]["clean"]
    assert clean["mrz_documents"] == 1 and clean["corrupted_documents"] == 1
    assert all(c["check_digit_false_accepts"] == 0 for c in report["conditions"].values())
    assert clean["portrait"]["genuine"]["count"] > 0
    assert clean["portrait"]["impostor"]["count"] > 0
    assert 0.0 < report["portrait_threshold"] < 1.0
    assert report["ocr_engine_chosen"] == "onnx-ppocrv5"
    assert "tesseract-eng" in report["ocr_engines"]
