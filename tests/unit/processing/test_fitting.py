"""The Gaussian fit lands where scipy's curve_fit (cam_server's call) lands, and fails where it fails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from processing_reference import gauss_fit, gauss_function, initial_guess

from camioc.processing import fit_gaussian, linear_fit


def _profile(rng: np.random.Generator, n: int, descending: bool, noise: float) -> tuple[np.ndarray, np.ndarray]:
    if descending:
        axis = (-(np.arange(n) - n / 2) * 0.37).astype(np.float32)
    else:
        axis = np.arange(n, dtype=np.float32)
    pitch = abs(float(axis[1] - axis[0]))
    mean = float(axis[rng.integers(n // 5, 4 * n // 5)])
    sigma = pitch * rng.uniform(1.5, n / 8)
    amplitude = rng.uniform(1e3, 1e7)
    offset = rng.uniform(0, 1e5)
    clean = gauss_function(axis.astype(np.float64), offset, amplitude, mean, sigma)
    return np.rint(clean + rng.normal(0, noise * amplitude, n)).astype(np.int64), axis


@pytest.mark.parametrize("descending", [False, True])
def test_fits_agree_with_curve_fit_on_many_profiles(descending: bool) -> None:
    """Random beams (8 to 2500 samples, noise up to 10 % of the amplitude): within 1e-4, mostly 1e-6."""
    rng = np.random.default_rng(42 if descending else 7)
    errors = []
    for _ in range(60):
        profile, axis = _profile(rng, int(rng.integers(8, 2500)), descending, rng.uniform(0, 0.1))
        fit = fit_gaussian(profile, axis)
        ref, converged = gauss_fit(profile, axis)
        assert fit.converged == converged
        mine = np.array([fit.offset, fit.amplitude, fit.mean, fit.standard_deviation])
        scale = np.array([max(abs(ref[0]), abs(ref[1]))] * 2 + [ref[3]] * 2)
        errors.append(np.max(np.abs(mine - ref) / scale))
    assert max(errors) < 1e-4
    assert np.median(errors) < 1e-6


def test_flat_profile_returns_guesses_with_unit_sigma() -> None:
    """Amplitude 0: sigma guess 1 (cam_server); the fit stops at once (zero gradient, info 4)."""
    axis = np.arange(50, dtype=np.float32)
    fit = fit_gaussian(np.full(50, 7, dtype=np.int64), axis)
    assert (fit.offset, fit.amplitude, fit.standard_deviation) == (7.0, 0.0, 1.0)
    assert fit.mean == 0.0 and fit.converged
    ref, converged = gauss_fit(np.full(50, 7, dtype=np.int64), axis)
    np.testing.assert_array_equal([fit.offset, fit.amplitude, fit.mean, fit.standard_deviation], ref)
    assert converged


def test_too_few_samples_fall_back_to_guesses() -> None:
    """Fewer samples than parameters: curve_fit refuses, cam_server returns the guesses."""
    axis = np.array([0.0, 1.0, 2.0], dtype=np.float32)
    profile = np.array([1, 5, 2])
    fit = fit_gaussian(profile, axis)
    ref, converged = gauss_fit(profile, axis)
    assert not fit.converged and not converged
    np.testing.assert_allclose([fit.offset, fit.amplitude, fit.mean, fit.standard_deviation], ref, rtol=1e-15)


def test_maxfev_exhaustion_falls_back_like_cam_server(camera_frames: list[np.ndarray]) -> None:
    """A real dark frame whose y profile makes MINPACK run out of evaluations (info 5)."""
    profile = camera_frames[0].astype(np.int64).sum(axis=1)
    axis = np.arange(profile.size, dtype=np.float32)
    ref, converged = gauss_fit(profile, axis)
    assert not converged  # the reference itself exhausts maxfev here
    fit = fit_gaussian(profile, axis)
    assert not fit.converged
    guess = initial_guess(profile, axis)
    assert [fit.offset, fit.amplitude, fit.mean, fit.standard_deviation] == pytest.approx(
        [guess[0], guess[1], guess[2], abs(guess[3])], rel=1e-14
    )


def test_non_finite_profile_gives_nan_and_never_raises() -> None:
    profile = np.array([1.0, 2.0, np.nan, 2.0, 1.0, 0.5])
    fit = fit_gaussian(profile, np.arange(6, dtype=np.float32))
    assert not fit.converged
    assert all(math.isnan(v) for v in (fit.offset, fit.amplitude, fit.mean, fit.standard_deviation))


def test_sigma_is_positive_on_descending_axes() -> None:
    """On a descending axis the trapezoid guess is negative; the result is made positive."""
    axis = (-np.arange(200) * 0.5).astype(np.float32)
    profile = np.rint(10 + 1000 * np.exp(-((axis + 50.0) ** 2) / (2 * 4.0**2))).astype(np.int64)
    assert initial_guess(profile, axis)[3] < 0
    fit = fit_gaussian(profile, axis)
    assert fit.converged
    assert fit.standard_deviation == pytest.approx(4.0, rel=1e-3)
    assert fit.mean == pytest.approx(-50.0, abs=1e-3)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        fit_gaussian(np.ones(5), np.arange(4, dtype=np.float32))


def test_linear_fit() -> None:
    slope, offset = linear_fit(np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0, 9.0]))
    assert slope == pytest.approx(2.0) and offset == pytest.approx(1.0)
    assert all(math.isnan(v) for v in linear_fit(np.array([1.0]), np.array([2.0])))
    assert all(math.isnan(v) for v in linear_fit(np.array([2.0, 2.0]), np.array([1.0, 3.0])))
    slope, _ = linear_fit(np.array([0.0, 1.0, np.nan, 2.0]), np.array([0.0, 2.0, 5.0, 4.0]))
    assert slope == pytest.approx(2.0)
