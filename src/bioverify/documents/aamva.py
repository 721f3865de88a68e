"""AAMVA DL/ID card data (the PDF417 on North American licences), parsed.

Layout (AAMVA DL/ID Card Design Standard, annex D): a header ``@ LF RS CR``, the file
type ``ANSI `` (``AAMVA`` before 2000), the issuer's 6-digit IIN, the standard's
version, the jurisdiction's version, the number of subfiles, then one designator per
subfile (type, offset, length) and the subfiles, each a type (``DL``/``ID``) followed
by elements: a three-letter id and its value, separated by line feeds.

Real cards often get the offsets wrong, so when a designator does not point at its
subfile the elements are read from the text after the subfile type instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

_HEADER: Final = re.compile(r"@\n?\x1e?\r?(ANSI |AAMVA)(\d{6})(\d{2})(\d{2})?(\d{2})")
_ELEMENT: Final = re.compile(r"^[A-Z]{3}$")
_SEX: Final = {"1": "M", "2": "F", "9": "X", "M": "M", "F": "F", "X": "X"}


class AamvaError(ValueError):
    """Not an AAMVA payload, or a required element is missing or malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AamvaRecord:
    """The identity fields of a DL or ID subfile."""

    document_type: str  # "driving_licence" or "id_card"
    issuer_id: str
    version: int
    jurisdiction: str
    country: str
    document_number: str
    surname: str
    given_names: str
    birth_date: date
    expiry_date: date
    sex: str


def _elements(subfile: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in re.split(r"[\n\r]+", subfile):
        line = raw.strip("\x1e\x1c\x1d ")
        if len(line) >= 3 and _ELEMENT.match(line[:3]) and line[:3] not in out:
            out[line[:3]] = line[3:].strip()
    return out


def _date(value: str | None, *, canadian: bool, name: str) -> date:
    if not value or not value.isdigit() or len(value) != 8:
        raise AamvaError(f"date:{name}")
    try:
        # US issuers write MMDDCCYY, Canadian ones CCYYMMDD (annex D, D.12.5).
        if canadian:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        return date(int(value[4:]), int(value[:2]), int(value[2:4]))
    except ValueError as exc:
        raise AamvaError(f"date:{name}") from exc


def parse_aamva(text: str) -> AamvaRecord:
    """Parse a PDF417 payload; :class:`AamvaError` when it is not a usable AAMVA record."""
    header = _HEADER.search(text)
    if header is None:
        raise AamvaError("header")
    version = int(header.group(3))
    entries = int(header.group(5))
    designators = text[header.end() :]
    subfile_type, body = "", ""
    for index in range(max(1, entries)):
        designator = designators[index * 10 : index * 10 + 10]
        kind = designator[:2]
        if kind not in {"DL", "ID"}:
            continue
        offset, length = designator[2:6], designator[6:10]
        start = text.find(kind, header.end() + 10 * entries)
        if offset.isdigit() and length.isdigit() and text[int(offset) : int(offset) + 2] == kind:
            start = int(offset)
        if start < 0:
            continue
        end = start + int(length) if length.isdigit() and offset.isdigit() else len(text)
        subfile_type, body = kind, text[start + 2 : max(end, start + 2)]
        break
    if not subfile_type:
        raise AamvaError("subfile")
    fields = _elements(body)
    # Version 1 has no DCG; jurisdictions outside the US put their country there.
    country = fields.get("DCG", "USA")
    canadian = country == "CAN" or version == 1
    number = fields.get("DAQ", "")
    surname = fields.get("DCS") or fields.get("DAB", "")
    given = " ".join(
        part for part in (fields.get("DAC") or fields.get("DCT", ""), fields.get("DAD", "")) if part
    )
    given = " ".join(w for w in given.replace(",", " ").split() if w != "NONE")
    if not number or not surname:
        raise AamvaError("fields")
    return AamvaRecord(
        document_type="driving_licence" if subfile_type == "DL" else "id_card",
        issuer_id=header.group(2),
        version=version,
        jurisdiction=fields.get("DAJ", ""),
        country=country,
        document_number=number,
        surname=surname,
        given_names=given,
        birth_date=_date(fields.get("DBB"), canadian=canadian, name="birth"),
        expiry_date=_date(fields.get("DBA"), canadian=canadian, name="expiry"),
        sex=_SEX.get(fields.get("DBC", "9"), "X"),
    )
