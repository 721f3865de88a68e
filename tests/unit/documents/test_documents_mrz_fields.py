"""TD1/TD2/TD3 parsing: lines written by the mrz package, corrections, every check digit."""

from __future__ import annotations

import string
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.documents.checkdigits import check_digit
from bioverify.documents.generate import (
    CHECK_DIGIT_POSITIONS,
    Holder,
    corrupt_check_digit,
    mrz_lines,
)
from bioverify.documents.mrz_fields import MrzError, MrzFormat, parse_mrz

TODAY = date(2026, 12, 2)
TD3_SPECIMEN = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)


def test_td3_specimen_of_9303_part_4() -> None:
    record = parse_mrz(TD3_SPECIMEN, today=TODAY)
    assert record.format is MrzFormat.TD3
    assert record.document_type == "passport"
    assert (record.issuing_country, record.nationality) == ("UTO", "UTO")
    assert record.document_number == "L898902C3"
    assert (record.surname, record.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert record.birth_date == date(1974, 8, 12)
    assert record.expiry_date == date(2012, 4, 15)
    assert record.sex == "F"
    assert record.optional_data == "ZE184226B"


holders = st.builds(
    Holder,
    # TD1's name field holds 30 characters: 11 + '<<' + 8 + '<' + 8 fits without
    # truncation, so the round trip is exact (12 overflowed it: a seed-dependent failure).
    surname=st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=11),
    given_names=st.lists(
        st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8), min_size=1, max_size=2
    ).map(" ".join),
    document_number=st.text(
        alphabet=string.ascii_uppercase + string.digits, min_size=9, max_size=9
    ),
    birth_date=st.dates(min_value=date(1930, 1, 1), max_value=TODAY - timedelta(days=1)),
    expiry_date=st.dates(min_value=date(2001, 1, 1), max_value=date(2060, 12, 31)),
    sex=st.sampled_from(["F", "M"]),
    nationality=st.sampled_from(["UTO", "D", "NLD"]),
    issuing_country=st.sampled_from(["UTO", "FRA"]),
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(MrzFormat)), holders)
def test_every_layout_round_trips_through_the_mrz_package(fmt: MrzFormat, holder: Holder) -> None:
    record = parse_mrz(mrz_lines(fmt, holder), today=TODAY)
    assert record.format is fmt
    assert record.document_number == holder.document_number
    assert record.birth_date == holder.birth_date
    assert record.expiry_date == holder.expiry_date
    assert record.sex == holder.sex
    assert record.nationality == holder.nationality.strip("<")
    assert record.issuing_country == holder.issuing_country
    assert record.surname == holder.surname
    assert record.given_names == holder.given_names
    assert record.document_type == ("passport" if fmt is MrzFormat.TD3 else "id_card")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(MrzFormat)), holders, st.data())
def test_a_corrupted_check_digit_is_never_accepted(
    fmt: MrzFormat, holder: Holder, data: st.DataObject
) -> None:
    lines = mrz_lines(fmt, holder)
    position = data.draw(st.sampled_from(CHECK_DIGIT_POSITIONS[fmt]))
    row, column = position
    if not lines[row][column].isdigit():  # a filler optional check digit has nothing to bump
        return
    with pytest.raises(MrzError, match="check_digit"):
        parse_mrz(corrupt_check_digit(lines, position), today=TODAY)


@pytest.mark.parametrize("fmt", list(MrzFormat))
def test_each_check_digit_of_each_layout_is_verified(fmt: MrzFormat, holder: Holder) -> None:
    lines = mrz_lines(fmt, holder)
    for position in CHECK_DIGIT_POSITIONS[fmt]:
        if not lines[position[0]][position[1]].isdigit():
            continue
        with pytest.raises(MrzError, match="check_digit"):
            parse_mrz(corrupt_check_digit(lines, position), today=TODAY)


def test_character_classes_are_corrected_field_by_field() -> None:
    top, bottom = TD3_SPECIMEN
    # OCR-style confusions: O for 0 in dates and check digits, 0 for O in the country
    # code and the name, 1 for I in the name.
    noisy_top = top.replace("UTOERIKSSON", "UT0ER1KSS0N")
    noisy_bottom = bottom.replace("7408122", "74O8l22".upper()).replace("UTO", "UT0")
    record = parse_mrz((noisy_top, noisy_bottom), today=TODAY)
    assert record.surname == "ERIKSSON"
    assert record.issuing_country == "UTO"
    assert record.nationality == "UTO"
    assert record.birth_date == date(1974, 8, 12)


def test_document_numbers_are_not_class_corrected() -> None:
    """An O read for a 0 in the number is refused, not guessed (no OCR doubt was given)."""
    top, bottom = TD3_SPECIMEN
    with pytest.raises(MrzError, match="check_digit:document_number"):
        parse_mrz((top, "L8989O2C3" + bottom[9:]), today=TODAY)


def test_an_ocr_doubt_is_resolved_only_by_a_unique_passing_reading() -> None:
    top, bottom = TD3_SPECIMEN
    misread = "L8989I2C3" + bottom[9:]  # the engine said I, with 0 as its runner-up
    record = parse_mrz((top, misread), today=TODAY, doubts=[{}, {5: "0"}])
    assert record.document_number == "L898902C3"
    # Without the doubt the same line is refused.
    with pytest.raises(MrzError):
        parse_mrz((top, misread), today=TODAY)


def test_a_doubt_the_check_digit_cannot_decide_is_refused() -> None:
    """G (16) and 6 differ by 10: both readings pass the 7-3-1 sum, so neither is taken,
    not even the one the engine preferred."""
    holder = Holder("DOE", "JO", "AB6D12345", date(1990, 1, 1), date(2031, 1, 1))
    top, bottom = mrz_lines(MrzFormat.TD3, holder)
    misread = "ABGD12345" + bottom[9:]
    with pytest.raises(MrzError):
        parse_mrz((top, misread), today=TODAY, doubts=[{}, {2: "6"}])


def test_td1_long_document_number_continues_in_the_optional_field() -> None:
    # 9303 part 5 note j: 12-character number "D23145890AB7", digit after it, filler at 14.
    number = "D23145890AB7"
    digit = check_digit(number)
    first = f"I<UTO{number[:9]}<{number[9:]}{digit}".ljust(30, "<")
    second_body = "7408122F1204159UTO<<<<<<<<<<<"
    composite = check_digit(first[5:30] + second_body[0:7] + second_body[8:15] + second_body[18:29])
    lines = (first, second_body + composite, "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
    record = parse_mrz(lines, today=TODAY)
    assert record.document_number == number


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ((), "line_count"),
        (("P<UTO",), "line_count"),
        ((TD3_SPECIMEN[0], TD3_SPECIMEN[1][:-3]), "line_length"),
        ((TD3_SPECIMEN[0], TD3_SPECIMEN[1][:20] + "#" + TD3_SPECIMEN[1][21:]), "characters"),
    ],
)
def test_malformed_zones_are_refused_with_a_reason(lines: tuple[str, ...], reason: str) -> None:
    with pytest.raises(MrzError) as caught:
        parse_mrz(lines, today=TODAY)
    assert caught.value.reason == reason


def test_chevron_lookalikes_and_spaces_are_normalised() -> None:
    top, bottom = TD3_SPECIMEN
    record = parse_mrz(
        (top.replace("<<", "\u00ab<", 1), " ".join(bottom[:22]) + bottom[22:]), today=TODAY
    )
    assert record.document_number == "L898902C3"


def test_century_of_dates() -> None:
    holder = Holder("DOE", "JO", "X1234567Z", date(2010, 5, 1), date(2035, 5, 1))
    record = parse_mrz(mrz_lines(MrzFormat.TD3, holder), today=TODAY)
    assert record.birth_date == date(2010, 5, 1)  # not 1910: not in the future
    assert record.expiry_date == date(2035, 5, 1)
