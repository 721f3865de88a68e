"""identityInformation (API.md section 5) and expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bioverify.documents.aamva import parse_aamva
from bioverify.documents.generate import Holder, aamva_text, mrz_lines
from bioverify.documents.identity import PortraitCheck, identity_information, is_expired
from bioverify.documents.mrz_fields import MrzFormat, parse_mrz

TODAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_expired_the_day_after_the_expiry_date() -> None:
    assert not is_expired(TODAY, TODAY)
    assert is_expired(date(2026, 12, 1), TODAY)


def test_passport_identity_information_has_the_wire_fields() -> None:
    holder = Holder("Eriksson", "Anna Maria", "L898902C3", date(1974, 8, 12), date(2032, 4, 15))
    record = parse_mrz(mrz_lines(MrzFormat.TD3, holder), today=TODAY)
    info = identity_information(record, portrait=PortraitCheck(0.71234, True), today=TODAY, now=NOW)
    assert info == {
        "documentType": "passport",
        "issuingCountry": "UTO",
        "documentNumber": "L898902C3",
        "firstName": "ANNA MARIA",
        "lastName": "ERIKSSON",
        "dateOfBirth": "1974-08-12",
        "expirationDate": "2032-04-15",
        "sex": "F",
        "nationality": "UTO",
        "verificationDate": str(int(NOW.timestamp() * 1000)),
        "portraitMatchScore": 0.7123,
        "checks": {"checkDigits": True, "expired": False, "portraitMatch": True},
    }


def test_an_expired_passport_says_so() -> None:
    holder = Holder("Doe", "Jo", "X1234567Z", date(1980, 1, 1), date(2025, 1, 1))
    record = parse_mrz(mrz_lines(MrzFormat.TD3, holder), today=TODAY)
    info = identity_information(record, portrait=None, today=TODAY, now=NOW)
    assert info["checks"]["expired"] is True
    assert info["checks"]["portraitMatch"] is None


def test_a_licence_has_no_check_digits_to_claim() -> None:
    holder = Holder("Doe", "John", "D1234567", date(1986, 6, 6), date(2030, 12, 10), "M")
    info = identity_information(
        parse_aamva(aamva_text(holder)), portrait=None, today=TODAY, now=NOW
    )
    assert info["documentType"] == "driving_licence"
    assert info["issuingCountry"] == "USA"
    assert info["nationality"] is None
    assert info["checks"]["checkDigits"] is None
