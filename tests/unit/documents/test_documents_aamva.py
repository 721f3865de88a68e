"""AAMVA DL/ID payloads: generated ones, version 1 layouts, Canadian dates, bad input."""

from __future__ import annotations

from datetime import date

import pytest

from bioverify.documents.aamva import AamvaError, parse_aamva
from bioverify.documents.generate import Holder, aamva_text

HOLDER = Holder("Doe", "John Quincy", "D12345678", date(1986, 6, 6), date(2030, 12, 10), "M")


def _payload(
    elements: list[str], *, header: str = "@\n\x1e\rANSI 636000090002", kind: str = "DL"
) -> str:
    body = kind + "\n".join(elements) + "\r"
    designator = f"{kind}{len(header) + 10:04d}{len(body):04d}"
    return header[:-2] + "01" + designator + body


def test_generated_payload_parses_to_the_holder() -> None:
    record = parse_aamva(aamva_text(HOLDER))
    assert record.document_type == "driving_licence"
    assert record.issuer_id == "636000"
    assert record.version == 10
    assert record.document_number == "D12345678"
    assert (record.surname, record.given_names) == ("DOE", "JOHN QUINCY")
    assert record.birth_date == date(1986, 6, 6)
    assert record.expiry_date == date(2030, 12, 10)
    assert record.sex == "M"
    assert (record.jurisdiction, record.country) == ("VA", "USA")


def test_an_id_card_subfile_is_an_id_card() -> None:
    text = _payload(
        ["DAQ123", "DCSROE", "DACJANE", "DBB01021990", "DBA01022031", "DBC2"], kind="ID"
    )
    record = parse_aamva(text)
    assert record.document_type == "id_card"
    assert record.sex == "F"


def test_canadian_issuers_write_ccyymmdd() -> None:
    text = _payload(
        ["DAQ9876", "DCSTREMBLAY", "DACMARIE", "DBB19900102", "DBA20310203", "DCGCAN", "DBC2"]
    )
    record = parse_aamva(text)
    assert record.birth_date == date(1990, 1, 2)
    assert record.expiry_date == date(2031, 2, 3)


def test_wrong_offsets_fall_back_to_the_subfile_type() -> None:
    good = aamva_text(HOLDER)
    broken = good.replace("DL0031", "DL0099", 1)  # a card whose designator lies
    assert parse_aamva(broken).document_number == "D12345678"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello world", "header"),
        ("@\n\x1e\rANSI 6360000900010Z00310010ZZ\r", "subfile"),
        (_payload(["DCSDOE", "DBB01021990", "DBA01022031"]), "fields"),
        (_payload(["DAQ1", "DCSDOE", "DBB13451990", "DBA01022031"]), "date:birth"),
        (_payload(["DAQ1", "DCSDOE", "DBB01021990"]), "date:expiry"),
    ],
)
def test_unusable_payloads_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(AamvaError) as caught:
        parse_aamva(text)
    assert caught.value.reason == reason
