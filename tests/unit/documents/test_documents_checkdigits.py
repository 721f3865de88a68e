"""ICAO 9303 check digits: the standard's own examples, and corruption always caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mrz.base.functions import hash_string

from bioverify.documents.checkdigits import char_value, check_digit, is_valid

MRZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
fields = st.text(alphabet=MRZ_CHARS, min_size=1, max_size=39)


@pytest.mark.parametrize(
    ("field", "digit"),
    [
        ("L898902C3", "6"),  # 9303 part 4 specimen: document number
        ("740812", "2"),  # date of birth
        ("120415", "9"),  # date of expiry
        ("ZE184226B<<<<<", "1"),  # personal number
        ("D23145890", "7"),  # part 5 TD1 specimen
    ],
)
def test_specimen_check_digits(field: str, digit: str) -> None:
    assert check_digit(field) == digit
    assert is_valid(field, digit)


@settings(deadline=None)
@given(fields)
def test_agrees_with_the_mrz_package(field: str) -> None:
    assert check_digit(field) == hash_string(field)


@settings(deadline=None)
@given(fields, st.integers(min_value=1, max_value=9))
def test_a_corrupted_check_digit_is_never_accepted(field: str, shift: int) -> None:
    wrong = str((int(check_digit(field)) + shift) % 10)
    assert not is_valid(field, wrong)


@settings(deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=6, max_size=9),
    st.data(),
)
def test_any_single_digit_change_in_a_numeric_field_is_caught(
    field: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(field) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != field[position]]))
    changed = field[:position] + new + field[position + 1 :]
    assert not is_valid(changed, check_digit(field))


def test_filler_check_digit_only_for_an_empty_optional_field() -> None:
    assert is_valid("<<<<<<<<<<<<<<", "<", optional=True)
    assert not is_valid("<<<<<<<<<<<<<<", "<")  # a required field never has a filler digit
    assert not is_valid("ZE184226B<<<<<", "<", optional=True)


def test_characters_outside_the_mrz_set_never_validate() -> None:
    with pytest.raises(ValueError, match="not an MRZ character"):
        char_value("a")
    assert not is_valid("L89890#C3", "6")
    assert not is_valid("L898902C3", "X")
