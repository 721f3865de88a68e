"""The document models fail closed (-20): missing or tampered OCR model, no threshold."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bioverify import errors
from bioverify.documents.ocr import ONNX_DICT_FILE, ONNX_REC_FILE, OnnxLineReader, ocr_models_dir
from bioverify.documents.portrait import THRESHOLDS_FILE, load_threshold
from bioverify.engine.interfaces import EngineUnavailable
from bioverify.engine.models import MODEL_VERSION


def _copy_models(target: Path) -> None:
    for name in (ONNX_REC_FILE, ONNX_DICT_FILE):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ocr_models_dir() / name, target / name)


def test_the_ocr_model_ships_inside_the_installed_wheel_and_loads_beside_usearch() -> None:
    """The gallery's usearch is loaded in the same process (see engine/__init__.py)."""
    assert "usearch.compiled" in sys.modules
    assert (ocr_models_dir() / ONNX_REC_FILE).is_file()
    assert OnnxLineReader().name == "onnx-ppocrv5"


@pytest.mark.parametrize("name", [ONNX_REC_FILE, ONNX_DICT_FILE])
def test_a_tampered_ocr_file_is_refused_with_model_load_failed(tmp_path: Path, name: str) -> None:
    _copy_models(tmp_path)
    data = bytearray((tmp_path / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(EngineUnavailable, match="sha256") as caught:
        OnnxLineReader(tmp_path)
    assert caught.value.codes == (errors.MODEL_LOAD_FAILED,)


def test_a_missing_ocr_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="cannot be read") as caught:
        OnnxLineReader(tmp_path)
    assert caught.value.codes == (errors.MODEL_LOAD_FAILED,)


def test_a_missing_portrait_threshold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="eval --documents") as caught:
        load_threshold(tmp_path / "thresholds.json")
    assert caught.value.codes == (errors.MODEL_LOAD_FAILED,)


def test_the_shipped_portrait_threshold_was_measured_with_this_face_model() -> None:
    shipped = load_threshold()
    assert shipped.model_version == MODEL_VERSION
    assert 0.0 < shipped.threshold < 1.0
    assert "non-matching pairs" in json.loads(THRESHOLDS_FILE.read_text())["method"]
