"""Identity document sessions over HTTP: face first, then the document (API.md section 4).

Real models throughout (YuNet, SFace, the OCR model, zxing-cpp). Documents are made in
the test: valid MRZ lines from the ``mrz`` package printed in OCR-B, a real face photo
from tests/data/faces as the portrait, an AAMVA PDF417 on a licence back, then
photographed in software.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text
from standardwebhooks import Webhook
from test_capture_protocol import Capture, no_face_jpeg
from typer.testing import CliRunner

from bioverify.cli.main import app as cli
from bioverify.config import Settings
from bioverify.documents.conditions import photograph
from bioverify.documents.generate import (
    CHECK_DIGIT_POSITIONS,
    OCRB_FONT,
    Holder,
    corrupt_check_digit,
    render_id1_front,
    render_licence_back,
    render_mrz_document,
)
from bioverify.documents.mrz_fields import MrzFormat
from bioverify.documents.scanner import DocumentScanner
from bioverify.worker import Worker
from fixtures_faces import FACES, encode, file_bytes, load
from support import Creds, FakeClock, Receiver, assert_envelope, serve

pytestmark = [
    pytest.mark.models,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]

CREATE = "/v2/verification-session"
SELFIE = FACES / "img29.jpg"  # the session's selfie
SAME_PERSON = FACES / "img30.jpg"  # another photo of the same person: the printed portrait
STRANGER = FACES / "img34.jpg"  # someone else


@pytest.fixture(scope="module", autouse=True)
def _ocrb() -> None:
    if not OCRB_FONT.is_file():
        pytest.skip("fonts-ocr-b is not installed: run scripts/install-documents.sh")


@pytest.fixture(scope="module")
def scanner() -> Iterator[DocumentScanner]:
    """One document reader for the module (it loads the OCR and face models)."""
    shared = DocumentScanner()
    yield shared
    shared.close()


@pytest.fixture
def client(make_app: Callable[..., FastAPI], scanner: DocumentScanner) -> Iterator[httpx.Client]:
    with serve(make_app(document_scanner=scanner)) as http:
        yield http


@pytest.fixture
def holder() -> Holder:
    today = datetime.now(UTC).date()
    return Holder(
        surname="Eriksson",
        given_names="Anna Maria",
        document_number="L898902C3",
        birth_date=date(1974, 8, 12),
        expiry_date=today + timedelta(days=5 * 365),
        sex="F",
    )


def jpeg_of(document: Any, seed: int = 1) -> bytes:
    return encode(photograph(document, seed=seed), quality=92)


def passport(holder: Holder, portrait: Any = SAME_PERSON, **kw: Any) -> bytes:
    return jpeg_of(render_mrz_document(MrzFormat.TD3, holder, load(portrait), **kw).image)


def start(client: httpx.Client, creds: Creds, **fields: Any) -> tuple[Capture, str]:
    made = client.post(
        CREATE,
        json={
            "type": "ENROLL",
            "customerId": "anna",
            "liveness": "passive",
            "requirements": ["face", "identity_document"],
            **fields,
        },
        headers=creds.headers(),
    )
    assert made.status_code == 201, made.text
    capture = Capture(client, made.json()["launchUrl"])
    loaded = capture.load()
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["requirements"] == fields.get(
        "requirements", ["face", "identity_document"]
    )
    return capture, str(made.json()["sessionId"])


def face(capture: Capture, photo: bytes | None = None) -> httpx.Response:
    frames = [base64.b64encode(photo or file_bytes(SELFIE)).decode()]
    return capture.post("capture", capture.envelope("capture", capture.plaintext(frames=frames)))


def document(capture: Capture, image: bytes, side: str = "front") -> httpx.Response:
    plaintext = capture.plaintext(side=side, image=base64.b64encode(image).decode())
    return capture.post("document", capture.envelope("document", plaintext))


def read(client: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    return dict(client.get(f"{CREATE}/{session_id}", headers=creds.headers()).json())


def after_face(client: httpx.Client, creds: Creds, **fields: Any) -> tuple[Capture, str]:
    capture, session_id = start(client, creds, **fields)
    answer = face(capture)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "IN_PROGRESS"
    assert answer.json()["next"] == "document"
    return capture, session_id


def test_passport_of_the_selfies_person_succeeds_with_its_fields(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    capture, session_id = after_face(client, creds)
    answer = document(capture, passport(holder))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "SUCCESS", "sessionId": session_id}
    got = read(client, creds, session_id)
    assert got["status"] == "SUCCESS"
    info = got["identityInformation"]
    assert info["documentType"] == "passport"
    assert info["documentNumber"] == holder.document_number
    assert info["dateOfBirth"] == "1974-08-12"
    assert (info["firstName"], info["lastName"]) == ("ANNA MARIA", "ERIKSSON")
    assert info["checks"] == {"checkDigits": True, "expired": False, "portraitMatch": True}
    assert info["portraitMatchScore"] >= got["result"]["documentThreshold"]
    # The ENROLL enrolled the customer once the document passed.
    assert client.get("/v2/customers/anna", headers=creds.headers()).json()["enrolled"] is True
    # The polling route carries it too; the capture client never saw any of it.
    polled = client.get(f"{CREATE}/{session_id}/webhook", headers=creds.headers()).json()
    assert polled["identityInformation"]["documentNumber"] == holder.document_number
    assert holder.document_number not in answer.text


def test_another_persons_portrait_is_face_not_match(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    capture, session_id = after_face(client, creds)
    assert_envelope(document(capture, passport(holder, STRANGER)), 422, [-9])
    got = read(client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-9]
    assert got["identityInformation"]["checks"]["portraitMatch"] is False
    # A failed document ENROLL leaves no template behind.
    assert client.get("/v2/customers/anna", headers=creds.headers()).status_code == 404


def test_a_photo_without_a_document_is_a_diagnostic_then_fails_when_attempts_run_out(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    capture, session_id = after_face(client, creds, maxAttempts=2)
    first = document(capture, no_face_jpeg())
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "IN_PROGRESS"
    assert first.json()["errorCodes"] == [-23]
    assert first.json()["attemptsLeft"] == 1
    assert_envelope(document(capture, file_bytes(SELFIE)), 422, [-23])
    got = read(client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-23]
    assert got.get("identityInformation") is None


def test_one_corrupted_check_digit_is_never_a_success(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    clean = render_mrz_document(MrzFormat.TD3, holder, None)
    capture, session_id = after_face(client, creds)
    row, column = CHECK_DIGIT_POSITIONS[MrzFormat.TD3][1]  # the birth date's
    bad = corrupt_check_digit(clean.mrz_lines, (row, column))
    answer = document(capture, passport(holder, lines=bad))
    assert answer.status_code == 200, answer.text
    assert answer.json()["errorCodes"] == [-23]
    assert answer.json()["status"] == "IN_PROGRESS"
    # The same person's good passport on the next attempt still succeeds.
    assert document(capture, passport(holder)).json()["status"] == "SUCCESS"
    assert read(client, creds, session_id)["errorCodes"] == [-23]


def test_an_expired_passport_fails_with_checks_expired(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    expired = replace(holder, expiry_date=datetime.now(UTC).date() - timedelta(days=3))
    capture, session_id = after_face(client, creds)
    assert_envelope(document(capture, passport(expired)), 422, [-23])
    got = read(client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-23]
    assert got["identityInformation"]["checks"]["expired"] is True
    assert got["identityInformation"]["expirationDate"] == expired.expiry_date.isoformat()


def test_a_driving_licence_is_read_from_its_front_portrait_and_back_pdf417(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    capture, session_id = after_face(client, creds)
    front = render_id1_front(holder, load(SAME_PERSON))
    # The back before its front is refused without spending an attempt.
    early = document(capture, jpeg_of(render_licence_back(holder).image), side="back")
    assert_envelope(early, 400)
    answer = document(capture, jpeg_of(front.image))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "IN_PROGRESS", "sessionId": session_id, "next": "back"}
    back = document(capture, jpeg_of(render_licence_back(holder).image), side="back")
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "SUCCESS"
    got = read(client, creds, session_id)
    info = got["identityInformation"]
    assert info["documentNumber"] == holder.document_number
    assert info["dateOfBirth"] == "1974-08-12"
    assert info["checks"]["checkDigits"] is None  # a PDF417 has no check digits
    assert info["checks"]["portraitMatch"] is True
    assert got["attemptsLeft"] == 3


def test_the_document_comes_after_the_face_and_only_in_document_sessions(
    client: httpx.Client, creds: Creds, holder: Holder
) -> None:
    capture, _ = start(client, creds)
    assert (
        "face capture comes first"
        in assert_envelope(document(capture, passport(holder)), 400)["message"]
    )
    plain, _ = start(client, creds, requirements=["face"])
    assert face(plain).json()["status"] == "SUCCESS"
    assert_envelope(document(plain, passport(holder)), 409, [-15])


def test_document_fields_are_encrypted_at_rest_and_erased_with_the_customer(
    client: httpx.Client, creds: Creds, holder: Holder, db_engine: Engine
) -> None:
    capture, session_id = after_face(client, creds)
    assert document(capture, passport(holder)).json()["status"] == "SUCCESS"
    with db_engine.connect() as db:
        stored = db.execute(
            text("SELECT identity, document_state, result FROM sessions WHERE id = :id"),
            {"id": session_id},
        ).one()
    assert stored.identity is not None
    assert holder.document_number.encode() not in bytes(stored.identity)
    assert b"ERIKSSON" not in bytes(stored.identity)
    assert stored.document_state is None  # the selfie embedding went with the step
    assert holder.document_number not in json.dumps(stored.result)
    erased = client.delete("/v2/customers/anna", headers=creds.headers())
    assert erased.status_code == 204
    assert read(client, creds, session_id).get("identityInformation") is None


@pytest.fixture
def worker_app(
    settings: Settings, make_app: Callable[..., FastAPI], scanner: DocumentScanner
) -> FastAPI:
    """The app with its worker (dispatcher) running, on a real clock."""
    fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
    return make_app(
        settings=fast,
        run_worker=True,
        worker_factory=Worker,
        clock=lambda: dt.datetime.now(dt.UTC),
        document_scanner=scanner,
    )


def test_final_webhook_carries_identity_information_that_the_outbox_never_stores(
    worker_app: FastAPI, creds: Creds, holder: Holder, db_engine: Engine
) -> None:
    with Receiver() as receiver, serve(worker_app) as live:
        capture, session_id = after_face(live, creds, callback={"url": receiver.url})
        assert document(capture, passport(holder)).json()["status"] == "SUCCESS"
        [hook] = receiver.wait_for(1)
        Webhook(creds.webhook_secret).verify(hook.body, hook.headers)
        payload = hook.json()
        assert payload["sessionId"] == session_id
        assert payload["status"] == "SUCCESS"
        info = payload["identityInformation"]
        assert info["documentNumber"] == holder.document_number
        assert info["checks"]["checkDigits"] is True
        entries = live.get("/v2/audit/entries", headers=creds.headers()).json()["entries"]
    with db_engine.connect() as db:
        stored = db.execute(
            text("SELECT payload FROM webhook_outbox WHERE session_id = :id"), {"id": session_id}
        ).scalar_one()
    assert "identityInformation" not in stored
    assert holder.document_number not in stored
    # The audit log names the session's events, never what the document said.
    assert entries
    assert holder.document_number not in json.dumps(entries)
    assert "ERIKSSON" not in json.dumps(entries).upper()


def test_cli_captures_face_then_document_with_exit_codes(
    client: httpx.Client, creds: Creds, holder: Holder, tmp_path: Path
) -> None:
    def launch() -> str:
        made = client.post(
            CREATE,
            json={
                "type": "ENROLL",
                "liveness": "passive",
                "requirements": ["face", "identity_document"],
            },
            headers=creds.headers(),
        ).json()
        return str(made["launchUrl"]).replace("http://testserver", str(client.base_url))

    files = {
        "passport.jpg": passport(holder),
        "stranger.jpg": passport(holder, STRANGER),
        "front.jpg": jpeg_of(render_id1_front(holder, load(SAME_PERSON)).image),
        "back.jpg": jpeg_of(render_licence_back(holder).image),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    selfie = str(SELFIE)

    def run(url: str, *args: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(cli, ["capture", url, "--image", selfie, *args, "--json"])
        return result.exit_code, json.loads(result.stdout) if result.exit_code in {0, 1} else {}

    code, body = run(launch(), "--document", str(tmp_path / "passport.jpg"))
    assert (code, body["status"], body["next"]) == (0, "SUCCESS", None)
    code, body = run(launch(), "--document", str(tmp_path / "stranger.jpg"))
    assert (code, body["status"], body["errorCodes"]) == (1, "FAILED", [-9])
    code, body = run(
        launch(),
        "--document",
        str(tmp_path / "front.jpg"),
        "--document-back",
        str(tmp_path / "back.jpg"),
    )
    assert (code, body["status"]) == (0, "SUCCESS")
    # The front alone leaves the session waiting for its back (not a failure).
    code, body = run(launch(), "--document", str(tmp_path / "front.jpg"))
    assert (code, body["status"], body["next"]) == (0, "IN_PROGRESS", "back")
    misuse = CliRunner().invoke(
        cli, ["capture", launch(), "--document-back", str(tmp_path / "back.jpg")]
    )
    assert misuse.exit_code == 2


def test_an_expired_session_drops_the_kept_selfie(
    client: httpx.Client, creds: Creds, clock: FakeClock, db_engine: Engine
) -> None:
    _, session_id = after_face(client, creds, sessionExpiry=60)

    def kept() -> bytes | None:
        with db_engine.connect() as db:
            value = db.execute(
                text("SELECT document_state FROM sessions WHERE id = :id"), {"id": session_id}
            ).scalar_one()
        return None if value is None else bytes(value)

    assert kept() is not None  # encrypted, while the document step is open
    clock.advance(61)
    assert read(client, creds, session_id)["errorCodes"] == [-8]
    assert kept() is None
