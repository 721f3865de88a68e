"""Every challenge step has a prompt on the hosted page and in the capture SDK, in
English and French."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bioverify.capture.camera import PROMPTS, PROMPTS_FR, prompts_for, read_burst
from bioverify.engine import ChallengeStep

I18N = Path(__file__).resolve().parents[3] / "src" / "bioverify" / "api" / "static" / "i18n"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_page_prompts_every_step(language: str) -> None:
    strings = json.loads((I18N / f"{language}.json").read_text(encoding="utf-8"))
    for step in ChallengeStep:
        assert strings.get(f"step.{step}"), f"{language}: no prompt for {step}"
        assert strings.get(f"stepShort.{step}"), f"{language}: no short label for {step}"


def test_french_and_english_prompts_differ_and_cover_every_step() -> None:
    assert set(PROMPTS) == set(PROMPTS_FR) == {str(s) for s in ChallengeStep}
    assert all(PROMPTS[k] != PROMPTS_FR[k] for k in PROMPTS)


def test_the_sdk_prompts_in_the_session_locale(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    for value in range(4):
        writer.write(np.full((48, 64, 3), 40 * value, np.uint8))
    writer.release()
    said: list[str] = []
    burst = read_burst(
        str(video),
        steps=["BLINK", "SMILE"],
        frames_per_step=2,
        prompt=said.append,
        prompts=prompts_for("fr-FR"),
    )
    assert burst is not None
    assert len(burst.frames) == 4
    assert said == [PROMPTS_FR["BLINK"], PROMPTS_FR["SMILE"]]
    assert prompts_for("en-GB") is PROMPTS
    assert prompts_for(None) is PROMPTS
