"""After the functional tests: no frame bytes, no plaintext templates, no secrets at rest
or in logs.

Named to run last in this folder: it scans every SQLite store, data directory and key
ring the run created (the run's temporary folder) and every log line the service
wrote. It first runs its own enrol/verify so the scan never passes on an empty run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import test_documents_e2e as documents
from test_biometrics_e2e import Faces, enrol, faces, start, submit  # noqa: F401

from bioverify.documents.generate import OCRB_FONT, Holder, render_mrz_document
from bioverify.documents.mrz_fields import MrzFormat
from bioverify.engine.interfaces import LivenessMode
from bioverify.engine.pipeline import LocalEngine
from fixtures_faces import load
from support import Creds

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _chunks(data: bytes, size: int = 48, count: int = 6) -> list[bytes]:
    """Distinctive slices from the middle of an encoded image (past its headers)."""
    body = data[len(data) // 4 : 3 * len(data) // 4]
    step = max(1, (len(body) - size) // count)
    return [body[i : i + size] for i in range(0, step * count, step)]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 0]


@pytest.mark.models
def test_no_frames_templates_or_secrets_at_rest_or_in_logs(
    app_client: httpx.Client,
    creds: Creds,
    faces: Faces,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    service_log: Path,
) -> None:
    enrol(app_client, creds, faces.alice, "privacy-alice")
    capture, _ = start(app_client, creds, "VERIFY", customerId="privacy-alice")
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    # A document session: its image and what it says must not be at rest or in logs.
    if not OCRB_FONT.is_file():
        pytest.skip("fonts-ocr-b is not installed: run scripts/install-documents.sh")
    holder = Holder(
        surname="Quillfeather",
        given_names="Odile",
        document_number="PRV4821X7",
        birth_date=date(1981, 3, 17),
        expiry_date=datetime.now(UTC).date() + timedelta(days=900),
    )
    # Its own background and framing (seeds): other tests' input files in the run's
    # folder must not share byte runs with it by chance.
    passport = documents.jpeg_of(
        render_mrz_document(MrzFormat.TD3, holder, load(documents.SAME_PERSON), seed=11).image,
        seed=12,
    )
    doc_capture, doc_session = documents.after_face(app_client, creds, customerId="privacy-doc")
    assert documents.document(doc_capture, passport).json()["status"] == "SUCCESS"
    read = documents.read(app_client, creds, doc_session)
    assert read["identityInformation"]["documentNumber"] == holder.document_number
    fields = [b"PRV4821X7", b"QUILLFEATHER", b"Quillfeather", b"1981-03-17", b"810317"]

    engine = LocalEngine()
    templates = []
    for photo in (faces.alice, faces.alice_again, faces.stranger):
        analysis = engine.analyze_sync(
            [photo],
            liveness=LivenessMode.PASSIVE,
            challenge=None,
            frame_times=None,
            want_portrait=False,
        )
        assert analysis.embedding is not None
        raw = analysis.embedding.astype("float32").tobytes()
        templates += [raw[:64], raw[256:320]]
    frames = [
        c
        for photo in (faces.alice, faces.alice_again, faces.stranger, faces.group, passport)
        for c in _chunks(photo)
    ]
    secrets = [
        creds.api_key.encode(),
        (creds.client_secret or "").encode(),
        creds.webhook_secret.encode(),
    ]
    root = tmp_path_factory.getbasetemp()
    scanned = _files(root)
    stores = [p for p in scanned if p.name.startswith("bioverify.sqlite3")]
    assert stores, "the scan found no store to look at"
    leaks = []
    for path in scanned:
        if path.suffix in {".pem", ".key"} or path.parent.name == "keys":
            continue  # key material lives there by design (0600)
        data = path.read_bytes()
        for label, needles in (
            ("frame", frames),
            ("template", templates),
            ("document field", fields),
        ):
            if any(n in data for n in needles):
                leaks.append(f"{label} bytes in {path.relative_to(root)}")
        if path.name != "demo-client.json" and any(s and s in data for s in secrets):
            leaks.append(f"a credential in {path.relative_to(root)}")
    assert leaks == []
    log = service_log.read_bytes()
    assert log, "the service wrote no log lines to scan"
    token = capture.token.encode()
    for needle in [*secrets, token, doc_capture.token.encode()]:
        assert needle not in log
    assert not any(n in log for n in frames + templates + fields)
