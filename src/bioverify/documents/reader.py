"""Reading one side of an identity document in memory: MRZ, PDF417, portrait.

The reader never stores pixels; it returns what it read (or why nothing usable was
read) and the portrait's embedding. Models load once, at start-up: a missing or
tampered model, a missing threshold, or zxing-cpp failing to import is
:class:`EngineUnavailable` (-20) then, never a silent "no document" later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bioverify.documents.aamva import AamvaRecord
from bioverify.documents.barcode import read_aamva
from bioverify.documents.mrz_fields import MrzError, MrzRecord, parse_mrz
from bioverify.documents.ocr import LineReader, OnnxLineReader
from bioverify.documents.portrait import PortraitThreshold, load_threshold, portrait_embedding
from bioverify.documents.zone import find_mrz_lines
from bioverify.engine.interfaces import Embedding
from bioverify.engine.models import FaceModels, Image

#: ``failure`` values (no document data in them, safe to log and count).
NOTHING_FOUND = "nothing_found"
MRZ_UNREADABLE = "mrz_unreadable"


@dataclass(frozen=True, eq=False)
class DocumentReading:
    """What one photo of a document side yielded.

    Exactly one of ``mrz``/``aamva`` is set when the side was read; otherwise
    ``failure`` says why (``nothing_found``, ``mrz_unreadable`` or a 9303 reason such
    as ``check_digit:composite``). ``portrait`` is set when a face was found on it.
    """

    mrz: MrzRecord | None
    aamva: AamvaRecord | None
    failure: str | None
    portrait: Embedding | None

    @property
    def ok(self) -> bool:
        """True when the document's data was read and verified."""
        return self.failure is None


class DocumentReader:
    """MRZ (zone finder + OCR + 9303 checks), PDF417 (zxing-cpp) and portrait (YuNet/SFace).

    Not thread-safe: one per worker, like :class:`FaceModels`.
    """

    def __init__(
        self, *, faces: FaceModels, lines: LineReader, threshold: PortraitThreshold | None
    ) -> None:
        # ``threshold`` is None only for the evaluation that measures it.
        self.faces = faces
        self.lines = lines
        self.threshold = threshold

    @classmethod
    def load(cls, faces: FaceModels | None = None) -> DocumentReader:
        """Load and check every model; :class:`EngineUnavailable` (-20) if any fails."""
        return cls(
            faces=faces if faces is not None else FaceModels(),
            lines=OnnxLineReader(),
            threshold=load_threshold(),
        )

    def read_mrz(self, image: Image, *, today: date) -> MrzRecord | str:
        """The verified MRZ, or the reason it could not be read."""
        crops = find_mrz_lines(image)
        if not crops:
            return NOTHING_FOUND
        read = self.lines.read_lines(crops)
        try:
            return parse_mrz(
                [line.text for line in read], today=today, doubts=[line.doubts for line in read]
            )
        except MrzError as exc:
            return exc.reason if exc.reason.startswith("check_digit") else MRZ_UNREADABLE

    def read(self, image: Image, *, today: date) -> DocumentReading:
        """Read ``image`` (BGR): the MRZ first, else a PDF417; and the portrait."""
        mrz = self.read_mrz(image, today=today)
        portrait = portrait_embedding(self.faces, image)
        if isinstance(mrz, MrzRecord):
            return DocumentReading(mrz, None, None, portrait)
        aamva = read_aamva(image)
        if aamva is not None:
            return DocumentReading(None, aamva, None, portrait)
        return DocumentReading(None, None, mrz, portrait)
