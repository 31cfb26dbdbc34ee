"""Camera transforms and axes against independent (loop / index based) expectations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from camioc.config.camera import CameraConfig
from camioc.errors import ConfigError
from camioc.sources.transform import camera_axes, roi_bounds, transform_image, transformed_shape


def config(**keys) -> CameraConfig:
    return CameraConfig.from_dict({"name": "cam", "source": "X", "source_type": "simulation", **keys})


def random_image(height: int, width: int, dtype="uint16", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100.0, 30.0, (height, width)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, (height, width), dtype=dtype)


# --- independent reference implementations (loops / explicit index maps) ----------------------


def ref_binning(image: np.ndarray, bx: int, by: int, mean: bool) -> np.ndarray:
    hb, wb = image.shape[0] // by, image.shape[1] // bx
    integer = image.dtype.kind in "iu"
    out = np.zeros((hb, wb), dtype=np.uint16 if integer else image.dtype)
    for i in range(hb):
        for j in range(wb):
            block = [int(v) if integer else float(v) for v in image[i * by:(i + 1) * by, j * bx:(j + 1) * bx].ravel()]
            if integer:
                total = sum(block)
                value = total // len(block) if mean else total
                out[i, j] = min(max(value, 0), 0xFFFF)
            else:
                out[i, j] = sum(block) / len(block) if mean else sum(block)
    return out


def ref_rot90(image: np.ndarray, k: int) -> np.ndarray:
    """Counter-clockwise quarter turns, by explicit index maps."""
    k %= 4
    h, w = image.shape
    if k == 0:
        return image.copy()
    if k == 2:
        return np.array([[image[h - 1 - i, w - 1 - j] for j in range(w)] for i in range(h)], dtype=image.dtype)
    if k == 1:  # out[i, j] = in[j, w-1-i], shape (w, h)
        return np.array([[image[j, w - 1 - i] for j in range(h)] for i in range(w)], dtype=image.dtype)
    return np.array([[image[h - 1 - j, i] for j in range(h)] for i in range(w)], dtype=image.dtype)


def ref_transform(image: np.ndarray, cfg: CameraConfig) -> np.ndarray:
    if cfg.binning_x > 1 or cfg.binning_y > 1:
        image = ref_binning(image, cfg.binning_x, cfg.binning_y, cfg.binning_mean)
    h, w = image.shape
    if cfg.mirror_x:
        image = image[:, [w - 1 - j for j in range(w)]]
    if cfg.mirror_y:
        image = image[[h - 1 - i for i in range(h)], :]
    image = ref_rot90(image, cfg.rotate)
    if cfg.roi:
        ox, sx, oy, sy = cfg.roi
        h, w = image.shape
        rows = [i for i in range(oy, oy + sy) if 0 <= i < h]
        cols = [j for j in range(ox, ox + sx) if 0 <= j < w]
        image = image[np.ix_(rows, cols)]
    return image


# --- image --------------------------------------------------------------------------------------


def test_no_transform_returns_the_same_array():
    image = random_image(6, 9)
    assert transform_image(image, config()) is image


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8", "int32"])
@pytest.mark.parametrize(("bx", "by"), [(2, 2), (3, 2), (1, 4), (5, 1)])
@pytest.mark.parametrize("mean", [False, True])
def test_binning_integer(dtype, bx, by, mean):
    image = random_image(13, 17, dtype)  # remainders on both axes
    out = transform_image(image, config(binning_x=bx, binning_y=by, binning_mean=mean))
    expected = ref_binning(image, bx, by, mean)
    assert out.dtype == np.uint16
    assert out.shape == (13 // by, 17 // bx)
    np.testing.assert_array_equal(out, expected)


def test_binning_sum_clips_at_0xffff():
    image = np.full((4, 4), 40000, dtype=np.uint16)
    image[0, 0] = 1
    out = transform_image(image, config(binning_x=2, binning_y=2))
    np.testing.assert_array_equal(out, np.full((2, 2), 0xFFFF, np.uint16))
    small = np.full((4, 4), 1000, dtype=np.uint16)
    np.testing.assert_array_equal(transform_image(small, config(binning_x=2, binning_y=2)), 4000)


def test_binning_negative_values_clip_to_zero():
    image = np.full((2, 2), -5, dtype=np.int16)
    assert transform_image(image, config(binning_x=2, binning_y=2))[0, 0] == 0


@pytest.mark.parametrize("mean", [False, True])
def test_binning_float_keeps_dtype(mean):
    image = random_image(9, 8, "float32")
    out = transform_image(image, config(binning_x=2, binning_y=3, binning_mean=mean))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref_binning(image, 2, 3, mean), rtol=1e-5)


def test_binning_larger_than_image_is_refused():
    with pytest.raises(ConfigError, match="Binning"):
        transform_image(random_image(3, 3), config(binning_x=4))


def test_mirror_x_and_y():
    image = random_image(5, 7)
    out_x = transform_image(image, config(mirror_x=True))
    out_y = transform_image(image, config(mirror_y=True))
    for i, j in itertools.product(range(5), range(7)):
        assert out_x[i, j] == image[i, 6 - j]
        assert out_y[i, j] == image[4 - i, j]


@pytest.mark.parametrize("rotate", [-1, 0, 1, 2, 3, 4, 5])
def test_rotate_non_square(rotate):
    image = random_image(5, 8)
    out = transform_image(image, config(rotate=rotate))
    np.testing.assert_array_equal(out, ref_rot90(image, rotate))
    assert out.shape == ((8, 5) if rotate % 2 else (5, 8))


def test_roi_crop_and_clamping():
    image = random_image(10, 12)
    np.testing.assert_array_equal(transform_image(image, config(roi=[2, 5, 3, 4])), image[3:7, 2:7])
    # clamped at the far edges (the config refuses negative offsets; roi_bounds clamps them too)
    np.testing.assert_array_equal(transform_image(image, config(roi=[8, 100, 7, 100])), image[7:, 8:])
    assert roi_bounds([-3, 5, -1, 4], 12, 10) == (0, 2, 0, 3)


def test_roi_outside_the_image_is_refused():
    with pytest.raises(ConfigError, match="outside"):
        transform_image(random_image(10, 12), config(roi=[20, 5, 0, 4]))


def test_roi_applies_after_rotation():
    image = random_image(6, 10)  # rotated: 10 rows x 6 columns
    out = transform_image(image, config(rotate=1, roi=[1, 3, 2, 5]))
    np.testing.assert_array_equal(out, ref_rot90(image, 1)[2:7, 1:4])


COMBOS = [
    {},
    {"mirror_x": True, "rotate": 1},
    {"mirror_y": True, "rotate": 3, "roi": [1, 4, 2, 3]},
    {"binning_x": 2, "binning_y": 3, "mirror_x": True, "mirror_y": True, "rotate": 1, "roi": [1, 3, 0, 4]},
    {"binning_x": 3, "binning_mean": True, "rotate": 2, "roi": [0, 100, 2, 100]},
    {"binning_y": 2, "mirror_x": True, "rotate": -1},
    {"roi": [3, 6, 1, 9], "mirror_y": True},
]


@pytest.mark.parametrize("keys", COMBOS)
def test_order_and_shape_against_reference(keys):
    image = random_image(13, 17)
    cfg = config(**keys)
    out = transform_image(image, cfg)
    np.testing.assert_array_equal(out, ref_transform(image, cfg))
    assert out.flags.c_contiguous
    assert transformed_shape(17, 13, cfg) == (out.shape[1], out.shape[0])


def test_transform_copies_only_when_needed():
    image = random_image(8, 8)
    out = transform_image(image, config(rotate=2, roi=[0, 4, 0, 4]))
    assert out.flags.c_contiguous and out.flags.owndata
    assert not np.shares_memory(out, image)


# --- axes ---------------------------------------------------------------------------------------


CALIBRATION = {
    "reference_marker": [10, 4, 30, 14],
    "reference_marker_width": 200.0,
    "reference_marker_height": 50.0,
    "angle_horizontal": 0.0,
    "angle_vertical": 0.0,
}


@pytest.mark.parametrize("keys", COMBOS)
@pytest.mark.parametrize("calibrated", [False, True])
def test_axes_match_the_transformed_image(keys, calibrated):
    cfg = config(**keys, camera_calibration=CALIBRATION if calibrated else None)
    out = transform_image(random_image(13, 17), cfg)
    x_axis, y_axis = camera_axes(cfg, 17, 13)
    assert x_axis.dtype == np.float32 and y_axis.dtype == np.float32
    assert (len(x_axis), len(y_axis)) == (out.shape[1], out.shape[0])


def test_uncalibrated_axes_are_pixel_indices_with_roi_offset():
    x_axis, y_axis = camera_axes(config(), 7, 5)
    np.testing.assert_array_equal(x_axis, np.arange(7))
    np.testing.assert_array_equal(y_axis, np.arange(5))
    # like cam_server: the axes of the full (binned, rotated) image, sliced by the ROI
    x_axis, y_axis = camera_axes(config(rotate=1, binning_x=2, roi=[2, 3, 1, 2]), 20, 9)
    np.testing.assert_array_equal(x_axis, [2, 3, 4])
    np.testing.assert_array_equal(y_axis, [1, 2])


def test_calibrated_axes_formula():
    x_axis, y_axis = camera_axes(config(camera_calibration=CALIBRATION), 40, 20)
    # origin = marker centre (20, 9); pixel size 200/20 = 10 and 50/10 = 5; axis = -(i - origin)*size
    np.testing.assert_allclose(x_axis, -(np.arange(40) - 20) * 10.0)
    np.testing.assert_allclose(y_axis, -(np.arange(20) - 9) * 5.0)
    assert np.all(np.diff(x_axis) < 0) and np.all(np.diff(y_axis) < 0)
    assert x_axis[20] == 0 and y_axis[9] == 0


def test_calibration_origin_is_truncated_and_angles_in_degrees():
    cal = dict(CALIBRATION, reference_marker=[0, 0, 5, 3], angle_horizontal=60.0, angle_vertical=90.0)
    x_axis, y_axis = camera_axes(config(camera_calibration=cal), 10, 6)
    size_x = 200.0 / 5 * math.cos(math.radians(60))
    np.testing.assert_allclose(x_axis, -(np.arange(10) - 2) * size_x, rtol=1e-6)  # origin int(2.5) = 2
    np.testing.assert_allclose(y_axis, 0.0, atol=1e-9)  # cos(90 deg)


@pytest.mark.parametrize("keys", [k for k in COMBOS if "binning_x" not in k and "binning_y" not in k])
def test_calibrated_axes_equal_cam_server_without_binning(keys):
    """Without binning: cam_server's axes (calibration over the oriented image, then ROI slice)."""
    cfg = config(**keys, camera_calibration=CALIBRATION)
    width, height = (13, 17) if cfg.rotate % 2 else (17, 13)  # oriented, before ROI
    full_x = -(np.arange(width) - 20) * 10.0
    full_y = -(np.arange(height) - 9) * 5.0
    if cfg.roi:
        ox, sx, oy, sy = cfg.roi
        full_x = full_x[max(ox, 0):ox + sx]
        full_y = full_y[max(oy, 0):oy + sy]
    x_axis, y_axis = camera_axes(cfg, 17, 13)
    np.testing.assert_allclose(x_axis, full_x)
    np.testing.assert_allclose(y_axis, full_y)


def _oriented_coordinate_images(cfg: CameraConfig, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw float images whose pixels hold their calibrated x / y in the oriented full-res image.

    Built by transforming an index image (mirror/rotate only) and scattering the oriented
    coordinates back to the raw pixels: independent of camera_axes' bookkeeping.
    """
    orient = config(mirror_x=cfg.mirror_x, mirror_y=cfg.mirror_y, rotate=cfg.rotate)
    index = np.arange(width * height, dtype=np.int64).reshape(height, width)
    oriented = transform_image(index, orient)
    rows, cols = np.indices(oriented.shape)
    x_raw = np.empty(width * height)
    y_raw = np.empty(width * height)
    x_raw[oriented.ravel()] = (-(cols - 20) * 10.0).ravel()
    y_raw[oriented.ravel()] = (-(rows - 9) * 5.0).ravel()
    return x_raw.reshape(height, width), y_raw.reshape(height, width)


@pytest.mark.parametrize("keys", COMBOS)
def test_calibrated_axes_follow_every_transform(keys):
    """Each output pixel's axis value = mean calibrated coordinate of the raw pixels it holds."""
    cfg = config(**keys, camera_calibration=CALIBRATION)
    mean_cfg = config(**dict(keys, binning_mean=True))
    x_raw, y_raw = _oriented_coordinate_images(cfg, 17, 13)
    x_img = transform_image(x_raw, mean_cfg)
    y_img = transform_image(y_raw, mean_cfg)
    x_axis, y_axis = camera_axes(cfg, 17, 13)
    np.testing.assert_allclose(x_img, np.broadcast_to(x_axis, x_img.shape), atol=1e-3)
    np.testing.assert_allclose(y_img, np.broadcast_to(y_axis[:, None], y_img.shape), atol=1e-3)


def test_calibrated_axes_are_binning_invariant():
    cal = config(camera_calibration=CALIBRATION)
    binned = config(camera_calibration=CALIBRATION, binning_x=2, binning_y=2)
    x1, y1 = camera_axes(cal, 40, 20)
    x2, y2 = camera_axes(binned, 40, 20)
    np.testing.assert_allclose(x2, x1.reshape(-1, 2).mean(axis=1))
    np.testing.assert_allclose(y2, y1.reshape(-1, 2).mean(axis=1))


@pytest.mark.parametrize("keys", COMBOS)
def test_transformed_shape_matches_axes(keys):
    cfg = config(**keys)
    for width, height in [(17, 13), (64, 48), (31, 7)]:
        x_axis, y_axis = camera_axes(cfg, width, height)
        assert transformed_shape(width, height, cfg) == (len(x_axis), len(y_axis))


@pytest.mark.parametrize("rotate", [1, 3])
def test_large_odd_rotation_uses_tiled_copy_correctly(rotate):
    image = random_image(1030, 1100, "uint8")  # > 2**20 pixels, sizes not multiples of the tile
    out = transform_image(image, config(rotate=rotate, mirror_y=True))
    np.testing.assert_array_equal(out, np.rot90(image[::-1], rotate))
    assert out.flags.c_contiguous
