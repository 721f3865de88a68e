"""ICAO 9303 machine-readable zones: layouts, per-field character-class correction,
parsing and the verification of every check digit (TD1, TD2, TD3).

OCR confuses characters across classes (``0``/``O``, ``1``/``I``, ``5``/``S``,
``8``/``B``). Where 9303 fixes a field's class (dates and check digits are digits;
country codes, names and sex are letters or filler) the confusion is undone
position by position. Alphanumeric fields (document number, optional data) are
never guessed at: only their check digits decide, so a misread number is rejected,
not "repaired" into something that happens to validate.

The one exception is a document number character the OCR itself was unsure of
(its runner-up class had real probability, e.g. ``1`` 0.54 / ``I`` 0.45). Both
readings are tried at up to :data:`MAX_AMBIGUOUS` such positions, and a
combination (the engine's own reading included) is accepted only when it is the
*only* one that satisfies the number's check digit and the composite check digit;
two passing is ambiguity, and is refused, so a pair the 7-3-1 sum cannot tell
apart (``G``/``6``, ``U``/``0``: values 10 or 30 apart) is never guessed at, even
when the engine's first choice passes. Printed check digits are never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import product
from types import MappingProxyType
from typing import Final

from bioverify.documents.checkdigits import FILLER, is_valid


class MrzFormat(StrEnum):
    """The three 9303 layouts: ID-1 cards (3x30), ID-2 cards (2x36), passports (2x44)."""

    TD1 = "TD1"
    TD2 = "TD2"
    TD3 = "TD3"


#: (characters per line, lines) of each layout.
SHAPE: Final[Mapping[MrzFormat, tuple[int, int]]] = MappingProxyType(
    {MrzFormat.TD1: (30, 3), MrzFormat.TD2: (36, 2), MrzFormat.TD3: (44, 2)}
)

_TO_DIGIT: Final = str.maketrans("OQDUILZSBGT", "00001125867")
_TO_ALPHA: Final = str.maketrans("0124568", "OIZASGB")
#: Characters OCR engines return for the filler chevron.
_FILLER_LOOKALIKES: Final = str.maketrans(
    dict.fromkeys("\u00ab\u2039\u3008\uff1c\u304f\u2264", FILLER)
)
_VALID_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
#: At most this many uncertain positions are resolved (2**4 = 16 combinations).
MAX_AMBIGUOUS: Final = 4


class MrzError(ValueError):
    """The lines are not a valid MRZ; ``reason`` names what failed (never the data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MrzRecord:
    """A parsed MRZ whose every check digit verified."""

    format: MrzFormat
    document_code: str
    issuing_country: str
    document_number: str
    surname: str
    given_names: str
    nationality: str
    birth_date: date
    expiry_date: date
    sex: str
    optional_data: str

    @property
    def document_type(self) -> str:
        """``passport`` for ``P`` documents, ``visa`` for ``V``, otherwise ``id_card``."""
        first = self.document_code[:1]
        if first == "P":
            return "passport"
        if first == "V":
            return "visa"
        return "id_card"


def normalise_line(raw: str) -> str:
    """Upper-case, chevron look-alikes to ``<``, spaces dropped."""
    return "".join(raw.upper().translate(_FILLER_LOOKALIKES).split())


def guess_format(lines: Sequence[str]) -> MrzFormat:
    """The layout whose shape is nearest to ``lines`` (count first, then length)."""
    if len(lines) == 3:
        return MrzFormat.TD1
    if len(lines) != 2:
        raise MrzError("line_count")
    mean = sum(len(line) for line in lines) / 2
    return MrzFormat.TD3 if abs(mean - 44) < abs(mean - 36) else MrzFormat.TD2


def _fit_name_line(line: str, length: int) -> str:
    """Pad or trim trailing filler of a names line (its end is always filler or name)."""
    if len(line) < length:
        return line + FILLER * (length - len(line))
    if len(line) > length and set(line[length:]) <= {FILLER}:
        return line[:length]
    return line


def _digits(text: str) -> str:
    return text.translate(_TO_DIGIT)


def _letters(text: str) -> str:
    return text.translate(_TO_ALPHA)


def _check(field: str, digit: str, name: str, *, optional: bool = False) -> None:
    if not is_valid(field, digit, optional=optional):
        raise MrzError(f"check_digit:{name}")


def _resolve_number(
    number: str,
    digit: str,
    composite_holds: Callable[[str], bool],
    doubts: Mapping[int, str],
) -> str:
    """The document number whose check digit and composite both hold (see module doc).

    ``doubts`` maps positions in ``number`` to the OCR's runner-up character there.
    """
    positions = sorted(i for i in doubts if i < len(number) and doubts[i] in _VALID_CHARS)
    if len(positions) > MAX_AMBIGUOUS:
        raise MrzError("check_digit:document_number")
    passing: list[str] = []
    for choice in product((False, True), repeat=len(positions)):
        chars = list(number)
        for swap, i in zip(choice, positions, strict=True):
            if swap:
                chars[i] = doubts[i]
        candidate = "".join(chars)
        if is_valid(candidate, digit) and composite_holds(candidate):
            passing.append(candidate)
    if len(passing) != 1:
        raise MrzError("check_digit:document_number")
    return passing[0]


def _date(text: str, kind: str, today: date) -> date:
    if not text.isdigit():
        raise MrzError(f"date:{kind}")
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:6])
    try:
        if kind == "birth":
            # A birth date is never in the future: 2000s unless that would be.
            value = date(2000 + yy, mm, dd)
            return value if value <= today else date(1900 + yy, mm, dd)
        # Expiry dates are at most a few decades ahead; older ones are expired.
        century = 2000 if 2000 + yy <= today.year + 50 else 1900
        return date(century + yy, mm, dd)
    except ValueError as exc:
        raise MrzError(f"date:{kind}") from exc


def _names(field: str) -> tuple[str, str]:
    surname, _, given = field.strip(FILLER).partition(FILLER * 2)
    clean = [part.replace(FILLER, " ").strip() for part in (surname, given)]
    return clean[0], " ".join(clean[1].split())


def _sex(char: str) -> str:
    if char not in {"M", "F", "X", FILLER}:
        raise MrzError("sex")
    return "X" if char == FILLER else char


def parse_mrz(
    raw_lines: Sequence[str],
    *,
    today: date,
    doubts: Sequence[Mapping[int, str]] | None = None,
) -> MrzRecord:
    """Correct, parse and verify an MRZ; :class:`MrzError` unless every check digit holds.

    ``doubts`` (one mapping per raw line, from the OCR) gives the runner-up character
    at positions where the OCR was unsure; only document numbers use them.
    """
    kept = [(normalise_line(line), i) for i, line in enumerate(raw_lines)]
    kept = [(line, i) for line, i in kept if line]
    lines = [line for line, _ in kept]
    line_doubts: list[Mapping[int, str]] = []
    for line, i in kept:
        # Positions are only meaningful when normalising did not move characters.
        same = doubts is not None and i < len(doubts) and len(line) == len(raw_lines[i])
        line_doubts.append(doubts[i] if same and doubts is not None else {})
    fmt = guess_format(lines)
    width, count = SHAPE[fmt]
    name_row = 2 if fmt is MrzFormat.TD1 else 0
    lines[name_row] = _fit_name_line(lines[name_row], width)
    if len(lines) != count or any(len(line) != width for line in lines):
        raise MrzError("line_length")
    if any(set(line) - _VALID_CHARS for line in lines):
        raise MrzError("characters")
    if fmt is MrzFormat.TD1:
        return _parse_td1(lines, today, line_doubts[0])
    return _parse_two_line(lines, fmt, today, line_doubts[1])


def _parse_two_line(
    lines: list[str], fmt: MrzFormat, today: date, doubts: Mapping[int, str]
) -> MrzRecord:
    top, bottom = lines
    width = SHAPE[fmt][0]
    top = top[:2] + _letters(top[2:5]) + _letters(top[5:])
    # Line 2: number(9) cd nationality(3) birth(6) cd sex expiry(6) cd optional... cd
    number, number_cd = bottom[0:9], _digits(bottom[9])
    nationality = _letters(bottom[10:13])
    birth, birth_cd = _digits(bottom[13:19]), _digits(bottom[19])
    sex = _letters(bottom[20])
    expiry, expiry_cd = _digits(bottom[21:27]), _digits(bottom[27])
    if fmt is MrzFormat.TD3:
        optional, optional_cd = bottom[28:42], _digits(bottom[42])
        composite_cd = _digits(bottom[43])
        _check(optional, optional_cd, "optional", optional=True)
        tail = birth + birth_cd + expiry + expiry_cd + optional + optional_cd
    else:
        optional, composite_cd = bottom[28:35], _digits(bottom[35])
        tail = birth + birth_cd + expiry + expiry_cd + optional
    _check(birth, birth_cd, "birth_date")
    _check(expiry, expiry_cd, "expiry_date")
    number = _resolve_number(
        number,
        number_cd,
        lambda n: is_valid(n + number_cd + tail, composite_cd),
        {i: c for i, c in doubts.items() if i < 9},
    )
    surname, given = _names(top[5:width])
    return MrzRecord(
        format=fmt,
        document_code=top[0:2].strip(FILLER),
        issuing_country=top[2:5].strip(FILLER),
        document_number=number.strip(FILLER),
        surname=surname,
        given_names=given,
        nationality=nationality.strip(FILLER),
        birth_date=_date(birth, "birth", today),
        expiry_date=_date(expiry, "expiry", today),
        sex=_sex(sex),
        optional_data=optional.strip(FILLER),
    )


def _parse_td1(lines: list[str], today: date, doubts: Mapping[int, str]) -> MrzRecord:
    first, second, third = lines
    issuing = _letters(first[2:5])
    number, number_cd, optional1 = first[5:14], _digits(first[14]), first[15:30]
    full_number = number
    if number_cd == FILLER:
        # 9303 part 5: a number longer than 9 characters continues in the optional
        # field, its check digit being the last character before the filler.
        extension = optional1.split(FILLER, 1)[0]
        if len(extension) < 2:
            raise MrzError("check_digit:document_number")
        full_number, number_cd = number + extension[:-1], _digits(extension[-1])
        optional1 = optional1[len(extension) :]
    birth, birth_cd = _digits(second[0:6]), _digits(second[6])
    sex = _letters(second[7])
    expiry, expiry_cd = _digits(second[8:14]), _digits(second[14])
    nationality, optional2 = _letters(second[15:18]), second[18:29]
    composite_cd = _digits(second[29])
    _check(birth, birth_cd, "birth_date")
    _check(expiry, expiry_cd, "expiry_date")
    tail = birth + birth_cd + expiry + expiry_cd + optional2

    def composite_holds(candidate: str) -> bool:
        # The composite covers line 1 from the number on: put the candidate's
        # characters where the number is printed (after the filler when it is long).
        segment = list(first[5:30])
        segment[0:9] = candidate[:9]
        segment[10 : 10 + len(candidate) - 9] = candidate[9:]
        return is_valid("".join(segment) + tail, composite_cd)

    # Line-1 columns of the number's characters: 5-13, then 15 on for a long number.
    columns = [*range(5, 14), *range(15, 15 + len(full_number) - 9)]
    number_doubts = {k: doubts[col] for k, col in enumerate(columns) if col in doubts}
    full_number = _resolve_number(full_number, number_cd, composite_holds, number_doubts)
    surname, given = _names(_letters(third))
    return MrzRecord(
        format=MrzFormat.TD1,
        document_code=first[0:2].strip(FILLER),
        issuing_country=issuing.strip(FILLER),
        document_number=full_number.strip(FILLER),
        surname=surname,
        given_names=given,
        nationality=nationality.strip(FILLER),
        birth_date=_date(birth, "birth", today),
        expiry_date=_date(expiry, "expiry", today),
        sex=_sex(sex),
        optional_data=(optional1 + optional2).strip(FILLER),
    )
