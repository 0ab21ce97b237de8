"""Temperature scaling against a brute-force grid search, a closed form and a simulation of an
overconfident model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import softmax

from overfit_lab.diagnostics.calibration import expected_calibration_error, negative_log_likelihood
from overfit_lab.diagnostics.temperature import LOG_TEMPERATURE_BOUNDS, fit_temperature, temperature_scale


def _calibrated(n: int, k: int, seed: int, scale: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``z ~ N(0, scale²)`` and labels drawn from ``softmax(z)``: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=scale, size=(n, k))
    cumulative = np.cumsum(softmax(logits, axis=1), axis=1)
    labels = (rng.random(n)[:, None] > cumulative).sum(axis=1)
    return np.minimum(labels, k - 1), logits


def _nll(labels: np.ndarray, logits: np.ndarray, temperature: float) -> float:
    """Independent NLL: the calibration module's, on softmax probabilities."""
    return negative_log_likelihood(labels, softmax(logits / temperature, axis=1), eps=1e-300)


def test_closed_form_two_classes():
    """Every row has confidence σ(2/T) and 3 of 4 are right: T* solves σ(2/T) = 3/4, T = 2/ln 3."""
    logits = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    assert fit_temperature(np.array([0, 0, 1, 1]), logits) == pytest.approx(2 / math.log(3), rel=1e-7)


@pytest.mark.parametrize(("k", "scale", "seed"), [(2, 0.5, 0), (3, 4.0, 1), (5, 1.0, 2)])
def test_matches_grid_search(k, scale, seed):
    """Brute force: the NLL at 8,001 temperatures log-spaced over [e^-4, e^4] (steps of 1e-3 in
    log T). The fitted T reaches the grid's minimum NLL within 1e-9 (it can only be lower) and lies
    within two grid steps of the best grid point."""
    labels, logits = _calibrated(400, k, seed)
    logits = logits * scale
    grid = np.exp(np.linspace(*LOG_TEMPERATURE_BOUNDS, 8001))
    nll = np.array([_nll(labels, logits, t) for t in grid])
    fitted = fit_temperature(labels, logits)
    assert _nll(labels, logits, fitted) <= nll.min() + 1e-9
    assert abs(math.log(fitted) - math.log(grid[nll.argmin()])) <= 2 * 8 / 8000
    assert fitted == pytest.approx(scale, rel=0.25)  # calibrated logits times `scale`


def test_overconfident_logits_are_recovered():
    """Calibrated logits (n = 5000, 3 classes) multiplied by 3, as an overconfident model would give.

    The fitted T is 3 within 5 % (observed 2.961 here; over 30 seeds 2.90 to 3.09, sd 0.048);
    ECE (15 bins) falls from 0.18 to 0.012, about that of the calibrated logits themselves (0.012);
    we require below 0.03 and below a fifth of the ECE before scaling. Predictions are unchanged.
    """
    labels, calibrated = _calibrated(5000, 3, seed=0)
    overconfident = 3.0 * calibrated
    t = fit_temperature(labels, overconfident)
    assert t == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(labels, softmax(overconfident, axis=1))
    scaled = temperature_scale(overconfident, t)
    after = expected_calibration_error(labels, softmax(scaled, axis=1))
    assert after < 0.03
    assert after < before / 5
    np.testing.assert_array_equal(scaled.argmax(axis=1), overconfident.argmax(axis=1))
    assert _nll(labels, overconfident, t) < _nll(labels, overconfident, 1.0)


def test_underconfident_logits_give_t_below_one():
    labels, calibrated = _calibrated(5000, 3, seed=1)
    assert fit_temperature(labels, calibrated / 2) == pytest.approx(0.5, rel=0.05)


def test_scale_equivariance():
    """Fitting on c · z gives c times the temperature fitted on z."""
    labels, logits = _calibrated(300, 4, seed=3)
    reference = fit_temperature(labels, logits)
    assert fit_temperature(labels, 2.5 * logits) == pytest.approx(2.5 * reference, rel=1e-6)


def test_bounds_are_returned_outside_the_interval():
    """All right: the NLL log(1 + e^(-1/T)) keeps falling as T -> 0 and rounds to 0 in float64 below
    T = 1/37 or so, so a T between e^-4 and 0.03 with NLL 0. Labels independent of logits with an
    equal split: the best is the uniform prediction, T -> infinity: the upper bound e^4."""
    logits = np.array([[1.0, 0.0], [0.0, 1.0]])
    small = fit_temperature(np.array([0, 1]), logits)
    assert math.exp(-4) * (1 - 1e-6) <= small <= 0.03
    assert _nll(np.array([0, 1]), logits, small) < 1e-15
    assert fit_temperature(np.array([0, 1, 1, 0]), np.vstack([logits, logits])) == pytest.approx(
        math.exp(4), rel=1e-6)


def test_float32_logits_give_float():
    labels, logits = _calibrated(200, 3, seed=4)
    t = fit_temperature(labels, logits.astype(np.float32))
    assert isinstance(t, float)
    assert t == pytest.approx(fit_temperature(labels, logits), rel=1e-5)


def test_temperature_scale():
    logits = np.array([[3.0, -1.0, 0.5]], dtype=np.float32)
    scaled = temperature_scale(logits, 2)
    assert scaled.dtype == np.float64
    np.testing.assert_allclose(scaled, [[1.5, -0.5, 0.25]])
    np.testing.assert_array_equal(temperature_scale(logits, 1.0), logits)


@pytest.mark.parametrize(("temperature", "match"), [
    (0.0, "temperature must be finite and > 0"),
    (-1.0, "temperature must be finite and > 0"),
    (math.inf, "temperature must be finite and > 0"),
    (math.nan, "temperature must be finite and > 0"),
    ("hot", "temperature must be a positive number"),
])
def test_temperature_scale_validation(temperature, match):
    with pytest.raises(ValueError, match=match):
        temperature_scale(np.zeros((1, 2)), temperature)


@pytest.mark.parametrize(("labels", "logits", "match"), [
    ([0], np.zeros(2), "logits must be a non-empty \\(n, classes >= 2\\) array"),
    ([0], np.zeros((1, 1)), "logits must be a non-empty"),
    ([0], np.array([[0.0, np.inf]]), "logits must be finite"),
    ([0, 2], np.zeros((2, 2)), "labels labels must be in 0..1"),
    ([0], np.zeros((2, 2)), "labels must be 1-D with len\\(logits\\) = 2"),
])
def test_fit_temperature_validation(labels, logits, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(np.asarray(labels), logits)
