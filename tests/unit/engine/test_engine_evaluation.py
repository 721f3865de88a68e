"""Evaluation arithmetic: AUC, FNMR at FMR, threshold choice, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify.engine.evaluation import (
    MARGIN,
    choose_threshold,
    darken,
    det_curve,
    error_rates,
    fnmr_at_fmr,
    roc_auc,
)

scores = st.lists(st.floats(min_value=-1, max_value=1, allow_nan=False), min_size=2, max_size=60)


@given(scores, scores)
def test_auc_equals_the_pairwise_win_rate(genuine: list[float], impostor: list[float]) -> None:
    wins = sum((g > i) + 0.5 * (g == i) for g in genuine for i in impostor)
    assert roc_auc(genuine, impostor) == pytest.approx(wins / (len(genuine) * len(impostor)))


@given(scores, scores, st.sampled_from([0.5, 0.1, 0.01]))
def test_fnmr_at_fmr_respects_the_target(
    genuine: list[float], impostor: list[float], target: float
) -> None:
    point = fnmr_at_fmr(genuine, impostor, target)
    fmr, fnmr = error_rates(genuine, impostor, point["threshold"])
    assert fmr <= target + 1e-12
    assert point["fnmr"] == fnmr
    assert point["resolvable"] == (target * len(impostor) >= 1)


def test_fnmr_at_fmr_refuses_an_impostor_the_rounding_lands_on() -> None:
    # Found by Hypothesis in CI: the threshold rounded back onto 0.95 (FMR 0.5 for 0.1).
    point = fnmr_at_fmr([0.0, 0.0], [0.0, 0.95], 0.1)
    assert point["threshold"] > 0.95
    assert point["fmr"] == 0.0


@given(scores, scores)
def test_det_curve_rates_are_monotone(genuine: list[float], impostor: list[float]) -> None:
    thresholds, fmr, fnmr = det_curve(genuine, impostor)
    assert np.all(np.diff(thresholds) > 0)
    assert np.all(np.diff(fmr) <= 0)
    assert np.all(np.diff(fnmr) >= 0)


def test_threshold_sits_above_every_impostor_with_the_margin() -> None:
    impostor = list(np.random.default_rng(0).normal(0.1, 0.1, 500))
    threshold, rule = choose_threshold(impostor, 3.719)
    assert threshold >= max(impostor) + MARGIN
    assert threshold - (max(impostor) + MARGIN) < 0.01 + 1e-9 or "normal-tail" in rule


def test_darken_lowers_brightness_and_adds_noise() -> None:
    image = np.full((50, 50, 3), 200, np.uint8)
    dark = darken(image, 0.05, seed=1)
    assert 5 < float(dark.mean()) < 15
    assert float(dark.std()) > 1.0
