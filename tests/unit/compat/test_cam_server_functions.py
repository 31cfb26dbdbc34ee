"""cam_server's helper API (``cam_server.pipeline.data_processing``) as camioc's shim provides it.

Every expected value is derived by hand in the comment beside it (or, for the moments of a fitted
profile, recomputed here with plain numpy from the formula of processing-parity.md §1), not by
calling the code under test a second way. The behaviour checked is camserver-compat.md
Appendix B and processing-parity.md §1-§3.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import sys

import numpy as np
import pytest
from PIL import Image

from camioc.compat import COMPAT_PATH, enable_cam_server_imports

enable_cam_server_imports()  # what every pipeline worker does before loading its function

from cam_server.pipeline.data_processing import functions, processor  # noqa: E402
from cam_server.pipeline.data_processing.functions import gauss_fit, get_fwhm  # noqa: E402


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only array, as a frame received zero-copy from a bsread stream is."""
    frozen = np.array(array)
    frozen.setflags(write=False)
    return frozen


# ------------------------------------------------------------------------------------ import path


def test_the_shim_is_what_scripts_import_and_the_path_is_appended_once() -> None:
    assert functions.__file__.startswith(COMPAT_PATH)
    assert processor.__name__ == "cam_server.pipeline.data_processing.processor"
    enable_cam_server_imports()
    assert sys.path.count(COMPAT_PATH) == 1
    # appended, never in front: an installed real cam_server would be found first
    assert sys.path.index(COMPAT_PATH) > 0
    same = importlib.import_module("cam_server.pipeline.data_processing.functions")
    assert same is functions and gauss_fit is functions.gauss_fit


def test_every_documented_helper_exists() -> None:
    documented = {
        "subtract_background", "subtract_background_signed", "rotate", "get_region_of_interest",
        "apply_threshold", "get_min_max", "get_x_y_profile", "get_intensity", "find_index",
        "get_good_region_profile", "gauss_fit", "slice_image", "calculate_slices", "get_x_slices_data",
        "get_y_slices_data", "linear_fit", "quadratic_fit", "get_fwhm", "get_fw", "binning",
        "get_png_from_image", "copy_image", "chunk_copy", "enforce_image_writable", "is_number",
    }
    assert documented <= set(functions.__all__)
    assert all(callable(getattr(functions, name)) for name in documented)
    assert callable(processor.process_image)


# ------------------------------------------------------------------------------------ background


def test_subtract_background_clamps_negatives_in_place() -> None:
    image = np.array([[10, 5], [0, 65535]], dtype=np.uint16)
    background = np.array([[3, 7], [1, 65535]], dtype=np.uint16)
    result = functions.subtract_background(image, background)
    # 10-3=7; 5-7<0 -> 0; 0-1<0 -> 0 (no uint16 wrap to 65535); 65535-65535=0
    assert result is image
    assert result.dtype == np.uint16
    assert result.tolist() == [[7, 0], [0, 0]]


def test_subtract_background_none_shape_and_read_only() -> None:
    image = np.array([[4, 9]], dtype=np.uint16)
    assert functions.subtract_background(image, None) is image
    assert image.tolist() == [[4, 9]]
    with pytest.raises(RuntimeError, match=r"^Invalid background_image size"):
        functions.subtract_background(image, np.zeros((2, 1), np.uint16))
    frozen = _read_only(image)
    result = functions.subtract_background(frozen, np.array([[5, 2]], dtype=np.uint16))
    assert result.tolist() == [[0, 7]] and frozen.tolist() == [[4, 9]]  # a copy; the frame untouched


def test_subtract_background_float_keeps_nan() -> None:
    image = np.array([[np.nan, 1.5, 3.0]])
    result = functions.subtract_background(image, np.array([[1.0, 2.0, 1.0]]))
    assert math.isnan(result[0, 0]) and result[0, 1:].tolist() == [0.0, 2.0]


def test_subtract_background_signed_is_an_int32_copy() -> None:
    image = _read_only(np.array([[10, 5], [0, 3]], dtype=np.uint16))
    result = functions.subtract_background_signed(image, np.array([[3, 7], [1, 3]], dtype=np.uint16))
    assert result.dtype == np.int32
    assert result.tolist() == [[7, -2], [-1, 0]]
    assert image.tolist() == [[10, 5], [0, 3]]
    with pytest.raises(RuntimeError, match=r"^Invalid background_image size"):
        functions.subtract_background_signed(image, np.zeros((3, 3), np.uint16))
    alone = functions.subtract_background_signed(image, None)  # no background: still the int32 copy
    assert alone.dtype == np.int32 and alone.tolist() == [[10, 5], [0, 3]] and not np.shares_memory(alone, image)


# ------------------------------------------------------------------------------------ geometry


def test_rotate_ortho_quarter_turns() -> None:
    image = np.array([[0, 1, 2], [3, 4, 5]])
    # counter-clockwise: the last column becomes the first row
    assert functions.rotate(image, 90, mode="ortho").tolist() == [[2, 5], [1, 4], [0, 3]]
    assert functions.rotate(image, 180, mode="ortho").tolist() == [[5, 4, 3], [2, 1, 0]]
    assert functions.rotate(image, -90, mode="ortho").tolist() == [[3, 0], [4, 1], [5, 2]]
    # int(degrees / 90): 45 -> 0 turns, 100 -> 1 turn
    assert functions.rotate(image, 45, mode="ortho").tolist() == image.tolist()
    assert functions.rotate(image, 100, mode="ortho").tolist() == [[2, 5], [1, 4], [0, 3]]


def test_rotate_scipy_keeps_shape_and_moves_pixels_counter_clockwise() -> None:
    image = np.zeros((5, 5))
    image[0, 2] = 8.0  # top middle
    rotated = functions.rotate(image, 90)
    assert rotated.shape == (5, 5)
    # a quarter turn counter-clockwise about the centre takes the top middle to the middle left
    assert rotated[2, 0] == pytest.approx(8.0, abs=1e-9)
    assert rotated.sum() == pytest.approx(8.0, abs=1e-9)


def test_rotate_mode_number_fills_corners_and_mode_name_is_scipys() -> None:
    ones = np.ones((3, 3))
    # at 45 degrees the corners of a 3x3 image come from 0.41 px outside the input
    filled = functions.rotate(ones, 45, mode="5")
    assert filled[0, 0] == pytest.approx(5.0) and filled[1, 1] == pytest.approx(1.0)
    assert functions.rotate(ones, 45)[0, 0] == pytest.approx(0.0)  # default "0.0": constant 0
    assert functions.rotate(ones, 45, mode="nearest")[0, 0] == pytest.approx(1.0)


def test_get_region_of_interest_is_the_documented_slice() -> None:
    image = np.arange(20).reshape(4, 5)
    roi = functions.get_region_of_interest(image, 1, 2, 2, 2)  # offset_x, size_x, offset_y, size_y
    assert roi.tolist() == [[11, 12], [16, 17]]  # rows 2:4, columns 1:3
    assert np.shares_memory(roi, image)


def test_apply_threshold_truncates_the_threshold() -> None:
    image = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    result = functions.apply_threshold(image, 3.7)  # int(3.7) = 3: 1 and 2 go, 3 stays
    assert result is image and image.tolist() == [[0, 0, 3], [4, 5, 6]]
    assert functions.apply_threshold(np.array([[0, 1]])).tolist() == [[0, 1]]  # default 1
    frozen = _read_only(np.array([[1, 9]]))
    assert functions.apply_threshold(frozen, 5).tolist() == [[0, 9]] and frozen.tolist() == [[1, 9]]


def test_binning_sums_clipped_or_means_into_uint16_with_averaged_axes() -> None:
    image = (7 * np.arange(5)[:, None] + np.arange(7)[None, :]).astype(np.uint16)  # image[r, c] = 7r + c
    x_axis = np.arange(7, dtype=np.float32) * 10
    y_axis = np.arange(5, dtype=np.float32)
    binned, bx_axis, by_axis = functions.binning(image, x_axis, y_axis, 3, 2)
    # cropped to 4 rows x 6 columns; block (0, 0) = (0+1+2) + (7+8+9) = 27, (0, 1) = 12 + 33 = 45,
    # (1, 0) = (14+15+16) + (21+22+23) = 111, (1, 1) = 54 + 75 = 129
    assert binned.dtype == np.uint16 and binned.tolist() == [[27, 45], [111, 129]]
    assert bx_axis.tolist() == [10.0, 40.0] and by_axis.tolist() == [0.5, 2.5]
    assert bx_axis.dtype == np.float32  # the axis' own type
    no_image = functions.binning(None, np.arange(7), y_axis, 3, 2)
    assert no_image[0] is None and no_image[1].tolist() == [1.0, 4.0] and no_image[2].tolist() == [0.5, 2.5]
    means, _, _ = functions.binning(image, x_axis, y_axis, 3, 2, mean=True)
    assert means.dtype == np.uint16 and means.tolist() == [[4, 7], [18, 21]]  # 4.5, 7.5, 18.5, 21.5 truncated
    saturated, _, _ = functions.binning(np.full((2, 2), 65535, np.uint16), None, None, 2, 2)
    assert saturated.tolist() == [[65535]]  # 262140 clipped
    negative, _, _ = functions.binning(np.full((2, 2), -5, np.int16), None, None, 2, 1)
    assert negative.tolist() == [[0], [0]]


# ------------------------------------------------------------------------------------ statistics


def test_min_max_skip_nan_and_keep_the_dtype() -> None:
    assert functions.get_min_max(np.array([[np.nan, 2.0], [-1.0, 5.0]])) == (-1.0, 5.0)
    low, high = functions.get_min_max(np.array([[3, 9]], dtype=np.uint16))
    assert (low, high) == (3, 9) and low.dtype == np.uint16


def test_profiles_are_exact_int64_for_unsigned_images() -> None:
    image = np.array([[65535, 1], [65535, 2]], dtype=np.uint16)
    x_profile, y_profile = functions.get_x_y_profile(image)
    assert x_profile.dtype == np.int64 and x_profile.tolist() == [131070, 3]  # column sums
    assert y_profile.dtype == np.int64 and y_profile.tolist() == [65536, 65537]  # row sums
    fx, fy = functions.get_x_y_profile(np.array([[0.5, 1.0]], dtype=np.float32))
    assert fx.dtype == np.float64 and fx.tolist() == [0.5, 1.0] and fy.tolist() == [1.5]
    assert functions.get_intensity(x_profile) == 131073


def test_full_width_interpolated_and_not() -> None:
    x = np.arange(5, dtype=np.float64)
    y = np.array([0.0, 1.0, 4.0, 3.0, 0.0])
    # half level 2: left crossing between (1, 1) and (2, 4) at 1 + 1/3, right between (3, 3) and
    # (4, 0) at 3 + 1/3 -> 2.0; samples first below: x=1 and x=4 -> 3.0
    assert get_fwhm(x, y) == pytest.approx(2.0, abs=1e-12)
    assert functions.get_fw(x, y, 0.5, interpolate=False) == pytest.approx(3.0)
    # level 1: left between (0, 0) and (1, 1) at 1.0; right between (3, 3) and (4, 0) at 3 + 2/3
    assert functions.get_fw(x, y, 0.25) == pytest.approx(8 / 3, abs=1e-12)
    # the baseline is the minimum, the width positive on a descending axis
    assert get_fwhm(x[::-1].copy(), y + 10) == pytest.approx(2.0, abs=1e-12)


def test_full_width_at_an_edge_and_of_a_flat_profile() -> None:
    x = np.arange(4, dtype=np.float64)
    # the left side never drops below the level 2: the edge sample 0 and its neighbour (1, 4) give
    # the line through (0, 3) and (1, 4), at 2: x = -1; right: (2, 1) and (1, 4) at 2: x = 2 - 1/3
    assert functions.get_fw(x, np.array([3.0, 4.0, 1.0, 0.0])) == pytest.approx(8 / 3, abs=1e-12)
    assert functions.get_fw(x, np.array([3.0, 4.0, 1.0, 0.0]), interpolate=False) == pytest.approx(2.0)
    # flat: nothing below the level, interpolation divides 0 by 0 (cam_server's numpy gives NaN);
    # without interpolation every sample is "at or below" the level: the maximum's neighbour ends it
    assert math.isnan(functions.get_fw(x, np.full(4, 2.0)))
    assert functions.get_fw(x, np.full(4, 2.0), interpolate=False) == pytest.approx(1.0)
    # a sample exactly on the level ends the peak without interpolation: samples 1 and 3
    assert functions.get_fw(np.arange(5.0), np.array([0.0, 2.0, 4.0, 2.0, 0.0]), interpolate=False) == 2.0
    assert functions.get_fwhm(np.arange(5.0), np.array([0.0, 2.0, 4.0, 2.0, 0.0])) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.arange(3.0), np.array([0.0, 1.0, 3.0, 0.0])),  # x shorter than y
        (np.array([]), np.array([])),  # empty
        (np.array([1.0]), np.array([5.0])),  # one sample
        ("no", "numbers"),  # not numbers
        (np.arange(4.0), None),
    ],
)
def test_full_width_is_zero_on_any_error(x, y) -> None:
    assert functions.get_fw(x, y) == 0.0
    assert functions.get_fw(x, y, 0.3, interpolate=False) == 0.0


# ------------------------------------------------------------------------------------ fits


def _gaussian(axis: np.ndarray, offset: float, amplitude: float, mean: float, sigma: float) -> np.ndarray:
    return offset + amplitude * np.exp(-((axis - mean) ** 2) / (2 * sigma**2))


def test_gauss_fit_recovers_an_exact_gaussian() -> None:
    axis = np.arange(50, dtype=np.float32)
    profile = _gaussian(axis.astype(np.float64), 10.0, 100.0, 20.0, 4.0)
    curve, offset, amplitude, mean, sigma, com, rms = gauss_fit(profile, axis)
    assert (offset, amplitude, mean, sigma) == pytest.approx((10.0, 100.0, 20.0, 4.0), rel=1e-5)
    assert curve.dtype == np.float64 and curve.shape == (50,)
    assert curve == pytest.approx(_gaussian(axis.astype(np.float64), offset, amplitude, mean, sigma), rel=1e-12)
    # offset removed, a symmetric sampled gaussian: centre 20, second moment sigma**2 = 16
    assert com == pytest.approx(20.0, abs=1e-4) and rms == pytest.approx(4.0, rel=1e-4)


def test_gauss_fit_sigma_is_positive_on_a_descending_axis() -> None:
    axis = np.arange(40, dtype=np.float32)[::-1] * np.float32(0.5)  # 19.5 ... 0, as calibrated axes
    profile = _gaussian(axis.astype(np.float64), 0.0, 50.0, 9.0, 1.5)
    _curve, _offset, _amplitude, mean, sigma, com, _rms = gauss_fit(profile, axis)
    assert sigma > 0 and sigma == pytest.approx(1.5, rel=1e-5)
    assert mean == pytest.approx(9.0, rel=1e-6) and com == pytest.approx(9.0, rel=1e-5)


def test_gauss_fit_outlier_removal_follows_parity_section_1() -> None:
    axis = np.arange(60, dtype=np.float32)
    profile = np.rint(_gaussian(axis.astype(np.float64), 0.0, 400.0, 20.0, 2.0))
    profile[50] += 300.0  # a hot pixel 15 sigma from the beam
    _c, offset, _a, mean, sigma, com, rms = gauss_fit(profile, axis, remove_outliers=True)
    _c2, _o2, _a2, _m2, _s2, plain_com, plain_rms = gauss_fit(profile, axis, remove_outliers=False)
    # §1 by hand: q = (p - offset) / sum over ALL samples; zero |a - mean| > 5 sigma; no renormalising
    a = axis.astype(np.float64)
    q = (profile - offset) / (profile - offset).sum()
    windowed = np.where(np.abs(a - mean) > 5 * sigma, 0.0, q)
    expected_com = float((a * windowed).sum())
    expected_rms = math.sqrt(abs(float(((a - expected_com) ** 2 * windowed).sum())))
    assert com == pytest.approx(expected_com, rel=1e-9) and rms == pytest.approx(expected_rms, rel=1e-9)
    # the normalisation is not redone after the zeroing: not the mean over the window
    renormalised = float((a * windowed).sum() / windowed.sum())
    assert abs(com - renormalised) > 0.1
    # without outlier removal: the plain moments of the profile as given (no offset, every sample)
    plain = float((a * profile).sum() / profile.sum())
    assert plain_com == pytest.approx(plain, rel=1e-9)
    assert plain_rms == pytest.approx(math.sqrt(float(((a - plain) ** 2 * profile).sum() / profile.sum())), rel=1e-9)
    # the hot pixel (weight 300 of ~2305 at x = 50) pulls the plain centre: (20 * 2005 + 50 * 300) / 2305 = 23.9
    assert plain_com == pytest.approx((20 * (profile.sum() - 300) + 50 * 300) / profile.sum(), rel=1e-6)


def test_linear_and_quadratic_least_squares() -> None:
    assert functions.linear_fit([0, 1, 2, 3], [1, 3, 5, 7]).tolist() == pytest.approx([2.0, 1.0])
    # x mean 1, y mean 2/3; Sxy = 1, Sxx = 2: slope 1/2, offset 2/3 - 1/2 = 1/6
    assert functions.linear_fit([0, 1, 2], [0, 1, 1]).tolist() == pytest.approx([0.5, 1 / 6])
    x = np.array([-1.0, 0.0, 1.0, 2.0, 3.0])
    assert functions.quadratic_fit(x, 2 * x**2 - 3 * x + 1).tolist() == pytest.approx([2.0, -3.0, 1.0])
    # with noise: the residual is orthogonal to x**2, x and 1 (the normal equations)
    y = 2 * x**2 - 3 * x + 1 + np.array([0.3, -0.2, 0.1, 0.4, -0.5])
    a, b, c = functions.quadratic_fit(x, y)
    residual = y - (a * x**2 + b * x + c)
    assert np.abs(np.stack([x**2, x, np.ones_like(x)]) @ residual).max() < 1e-9
    with pytest.raises(TypeError):
        functions.linear_fit([1.0], [2.0])
    with pytest.raises(TypeError):
        functions.quadratic_fit([1.0, 2.0], [2.0, 3.0])


# ------------------------------------------------------------------------------------ good region, index


@pytest.mark.parametrize(
    ("value", "ascending", "descending"),
    [
        (-1.0, 0, 4),  # below the range: first / last index
        (5.0, 4, 0),  # above the range
        (2.0, 2, 2),  # on a sample
        (2.5, 2, 2),  # between 2 and 3: the sample at or before the value (ascending), at or after -v (descending)
        (0.0, 0, 4),
        (3.0, 3, 1),
    ],
)
def test_find_index_on_ascending_and_descending_axes(value: float, ascending: int, descending: int) -> None:
    axis = np.arange(5, dtype=np.float32)
    assert functions.find_index(axis, value) == ascending
    # descending 4, 3, 2, 1, 0: left insertion point of -v in -axis (v=2.5 -> -2.5 into [-4..0] = 2)
    assert functions.find_index(axis[::-1].copy(), value) == descending


def test_good_region_profile_parity_section_2() -> None:
    profile = np.array([0, 0, 1, 5, 9, 5, 1, 0, 0, 0])
    # level 0 + 9*0.3 = 2.7, max at 4; left: p[2]=1 < 2.7 -> 2; right: p[6] = 1 -> 6; w = 4
    # gfscale 1.5: (6 - 4) / 2 = 1 -> (1, 7)
    assert functions.get_good_region_profile(profile, 0.3, 1.5) == (1, 7)
    # default 1.8: (7.2 - 4)/2 = 1.6 -> 0.4, 7.6 -> int -> (0, 7)
    assert functions.get_good_region_profile(profile) == (0, 7)
    # rising to the last sample: the right side never drops and keeps m = 4; left p[2]=2 < 2.7 -> 2;
    # w = 2, widen 0.8 -> 1.2, 4.8 -> end clamped to n - 1 = 4 -> (1, 4)
    assert functions.get_good_region_profile(np.array([0, 1, 2, 3, 9])) == (1, 4)
    # index 0 is never examined: start stays at the maximum
    assert functions.get_good_region_profile(np.array([0, 9, 9])) == (1, 1)


# ------------------------------------------------------------------------------------ slices


def test_slice_image_band_sums() -> None:
    image = np.arange(15).reshape(5, 3)
    # two bands of 5 // 2 = 2 rows; the fifth row belongs to none
    assert functions.slice_image(image, 2).tolist() == [[3, 5, 7], [15, 17, 19]]
    vertical = functions.slice_image(image, number_of_slices=3, vertical=True)
    assert vertical.tolist() == [[0, 3, 6, 9, 12], [1, 4, 7, 10, 13], [2, 5, 8, 11, 14]]


def test_calculate_slices_parity_section_3() -> None:
    axis = np.arange(20, dtype=np.float32)
    # size = 2 * 3 / 3 = 2; c = idx(10) = 10; h = |idx(11) - 10| = 1 -> [9, 11], length |9 - 11| = 2;
    # the remaining pair: [7, 9, 11, 13]
    assert functions.calculate_slices(axis, 10.0, 3.0, 2, 3) == ([7, 9, 11, 13], 1, 2.0)
    # descending 19..0: c = idx(10) = 9, h = |idx(11) - 9| = |8 - 9| = 1 -> [8, 10], then [6, 8, 10, 12]
    assert functions.calculate_slices(axis[::-1].copy(), 10.0, 3.0, 2, 3) == ([6, 8, 10, 12], 1, 2.0)
    # five slices on 10 samples centred at 5: [4, 6], [2, 4, 6, 8], next pair (0, 10) leaves the axis
    assert functions.calculate_slices(np.arange(10.0), 5.0, 5.0, 2, 5) == ([2, 4, 6, 8], 1, 2.0)
    # wider slices: size = 2 * 6 / 3 = 4, h = |idx(12) - 10| = 2 -> [8, 12], length 4; then [4, 8, 12, 16]
    assert functions.calculate_slices(axis, 10.0, 6.0, 2, 3) == ([4, 8, 12, 16], 2, 4.0)
    # a tiny sigma still gives half-slices of one sample
    assert functions.calculate_slices(axis, 10.0, 0.01, 2, 1) == ([9, 11], 1, 2.0)
    # the middle slice does not fit at the edge: no boundaries, no length
    assert functions.calculate_slices(np.arange(10.0), 0.0, 3.0, 2, 3) == ([], 1, None)
    with pytest.raises(ValueError, match="odd"):
        functions.calculate_slices(axis, 10.0, 3.0, 2, 4)


def _banded_beam() -> np.ndarray:
    """10 rows x 20 columns: columns 7-8, 9-10, 11-12 hold gaussians along y centred at rows 3, 4, 5."""
    rows = np.arange(10, dtype=np.float64)[:, None]
    image = np.zeros((10, 20))
    for first, mean in ((7, 3.0), (9, 4.0), (11, 5.0)):
        image[:, first : first + 2] = 100.0 * np.exp(-((rows - mean) ** 2) / (2 * 1.5**2))
    return image


def test_x_slices_are_column_bands_fitted_along_y() -> None:
    image = _banded_beam()
    x_axis, y_axis = np.arange(20, dtype=np.float32), np.arange(10, dtype=np.float32)
    slices, slice_length = functions.get_x_slices_data(image, x_axis, y_axis, 10.0, 3.0, 2, 3)
    # boundaries [7, 9, 11, 13] (as calculate_slices above), h = 1: centres x = x_axis[8], [10], [12]
    assert slice_length == 2.0 and len(slices) == 3
    for ([center_x, center_y], sigma, intensity), (x, y, first) in zip(slices, ((8, 3, 7), (10, 4, 9), (12, 5, 11)), strict=True):
        assert center_x == x
        assert center_y == pytest.approx(y, rel=1e-6) and sigma == pytest.approx(1.5, rel=1e-6)
        assert intensity == pytest.approx(image[:, first : first + 2].sum(), rel=1e-12)
    # the coupling line through the slice centres: y = x/2 - 1
    slope, offset = functions.linear_fit([c[0][0] for c in slices], [c[0][1] for c in slices])
    assert (slope, offset) == pytest.approx((0.5, -1.0), rel=1e-6)


def test_y_slices_are_row_bands_fitted_along_x_and_failures_are_empty() -> None:
    image = _banded_beam().T.copy()  # 20 rows x 10 columns: rows 7-8, 9-10, 11-12 hold the gaussians
    x_axis, y_axis = np.arange(10, dtype=np.float32), np.arange(20, dtype=np.float32)
    slices, slice_length = functions.get_y_slices_data(image, x_axis, y_axis, 10.0, 3.0, 2, 3)
    assert slice_length == 2.0
    assert [c[0][1] for c in slices] == [8, 10, 12]  # center_y = y_axis[b_k + h]
    assert [c[0][0] for c in slices] == pytest.approx([3.0, 4.0, 5.0], rel=1e-6)
    assert [c[1] for c in slices] == pytest.approx([1.5] * 3, rel=1e-6)
    assert [c[2] for c in slices] == pytest.approx([image[r : r + 2].sum() for r in (7, 9, 11)], rel=1e-12)
    # an x axis longer than the image: [2, 4, 6, 8] on 7 columns, the band [6, 8) is dropped
    long_axis = np.arange(20, dtype=np.float32)
    partial, _ = functions.get_x_slices_data(image[:, :7], long_axis[:10], long_axis, 5.0, 3.0, 2, 3)
    assert len(partial) == 2
    # the middle slice does not fit at the edge: no slices
    assert functions.get_y_slices_data(image, x_axis, y_axis, 0.0, 3.0, 2, 3) == ([], None)
    assert functions.get_x_slices_data(image, x_axis, y_axis, 0.0, 3.0) == ([], None)


# ------------------------------------------------------------------------------------ PNG, copies


def test_png_is_the_rest_rendering_with_cam_servers_options() -> None:
    from camioc.processing.png import render_png

    image = np.tile(np.arange(0, 256, 16, dtype=np.uint16), (8, 1))  # 16 wide x 8 high, 0 ... 240
    png = functions.get_png_from_image(image)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png == render_png(image)
    decoded = Image.open(io.BytesIO(png)).convert("RGB")
    assert decoded.size == (16, 8)
    # matplotlib's rainbow at 0: (|2*0 - 0.5|, sin 0, cos 0) = (0.5, 0, 1); at 1: (1.5 -> 1, sin pi, cos pi/2) = (1, 0, 0)
    assert decoded.getpixel((0, 0)) == (128, 0, 255)
    assert decoded.getpixel((15, 0)) == (255, 0, 0)
    gray = Image.open(io.BytesIO(functions.get_png_from_image(image, colormap_name="gray"))).convert("RGB")
    assert gray.getpixel((15, 0)) == (255, 255, 255)
    half = Image.open(io.BytesIO(functions.get_png_from_image(image, scale=0.5, min_value=0, max_value=120)))
    assert half.size == (8, 4)
    # display range 0..120: the right half of the image is clipped to the top colour
    assert half.convert("RGB").getpixel((7, 0)) == (255, 0, 0)


def test_copies_and_writability() -> None:
    frozen = _read_only(np.arange(15, dtype=np.uint16).reshape(5, 3))
    copied = functions.copy_image(frozen)
    assert copied.flags.writeable and not np.shares_memory(copied, frozen)
    assert copied.tolist() == frozen.tolist()
    chunked = functions.chunk_copy(frozen, max_chunk=13)  # 6 bytes a row: bands of 2 rows
    assert chunked.flags.writeable and not np.shares_memory(chunked, frozen)
    assert chunked.tolist() == frozen.tolist() and chunked.dtype == np.uint16
    assert functions.chunk_copy(frozen, max_chunk=1).tolist() == frozen.tolist()  # at least a row a band
    writable = np.zeros((2, 2))
    assert functions.enforce_image_writable(writable) is writable
    made = functions.enforce_image_writable(frozen)
    assert made is not frozen and made.flags.writeable and made.tolist() == frozen.tolist()


@pytest.mark.parametrize(("value", "expected"), [
    (1, True), (1.5, True), ("2", True), (" 3.5e1 ", True), ("nan", True), (np.float32(3), True),
    (None, False), ("abc", False), ([1], False), ("", False), (10**400, False),
])
def test_is_number_means_float_works(value, expected: bool) -> None:
    assert functions.is_number(value) is expected


# ------------------------------------------------------------------------------------ processor


def test_processor_process_image_is_the_default_function() -> None:
    image = np.zeros((30, 40), dtype=np.uint16)
    image[10:20, 5:25] = 100  # a 20 x 10 flat-top beam: intensity 20000
    x_axis = np.arange(40, dtype=np.float32)
    y_axis = np.arange(30, dtype=np.float32)
    parameters = {"camera_name": "cam", "image_good_region": {"threshold": 0.3, "gfscale": 1.8},
                  "background_data": np.ones((30, 40), np.uint16)}
    out = processor.process_image(image, 7, 12.5, x_axis, y_axis, parameters)
    keys = list(out)
    assert keys[:6] == ["x_axis", "y_axis", "image", "width", "height", "processing_parameters"]
    assert (out["width"], out["height"], out["timestamp"]) == (40, 30, 12.5)
    assert out["intensity"] == 20000 and out["x_profile"].tolist()[5] == 1000
    assert (out["min_value"], out["max_value"]) == (0, 100)
    # column sums: 1000 on columns 5..24: half level 500 crossed half-way between 4 and 5 and between 24 and 25
    assert out["x_fwhm"] == pytest.approx(20.0)
    assert "good_region" in out and "gr_intensity" in out
    # the background array is data, not configuration: not in processing_parameters
    assert json.loads(out["processing_parameters"]) == {
        "camera_name": "cam", "image_good_region": {"threshold": 0.3, "gfscale": 1.8}}
    assert "background_data" in parameters  # the caller's dict is left as it was
    plain = processor.process_image(image, 7, 12.5, x_axis, y_axis, {})
    assert "good_region" not in plain and json.loads(plain["processing_parameters"]) == {}
