"""Identity documents: MRZ (ICAO 9303 TD1/TD2/TD3), AAMVA PDF417, document portrait.

Reading happens in memory (:class:`DocumentReader`); :mod:`.generate` and
:mod:`.conditions` make test documents in software for the tests and the evaluation.
"""

from bioverify.documents.aamva import AamvaError, AamvaRecord, parse_aamva
from bioverify.documents.checkdigits import check_digit, is_valid
from bioverify.documents.identity import PortraitCheck, identity_information, is_expired
from bioverify.documents.mrz_fields import MrzError, MrzFormat, MrzRecord, parse_mrz
from bioverify.documents.reader import DocumentReader, DocumentReading

__all__ = [
    "AamvaError",
    "AamvaRecord",
    "DocumentReader",
    "DocumentReading",
    "MrzError",
    "MrzFormat",
    "MrzRecord",
    "PortraitCheck",
    "check_digit",
    "identity_information",
    "is_expired",
    "is_valid",
    "parse_aamva",
    "parse_mrz",
]
