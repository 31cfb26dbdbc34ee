"""The default function agrees with a plain numpy/scipy reference of cam_server's algorithms.

Tolerances (the issue's): sums, profiles, min/max and good-region bounds exactly; centroids, rms
and FWHM to 1e-9 relative; Gaussian fit parameters to 1e-4 where the fit converges, measured on
the parameter's natural scale (offset and amplitude relative to the larger of the two, mean and
sigma relative to sigma: a relative error of a mean near 0 or an offset near 0 means nothing).
Where cam_server's fit fails, both must return the same initial guesses. Slice results (fitted
centre and sigma) to 1e-4 of the slice's sigma, slice positions (axis values) exactly; what
cam_server leaves ``None`` (empty good region, slices that do not fit, coupling from fewer than two
x-slices) is ``None`` in both. The reference itself is held to cam_server's golden outputs here
too (:func:`test_reference_reproduces_cam_servers_golden_outputs`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from processing_reference import (
    calculate_slices,
    center_of_mass_and_rms,
    default_outputs,
    find_index,
    full_width,
    gauss_function,
    good_region,
    initial_guess,
    preprocess,
)

from camioc.processing import ImagePipeline
from tests.support.golden import NO_BEAM_FRAME, compare_results, frame_of, golden_cases

RTOL_FIT = 1e-4
RTOL = 1e-9
FIT_PARAMETERS = ("offset", "amplitude", "mean", "standard_deviation")
SLICE_FIELDS = ("center_x", "center_y", "standard_deviation", "intensity")
GOOD_REGION_FIELDS = ("good_region", "gr_x_axis", "gr_y_axis", "gr_x_profile", "gr_y_profile", "gr_intensity")


def assert_fit_close(out: dict[str, Any], prefix: str, ref_params: np.ndarray, *, context: str = "") -> None:
    mine = np.array([out[f"{prefix}_fit_{k}"] for k in ("offset", "amplitude", "mean", "standard_deviation")])
    scale = np.array([max(abs(ref_params[0]), abs(ref_params[1])), max(abs(ref_params[0]), abs(ref_params[1])),
                      abs(ref_params[3]), abs(ref_params[3])])
    error = np.abs(mine - ref_params) / scale
    assert np.all(error <= RTOL_FIT), f"{context}{prefix} fit {mine} != reference {ref_params} (error {error})"


def assert_close(actual: float, expected: float, what: str, rtol: float = RTOL) -> None:
    if math.isnan(expected):
        assert math.isnan(actual), f"{what}: {actual} != NaN"
        return
    assert actual == pytest.approx(expected, rel=rtol, abs=rtol * 1e-3), f"{what}: {actual} != {expected}"


def assert_sums_equal(actual: np.ndarray, expected: np.ndarray, integer: bool) -> None:
    """Integer sums exactly (int64); float sums to rounding (summation order differs)."""
    assert actual.dtype == (np.int64 if integer else np.float64)
    if integer:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-12)


def check_against_reference(out: dict[str, Any], image: np.ndarray, x_axis: np.ndarray, y_axis: np.ndarray,
                            config: dict[str, Any], *, beam: bool = True) -> dict[str, Any]:
    """Compare every output of the default function with the reference; returns the reference."""
    use_fits = {k: v for k, v in out.items() if "_fit_" in k and not k.endswith("gauss_function") and v is not None}
    ref = default_outputs(image, x_axis, y_axis, config, use_fits=use_fits)
    integer = image.dtype.kind in "iu"
    # exact quantities
    assert out["width"] == image.shape[1] and out["height"] == image.shape[0]
    for name in ("x_profile", "y_profile"):
        assert_sums_equal(out[name], ref[name], integer)
    assert out["min_value"].dtype == image.dtype and out["max_value"].dtype == image.dtype
    assert out["min_value"] == ref["min_value"] and out["max_value"] == ref["max_value"]
    assert out["intensity"] == pytest.approx(ref["intensity"], rel=0 if integer else 1e-12)
    for name in ("x", "y"):
        axis = x_axis if name == "x" else y_axis
        assert_close(out[f"{name}_fwhm"], ref[f"{name}_fwhm"], f"{name}_fwhm")
        if f"{name}_fw" in ref:
            assert_close(out[f"{name}_fw"], ref[f"{name}_fw"], f"{name}_fw")
        assert_close(out[f"{name}_center_of_mass"], ref[f"{name}_center_of_mass"], f"{name}_center_of_mass")
        assert_close(out[f"{name}_rms"], ref[f"{name}_rms"], f"{name}_rms")
        mine = [out[f"{name}_fit_{k}"] for k in ("offset", "amplitude", "mean", "standard_deviation")]
        np.testing.assert_allclose(out[f"{name}_fit_gauss_function"],
                                   gauss_function(axis.astype(np.float64), *mine), rtol=1e-12)
        if ref[f"{name}_fit_converged"] or beam:
            assert_fit_close(out, name, ref[f"{name}_fit"])
        else:  # cam_server's fit failed: the initial guesses, in both
            guess = np.array(initial_guess(ref[f"{name}_profile"], axis), dtype=float)
            guess[3] = abs(guess[3])
            np.testing.assert_allclose(mine, guess, rtol=1e-12)
    if "good_region" not in ref:
        assert "good_region" not in out
        return ref
    check_good_region(out, ref, integer)
    if "slice_amount" in ref:
        check_slices(out, ref, integer)
    return ref


def check_good_region(out: dict[str, Any], ref: dict[str, Any], integer: bool) -> None:
    """Good region bounds exactly, crop (exclusive end) exactly, fits to 1e-4; all None if empty."""
    if ref["good_region"] is None:  # empty region: every gr_ field None (parity section 2.5)
        for name in (*GOOD_REGION_FIELDS, *(f"gr_{a}_fit_{p}" for a in "xy" for p in FIT_PARAMETERS),
                     "gr_x_fit_gauss_function", "gr_y_fit_gauss_function"):
            assert out[name] is None, f"{name} should be None for an empty good region"
        return
    np.testing.assert_array_equal(out["good_region"], ref["good_region"])
    assert out["good_region"].dtype == np.int64
    for name in ("gr_x_axis", "gr_y_axis"):
        assert out[name].dtype == np.float32
        np.testing.assert_array_equal(out[name], ref[name])
    for name in ("gr_x_profile", "gr_y_profile"):
        assert_sums_equal(out[name], ref[name], integer)
    assert out["gr_intensity"] == pytest.approx(ref["gr_intensity"], rel=0 if integer else 1e-12)
    assert_fit_close(out, "gr_x", ref["gr_x_fit"])
    assert_fit_close(out, "gr_y", ref["gr_y_fit"])


def check_slices(out: dict[str, Any], ref: dict[str, Any], integer: bool) -> None:
    """Slices as parity section 3: present ones to 1e-4 (of their sigma), missing ones None."""
    n = ref["slice_amount"]
    assert out["slice_amount"] == n and out["slice_orientation"] == ref["slice_orientation"]
    if ref["slice_length"] is None:
        assert out["slice_length"] is None
    else:  # cam_server subtracts two float32 axis values: float32 rounding
        assert out["slice_length"] == pytest.approx(ref["slice_length"], rel=1e-6)
    assert not any(f"slice_{k}_center_x" in out for k in range(n, n + 3)), "more slices than slice_amount"
    for k in range(n):
        fields = {f: out[f"slice_{k}_{f}"] for f in SLICE_FIELDS}
        if ref[f"slice_{k}_fit"] is None:
            assert all(v is None for v in fields.values()), f"slice {k} should be None, is {fields}"
            continue
        assert all(v is not None for v in fields.values()), f"slice {k} missing: {fields}"
        sigma = ref[f"slice_{k}_standard_deviation"]
        # the band position is an axis value; the other coordinate the fitted mean
        positional, fitted = ("center_y", "center_x") if ref["slice_orientation"] == "vertical" else (
            "center_x", "center_y")
        assert fields[positional] == ref[f"slice_{k}_{positional}"], f"slice {k} {positional}"
        assert abs(fields[fitted] - ref[f"slice_{k}_{fitted}"]) <= RTOL_FIT * sigma, f"slice {k} {fitted}"
        assert abs(fields["standard_deviation"] - sigma) <= RTOL_FIT * sigma, f"slice {k} sigma"
        assert fields["intensity"] == pytest.approx(ref[f"slice_{k}_intensity"], rel=0 if integer else 1e-12)
    if ref["coupling_slope"] is None:
        assert out["coupling"] is None and out["coupling_slope"] is None and out["coupling_offset"] is None
        return
    assert out["coupling_slope"] is not None and out["coupling_offset"] is not None, "coupling missing"
    # the line through the x-slices' (center_x, center_y): compared where it is used, at the slices
    xs = np.array([s["center_x"] for s in ref["x_slices"]])
    predicted = out["coupling_slope"] * xs + out["coupling_offset"]
    expected = ref["coupling_slope"] * xs + ref["coupling_offset"]
    width = np.mean([s["standard_deviation"] for s in ref["x_slices"]])
    assert np.all(np.abs(predicted - expected) <= RTOL_FIT * width), (predicted, expected)
    # coupling = slope * gr_x_sigma**2, whatever the orientation
    assert out["coupling"] == pytest.approx(out["coupling_slope"] * out["gr_x_fit_standard_deviation"] ** 2,
                                            rel=1e-12)
    assert ref["coupling"] == pytest.approx(ref["coupling_slope"] * out["gr_x_fit_standard_deviation"] ** 2,
                                            rel=1e-12)


FULL = {"image_good_region": {"threshold": 0.3, "gfscale": 1.8}, "image_slices": {"number_of_slices": 5}}

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (beam parameters, config)
    "round-160x120": (dict(height=120, width=160, noise=None), FULL),
    "tilted-poisson-calibrated-640x480": (
        dict(height=480, width=640, sigma=(40, 25), tilt=0.5, calibrated=True, seed=1),
        {**FULL, "fw_threshold": 0.2},
    ),
    "tall-narrow-200x300": (dict(height=300, width=200, sigma=(3, 5), center=(0.3, 0.6), seed=2), FULL),
    "wide-beam-400x300": (dict(height=300, width=400, sigma=(80, 50), noise="gauss", seed=3), FULL),
    "hot-pixels": (dict(height=240, width=320, hot_pixels=40, seed=4), FULL),
    "saturated": (dict(height=240, width=320, amplitude=12000, saturation=4095, seed=5), FULL),
    "cut-by-edge": (dict(height=200, width=300, center=(0.97, 0.5), seed=6), FULL),
    "horizontal-slices-tilted": (
        dict(height=300, width=360, sigma=(30, 30), tilt=-0.4, calibrated=True, seed=7),
        {"image_good_region": {"threshold": 0.2, "gfscale": 2.5},
         "image_slices": {"number_of_slices": 4, "scale": 3.0, "orientation": "horizontal"}},
    ),
    "int16": (dict(height=150, width=180, pedestal=-50, noise="gauss", dtype=np.int16, seed=8), FULL),
    "uint8": (dict(height=100, width=130, amplitude=200, pedestal=10, dtype=np.uint8, seed=9), FULL),
    "float64": (dict(height=128, width=128, noise="gauss", dtype=np.float64, seed=10), FULL),
    "float32-calibrated": (dict(height=90, width=110, noise="gauss", dtype=np.float32, calibrated=True, seed=11),
                           {"image_good_region": {}}),
    "tiny-6x8": (dict(height=6, width=8, sigma=(1.5, 1.2), noise=None), FULL),
    # parity section 3 failure paths: y-slices do not fit (beam cut at the top): y fields and slice_length
    # None, coupling still from the x-slices; x-slices do not fit: every slice field None, even vertical
    "y-slices-do-not-fit": (dict(height=120, width=200, center=(0.5, 0.02), sigma=(20, 8), seed=12),
                            {"image_good_region": {}, "image_slices": {"number_of_slices": 3, "scale": 3.0}}),
    "x-slices-do-not-fit": (dict(height=200, width=120, center=(0.02, 0.5), sigma=(8, 20), seed=13),
                            {"image_good_region": {}, "image_slices": {"number_of_slices": 3, "scale": 3.0}}),
    # a flat frame: empty good region (all gr_/slice fields None), FWHM 0/0 = NaN
    "flat-frame": (dict(height=50, width=70, amplitude=0.0, noise=None), FULL),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_function_matches_reference(case: str, beam_factory: Any) -> None:
    beam_args, config = CASES[case]
    beam = beam_factory(**beam_args)
    out = ImagePipeline(config).process(beam.image, 1, 0.0, beam.x_axis, beam.y_axis)
    assert out is not None
    check_against_reference(out, beam.image, beam.x_axis, beam.y_axis, config)


@pytest.mark.parametrize("seed", range(4))
def test_no_beam_does_not_raise_and_falls_back_like_cam_server(seed: int, beam_factory: Any) -> None:
    """Noise only: fits are ill-posed; where cam_server's fit fails both return the guesses."""
    beam = beam_factory(200, 260, amplitude=0.0, pedestal=20.0, seed=100 + seed)
    out = ImagePipeline(FULL).process(beam.image, 1, 0.0, beam.x_axis, beam.y_axis)
    assert out is not None and "slice_2_center_x" in out
    ref = check_against_reference_no_beam(out, beam)
    assert ref["x_profile"].sum() == out["intensity"]


def check_against_reference_no_beam(out: dict[str, Any], beam: Any) -> dict[str, Any]:
    """Exact and 1e-9 quantities as for beams; fits agree or are equally good optima."""
    ref = default_outputs(beam.image, beam.x_axis, beam.y_axis, FULL,
                          use_fits={k: v for k, v in out.items() if "_fit_" in k and v is not None})
    np.testing.assert_array_equal(out["x_profile"], ref["x_profile"])
    if ref["good_region"] is None:
        assert out["good_region"] is None
    else:
        np.testing.assert_array_equal(out["good_region"], ref["good_region"])
    for name, axis in (("x", beam.x_axis), ("y", beam.y_axis)):
        assert_close(out[f"{name}_fwhm"], ref[f"{name}_fwhm"], f"{name}_fwhm")
        assert_close(out[f"{name}_center_of_mass"], ref[f"{name}_center_of_mass"], f"{name}_com")
        assert_close(out[f"{name}_rms"], ref[f"{name}_rms"], f"{name}_rms")
        assert_fit_equivalent(out, name, ref[f"{name}_fit"], ref[f"{name}_fit_converged"],
                              ref[f"{name}_profile"], axis)
    return ref


def assert_fit_equivalent(out: dict[str, Any], name: str, ref_params: np.ndarray, ref_converged: bool,
                          profile: np.ndarray, axis: np.ndarray) -> None:
    mine = np.array([out[f"{name}_fit_{k}"] for k in ("offset", "amplitude", "mean", "standard_deviation")])
    if not ref_converged:
        guess = np.array(initial_guess(profile, axis), dtype=float)
        guess[3] = abs(guess[3])
        np.testing.assert_allclose(mine, guess, rtol=1e-12)
        return
    scale = np.array([max(abs(ref_params[0]), abs(ref_params[1]))] * 2 + [abs(ref_params[3])] * 2)
    if np.all(np.abs(mine - ref_params) <= RTOL_FIT * scale):
        return
    # Noise only: the least-squares surface has a flat valley (sigma -> infinity trades against
    # offset/amplitude); both MINPACK paths stop where a step gains less than ftol, at different
    # points of it. The point we stop at must fit the data as well (residual within 1e-4).
    x = axis.astype(np.float64)
    y = profile.astype(np.float32).astype(np.float64)
    ssr_mine = np.sum((gauss_function(x, *mine) - y) ** 2)
    ssr_ref = np.sum((gauss_function(x, *ref_params) - y) ** 2)
    assert ssr_mine <= ssr_ref * (1 + 1e-4), f"{name}: fit {mine} worse than reference {ref_params}"


def test_real_camera_frames(camera_frames: list[np.ndarray]) -> None:
    """The recorded camera frames (a dark camera: noise around 15 counts, no beam)."""
    x_axis = np.arange(659, dtype=np.float32)
    y_axis = np.arange(494, dtype=np.float32)
    pipeline = ImagePipeline(FULL)
    for index, frame in enumerate(camera_frames):
        out = pipeline.process(frame, index, 0.0, x_axis, y_axis)
        assert out["image"] is frame  # nothing to pre-process: the frame itself, no copy
        ref = check_against_reference_no_beam(out, type("B", (), dict(image=frame, x_axis=x_axis, y_axis=y_axis)))
        assert out["intensity"] == int(frame.astype(np.int64).sum())
        assert (out["min_value"], out["max_value"]) == (frame.min(), frame.max())
        np.testing.assert_array_equal(out["y_profile"], ref["y_profile"])
    # first frame: cam_server's x fit converges (to this value) and its y fit exhausts maxfev
    out = pipeline.process(camera_frames[0], 0, 0.0, x_axis, y_axis)
    assert out["x_fit_mean"] == pytest.approx(126.359, abs=1e-3)
    guess = initial_guess(out["y_profile"], y_axis)
    assert out["y_fit_mean"] == guess[2] and out["y_fit_amplitude"] == guess[1]


@pytest.mark.parametrize("calibrated", [False, True])
def test_real_camera_noise_with_beam(camera_frames: list[np.ndarray], calibrated: bool) -> None:
    """A Gaussian beam added to the real camera noise: every quantity agrees with the reference."""
    frame = camera_frames[1].astype(np.float64)
    yy, xx = np.mgrid[0:494, 0:659]
    beam = 300 * np.exp(-((xx - 400.3) ** 2) / (2 * 35**2) - ((yy - 210.7) ** 2) / (2 * 22**2))
    image = np.clip(np.rint(frame + beam), 0, 65535).astype(np.uint16)
    if calibrated:
        x_axis = (-(np.arange(659) - 329) * 12.5).astype(np.float32)
        y_axis = (-(np.arange(494) - 247) * 12.5).astype(np.float32)
    else:
        x_axis, y_axis = np.arange(659, dtype=np.float32), np.arange(494, dtype=np.float32)
    config = {**FULL, "fw_threshold": 0.1}
    out = ImagePipeline(config).process(image, 7, 1.5, x_axis, y_axis)
    check_against_reference(out, image, x_axis, y_axis, config)
    centre_x = float(np.interp(400.3, np.arange(659), x_axis))
    assert out["x_fit_mean"] == pytest.approx(centre_x, abs=0.5 * abs(float(x_axis[1] - x_axis[0])))


def test_reference_estimators_on_hand_worked_examples() -> None:
    """The reference itself, on examples worked out by hand from processing-parity.md."""
    # section 1: normalised by the sum over all samples, the far sample zeroed afterwards
    x = np.arange(10, dtype=np.float64)
    y = np.zeros(10)
    y[[2, 3, 9]] = [1.0, 1.0, 2.0]
    com, rms = center_of_mass_and_rms(x, y + 5.0, 5.0, 2.5, 0.2)  # window |x - 2.5| <= 1
    assert com == pytest.approx(1.25, rel=1e-15)  # (2 + 3) / 4, not renormalised to 2.5
    assert rms == pytest.approx(math.sqrt(0.75**2 / 4 + 1.75**2 / 4), rel=1e-15)
    # section 2: first sample below 0.3 of the range on each side, widened by 1.8, end exclusive later
    profile = np.array([0, 0, 1, 5, 9, 10, 8, 4, 1, 0, 0, 0])  # level 3: drops at 2 and 8
    assert good_region(profile, 0.3, 1.0) == (2, 8)
    assert good_region(profile, 0.3, 1.8) == (0, 10)  # 2 - 2.4 -> 0, int(8 + 2.4)
    assert good_region(profile, 0.3, 3.0) == (0, 11)  # clamped to the last index
    edge = np.array([10, 9, 8, 2, 1, 0])  # peak at 0: the left side keeps the maximum's index
    assert good_region(edge, 0.3, 1.0) == (0, 3)
    assert good_region(np.full(8, 4), 0.3, 1.8) == (0, 0)  # flat: never drops, an empty region
    # section 3: idx and boundaries
    axis = np.arange(100, dtype=np.float32)
    assert [find_index(axis, v) for v in (-3.0, 50.0, 50.3, 99.0, 120.0)] == [0, 50, 50, 99, 99]
    descending = (-np.arange(100) * 0.5).astype(np.float32)  # 0, -0.5, ..., -49.5
    assert [find_index(descending, v) for v in (1.0, -25.0, -25.2, -60.0)] == [0, 50, 51, 99]
    assert calculate_slices(axis, 50.0, 10.0, 2.0, 5) == ([40, 44, 48, 52, 56, 60], 2, 4.0)
    # size 2, idx(-25.2) = 51, idx(-24.2) = 49: h = 2, middle slice [49, 53)
    assert calculate_slices(descending, -25.2, 5.0, 2.0, 5) == ([41, 45, 49, 53, 57, 61], 2, 2.0)
    bounds, half, length = calculate_slices(axis, 50.0, 10.0, 2.0, 99)  # h at least 1; room for 49 bands only
    assert (bounds, half, length) == (list(range(1, 100, 2)), 1, 2.0)
    # near the end idx clamps to the last sample (h = 99 - 95); the middle slice fits, no outer pair does
    assert calculate_slices(axis, 95.0, 40.0, 2.0, 5) == ([91, 99], 4, 8.0)
    assert calculate_slices(axis, 1.0, 10.0, 2.0, 5) == ([], 2, None)  # middle slice does not fit
    # FWHM: linear crossings; extrapolated past the edge when a side never drops; flat: 0/0 = NaN
    tent = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 6.0, 4.0, 2.0, 0.0])
    assert full_width(np.arange(9.0), tent, 0.5) == pytest.approx(4.0, rel=1e-15)
    cut = np.array([2.0, 6.0, 10.0, 9.0, 8.0, 7.0])  # level 6: left crossing at 1, right side never drops
    assert full_width(np.arange(6.0), cut, 0.5) == pytest.approx(6.0 - 1.0, rel=1e-15)  # line (4, 8)-(5, 7)
    assert math.isnan(full_width(np.arange(5.0), np.full(5, 3.0), 0.5))


GOLDEN = golden_cases()
#: Centre of mass and rms end to end follow the fit's last digits (see test_golden_parity.py's COM_RMS_RTOL).
GOLDEN_MOMENTS_RTOL = 2e-6


@pytest.mark.parametrize("case", GOLDEN, ids=[case.id for case in GOLDEN])
def test_reference_reproduces_cam_servers_golden_outputs(case: Any) -> None:
    """The reference is cam_server's: every field of cam_server's own outputs (parity section 5).

    Same tolerances as the parity test, fits measured on their natural scale (an offset near 0
    relative to the amplitude); the no-beam frame's fits are not compared (processing-parity.md).
    """
    image, x_axis, y_axis, background = frame_of(case)
    config = dict(case.config)
    if config.get("averaging"):  # N copies of the frame averaged before pre-processing (compat 2.2 step 3)
        image = np.average(np.stack([image] * abs(int(config["averaging"]))), axis=0)
    image, x_axis, y_axis = preprocess(image, x_axis, y_axis, config, background)
    ref = default_outputs(image, x_axis, y_axis, config)
    flat: dict[str, Any] = {**ref, "x_axis": x_axis, "y_axis": y_axis, "image": image}
    for name in ("x", "y", "gr_x", "gr_y"):
        params = ref.get(f"{name}_fit")
        axis = x_axis if name == "x" else y_axis if name == "y" else ref.get(f"{name}_axis")
        for i, parameter in enumerate(FIT_PARAMETERS):
            flat[f"{name}_fit_{parameter}"] = None if params is None else params[i]
        flat[f"{name}_fit_gauss_function"] = (
            None if params is None else gauss_function(axis.astype(np.float64), *params))
    assert image.shape == case.image_shape
    assert float(np.sum(image, dtype=np.float64)) == pytest.approx(case.image_sum, rel=1e-12)
    problems = compare_results(case, flat, moments_rtol=None if case.frame == NO_BEAM_FRAME else GOLDEN_MOMENTS_RTOL)
    offsets = [p for p in problems if p.split(":")[0].endswith("_fit_offset")]
    for problem in offsets:  # relative to the larger of offset and amplitude, as assert_fit_close
        prefix = problem.split(":")[0][: -len("_offset")]
        expected = (case.results[f"{prefix}_offset"], case.results[f"{prefix}_amplitude"])
        scale = max(abs(expected[0]), abs(expected[1]))
        assert abs(flat[f"{prefix}_offset"] - expected[0]) <= RTOL_FIT * scale, problem
    remaining = [p for p in problems if p not in offsets]
    assert not remaining, f"{case.id}: the reference differs from cam_server:\n  " + "\n  ".join(remaining)


@pytest.mark.parametrize(
    "config",
    [
        {"image_background_enable": True, "image_background": "bg", "image_threshold": 120.7,
         "image_region_of_interest": [30, 200, -10, 150]},
        {"image_background_enable": "signed", "image_background": "bg", "mirror_x": True, "mirror_y": True},
        {"binning_x": 2, "binning_y": 3, "image_background_enable": True, "image_background": "bg"},
        {"binning_x": 2, "binning_y": 2, "binning_mean": True, "image_region_of_interest": [5, 50, 5, 40]},
        {"rotation": {"angle": 90, "mode": "ortho"}, "image_region_of_interest": [10, 100, 20, 80], "mirror_x": True},
        {"rotation": {"angle": 270, "mode": "ortho"}, "image_background_enable": True, "image_background": "bg"},
        {"rotation": 12.5, "image_threshold": 110},
        {"rotation": {"angle": -7, "order": 3, "mode": "nearest"}, "image_region_of_interest": [40, 120, 30, 100]},
        {"image_scale": 0.5, "image_offset": 3.0, "image_threshold": 105},
    ],
    ids=["bg-thr-roi", "signed-mirrors", "binned-bg", "mean-binning-roi", "ortho90-roi-mirror", "ortho270-bg",
         "rotate-number", "rotate-dict", "scale-offset"],
)
def test_preprocessing_then_default_function(config: dict[str, Any], beam_factory: Any) -> None:
    """Pre-processing in cam_server's order, compared image-for-image with numpy, then analysed."""
    beam = beam_factory(180, 240, sigma=(25, 18), tilt=0.3, calibrated=True, seed=21)
    background = np.random.default_rng(3).poisson(100, beam.image.shape).astype(np.uint16)
    full = {**config, **FULL}
    out = ImagePipeline(full, background_loader=lambda _id: background).process(
        beam.image, 1, 0.0, beam.x_axis, beam.y_axis)
    image, x_axis, y_axis = preprocess(beam.image, beam.x_axis, beam.y_axis, full, background)
    assert out["image"].dtype == image.dtype
    np.testing.assert_array_equal(out["image"], image)
    np.testing.assert_array_equal(out["x_axis"], x_axis)
    np.testing.assert_array_equal(out["y_axis"], y_axis)
    assert out["image"].flags.c_contiguous
    check_against_reference(out, image, x_axis, y_axis, full)
