"""Fixtures for the document tests: generated documents and one real reader."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bioverify.documents.generate import OCRB_FONT, Holder


@pytest.fixture(scope="session")
def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def holder(today: date) -> Holder:
    """A valid holder: adult, document valid for five more years."""
    return Holder(
        surname="Eriksson",
        given_names="Anna Maria",
        document_number="L898902C3",
        birth_date=date(1974, 8, 12),
        expiry_date=today + timedelta(days=5 * 365),
        sex="F",
    )


@pytest.fixture(scope="session")
def ocrb() -> None:
    """Generated documents are printed in Debian's OCR-B (scripts/install-documents.sh)."""
    if not OCRB_FONT.is_file():
        pytest.skip("fonts-ocr-b is not installed: run scripts/install-documents.sh")
