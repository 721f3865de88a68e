"""Model loading fails closed: missing files, tampered files, thresholds for another model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioverify import errors
from bioverify.engine import MODEL_VERSION, EngineUnavailable, load_thresholds
from bioverify.engine.matcher import Thresholds
from bioverify.engine.models import SFACE_FILE, YUNET_FILE, FaceModels, models_dir


def test_tampered_model_file_fails_its_sha256_check(tmp_path: Path) -> None:
    for name in (YUNET_FILE, SFACE_FILE):
        shutil.copy(models_dir() / name, tmp_path / name)
    data = bytearray((tmp_path / SFACE_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / SFACE_FILE).write_bytes(bytes(data))
    with pytest.raises(EngineUnavailable, match="sha256") as caught:
        FaceModels(tmp_path)
    assert caught.value.codes == (errors.MODEL_LOAD_FAILED,)
    assert isinstance(caught.value, errors.ServiceUnavailable)


def test_missing_model_files_make_the_engine_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="cannot be read"):
        FaceModels(tmp_path)


def test_shipped_thresholds_match_the_model_and_are_ordered() -> None:
    thresholds = load_thresholds()
    assert thresholds.model_version == MODEL_VERSION
    assert thresholds.identify >= thresholds.verify > 0.0
    assert thresholds.target_fmr == pytest.approx(1e-4)
    assert thresholds.low_light_luma > 0


def test_thresholds_for_another_model_are_refused(tmp_path: Path) -> None:
    shipped = load_thresholds()
    other = Thresholds(**{**shipped.__dict__, "model_version": "some-other-model"})
    path = tmp_path / "thresholds.json"
    path.write_text(other.to_json())
    with pytest.raises(EngineUnavailable, match="calibrated for 'some-other-model'"):
        load_thresholds(path)


def test_incomplete_thresholds_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"model_version": MODEL_VERSION, "verify": 0.5}))
    with pytest.raises(EngineUnavailable, match="missing or has a bad field"):
        load_thresholds(path)
