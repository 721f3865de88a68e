"""The pipeline on real photos: face count, light, match scores, portrait."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from bioverify.engine import Analysis, LivenessMode, LocalEngine, Outcome, cosine
from bioverify.engine.models import as_image
from fixtures_faces import (
    darken,
    encode,
    file_bytes,
    labelled_identities,
    load,
    pad,
    registry_bytes,
    registry_image,
    screen_replay,
)

pytestmark = pytest.mark.models


def _passive(engine: LocalEngine, *frames: bytes, portrait: bool = False) -> Analysis:
    return engine.analyze_sync(list(frames), liveness=LivenessMode.PASSIVE, want_portrait=portrait)


def _embedding(engine: LocalEngine, frame: bytes) -> np.ndarray:
    result = _passive(engine, frame)
    assert result.outcome is Outcome.OK, result.reasons
    assert result.embedding is not None
    return np.asarray(result.embedding)


@pytest.mark.parametrize("name", ["t1.jpg", "sample2.jpg"])
def test_group_photo_is_multiple_faces(engine: LocalEngine, name: str) -> None:
    result = _passive(engine, registry_bytes(name))
    assert result.outcome is Outcome.MULTIPLE_FACES
    assert result.face_count >= 3
    assert result.embedding is None


def test_mask_picture_is_no_face(engine: LocalEngine) -> None:
    result = _passive(engine, registry_bytes("mask_white.jpg"))
    assert result.outcome is Outcome.NO_FACE
    assert result.embedding is None


def test_darkened_face_is_low_light(engine: LocalEngine) -> None:
    bright = load(registry_image("astronaut.png"))
    assert _passive(engine, encode(bright)).outcome is Outcome.OK
    dark = darken(bright, 0.06)
    result = _passive(engine, encode(dark, ".png"))
    assert result.outcome is Outcome.LOW_LIGHT
    assert result.quality["frame_luma"] < engine.thresholds.low_light_luma


def test_dim_but_usable_face_is_not_low_light(engine: LocalEngine) -> None:
    image = load(registry_image("astronaut.png"))
    dim = darken(image, 0.45)
    result = _passive(engine, encode(dim, ".png"))
    assert result.outcome is Outcome.OK, result.reasons


def test_small_face_is_no_face_with_a_reason(engine: LocalEngine) -> None:
    image = load(registry_image("astronaut.png"))
    tiny = as_image(cv2.resize(image, (200, 200), interpolation=cv2.INTER_AREA))
    canvas = as_image(
        cv2.copyMakeBorder(tiny, 220, 220, 220, 220, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    )
    result = _passive(engine, encode(canvas))
    assert result.outcome is Outcome.NO_FACE
    assert any("too small" in r for r in result.reasons)


def test_ok_analysis_has_unit_embedding_portrait_and_timings(engine: LocalEngine) -> None:
    result = _passive(engine, registry_bytes("astronaut.png"), portrait=True)
    assert result.outcome is Outcome.OK
    assert result.embedding is not None
    assert result.embedding.shape == (128,)
    assert result.embedding.dtype == np.float32
    assert float(np.linalg.norm(result.embedding)) == pytest.approx(1.0, abs=1e-5)
    assert result.portrait_jpeg is not None
    assert result.portrait_jpeg.startswith(b"\xff\xd8")
    portrait = as_image(
        cv2.imdecode(np.frombuffer(result.portrait_jpeg, np.uint8), cv2.IMREAD_COLOR)
    )
    assert portrait is not None
    assert len(engine.detect(portrait)) == 1
    assert {"decode", "quality", "detect", "embed", "liveness"} <= set(result.timings_ms)
    assert "0." not in repr(result).split("embedding=")[1][:10]  # no vector values in repr


def test_no_portrait_unless_asked(engine: LocalEngine) -> None:
    assert _passive(engine, registry_bytes("astronaut.png")).portrait_jpeg is None


def test_different_people_score_below_the_verify_threshold(engine: LocalEngine) -> None:
    hanks = _embedding(engine, encode(pad(load(registry_image("Tom_Hanks_54745.png")))))
    astronaut = _embedding(engine, registry_bytes("astronaut.png"))
    assert cosine(hanks, astronaut) < engine.thresholds.verify


def test_same_photo_reencoded_scores_above_the_verify_threshold(engine: LocalEngine) -> None:
    image = load(registry_image("astronaut.png"))
    a = _embedding(engine, encode(image, ".png"))
    b = _embedding(engine, encode(as_image(cv2.resize(image, (400, 400))), ".jpg", quality=80))
    assert cosine(a, b) >= engine.thresholds.verify


def test_labelled_faces_genuine_above_and_impostor_below(engine: LocalEngine) -> None:
    rows = labelled_identities()
    by_person: dict[str, list[np.ndarray]] = {}
    for path, person in rows:
        if person in {"person02", "person06", "person13"}:
            by_person.setdefault(person, []).append(_embedding(engine, file_bytes(path)))
    for embeddings in by_person.values():
        for a, b in itertools.combinations(embeddings, 2):
            assert cosine(a, b) >= engine.thresholds.verify
    for (_, first), (_, second) in itertools.combinations(by_person.items(), 2):
        for a, b in itertools.product(first, second):
            assert cosine(a, b) < engine.thresholds.verify


def test_passive_genuine_photo_passes_and_screen_replay_scores_lower(engine: LocalEngine) -> None:
    image = load(registry_image("astronaut.png"))
    genuine = _passive(engine, encode(image, ".png"))
    assert genuine.liveness is not None
    assert genuine.liveness.method == "passive-signals"
    assert genuine.liveness.passed
    replay = _passive(engine, encode(screen_replay(image), ".png"))
    assert replay.outcome is Outcome.SPOOF
    assert replay.liveness is not None
    assert replay.liveness.score < genuine.liveness.score
    assert any("moire" in r for r in replay.reasons)


def test_passive_labelled_genuine_photos_all_pass(engine: LocalEngine) -> None:
    rows = labelled_identities()[::4]
    for path, _ in rows:
        result = _passive(engine, file_bytes(path))
        assert result.outcome is Outcome.OK, (path.name, result.reasons)
