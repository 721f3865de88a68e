"""ICAO 9303 check digits (Doc 9303 part 3, section 4.9): weights 7, 3, 1 repeating.

Digits count as themselves, ``A``-``Z`` as 10-35 and the filler ``<`` as 0. Any
other character makes a field invalid rather than silently counting as zero.
"""

from __future__ import annotations

from typing import Final

_WEIGHTS: Final = (7, 3, 1)
FILLER: Final = "<"


def char_value(char: str) -> int:
    """The value of one MRZ character; ``ValueError`` for characters outside the MRZ set."""
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == FILLER:
        return 0
    raise ValueError(f"{char!r} is not an MRZ character")


def check_digit(field: str) -> str:
    """The check digit of ``field`` as one character ``0``-``9``."""
    total = sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field))
    return str(total % 10)


def is_valid(field: str, digit: str, *, optional: bool = False) -> bool:
    """True when ``digit`` is ``field``'s check digit.

    A filler ``<`` in the check-digit position is accepted only when ``optional``
    (the TD3 personal number) and the field is entirely filler (9303 part 4); everywhere
    else a digit is required. Characters outside the MRZ set never validate.
    """
    if digit == FILLER:
        return optional and bool(field) and set(field) == {FILLER}
    if len(digit) != 1 or not digit.isdigit():
        return False
    try:
        return check_digit(field) == digit
    except ValueError:
        return False
