"""``identityInformation`` (API.md section 5) from what a document reading verified."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bioverify.documents.aamva import AamvaRecord
from bioverify.documents.mrz_fields import MrzRecord


@dataclass(frozen=True)
class PortraitCheck:
    """The document-to-selfie comparison: score and whether it reached the threshold."""

    score: float
    matched: bool


def is_expired(expiry: date, today: date) -> bool:
    """A document is valid through its expiry date and expired the day after."""
    return expiry < today


def identity_information(
    record: MrzRecord | AamvaRecord,
    *,
    portrait: PortraitCheck | None,
    today: date,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The wire object. ``checks.checkDigits`` is true for an MRZ (every 9303 digit held)
    and null for a PDF417, which has no check digits (its integrity is the symbol's
    Reed-Solomon error correction, which zxing-cpp verified when it decoded it)."""
    moment = now if now is not None else datetime.now(UTC)
    if isinstance(record, MrzRecord):
        document_type, issuing, nationality = (
            record.document_type,
            record.issuing_country,
            record.nationality,
        )
        check_digits: bool | None = True
    else:
        document_type, issuing, nationality = record.document_type, record.country, None
        check_digits = None
    return {
        "documentType": document_type,
        "issuingCountry": issuing,
        "documentNumber": record.document_number,
        "firstName": record.given_names,
        "lastName": record.surname,
        "dateOfBirth": record.birth_date.isoformat(),
        "expirationDate": record.expiry_date.isoformat(),
        "sex": record.sex,
        "nationality": nationality,
        # Epoch milliseconds as a string, as in PrivateID's documented example.
        "verificationDate": str(int(moment.timestamp() * 1000)),
        "portraitMatchScore": None if portrait is None else round(portrait.score, 4),
        "checks": {
            "checkDigits": check_digits,
            "expired": is_expired(record.expiry_date, today),
            "portraitMatch": None if portrait is None else portrait.matched,
        },
    }
