"""Pre-processing steps, one at a time, against plain numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from camioc.errors import ProcessingError
from camioc.processing import ImagePipeline


def run(config: dict[str, Any], image: np.ndarray, background: np.ndarray | None = None, **axes: Any) -> dict:
    pipeline = ImagePipeline(config, background_loader=(lambda _id: background) if background is not None else None)
    x_axis = axes.get("x_axis", np.arange(image.shape[1], dtype=np.float32))
    y_axis = axes.get("y_axis", np.arange(image.shape[0], dtype=np.float32))
    out = pipeline.process(image, 1, 0.0, x_axis, y_axis)
    assert out is not None
    return out


@pytest.fixture
def frame() -> np.ndarray:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 4096, (37, 53)).astype(np.uint16)
    image.flags.writeable = False  # as received from the stream: read-only, never modified
    return image


def test_input_frame_is_not_modified_and_passed_through_unchanged(frame: np.ndarray) -> None:
    out = run({}, frame)
    assert out["image"] is frame
    out = run({"image_threshold": 2000, "image_background_enable": True, "image_background": "b"},
              frame, np.full(frame.shape, 100, np.uint16))
    assert out["image"] is not frame and out["image"].flags.writeable


@pytest.mark.parametrize("mode", ["unsigned", "signed", "passive"])
def test_background_modes(frame: np.ndarray, mode: str) -> None:
    background = np.random.default_rng(1).integers(0, 3000, frame.shape).astype(np.uint16)
    enable = True if mode == "unsigned" else mode
    out = run({"image_background_enable": enable, "image_background": "b"}, frame, background)
    a, b = frame.astype(np.int64), background.astype(np.int64)
    if mode == "unsigned":
        assert out["image"].dtype == np.uint16
        np.testing.assert_array_equal(out["image"], np.clip(a - b, 0, None))
    elif mode == "signed":
        assert out["image"].dtype == np.int32
        np.testing.assert_array_equal(out["image"], a - b)
        assert out["min_value"] < 0
    else:
        assert out["image"] is frame
    np.testing.assert_array_equal(out["x_profile"], out["image"].astype(np.int64).sum(axis=0))


def test_float_background_is_rounded_to_the_image_type(frame: np.ndarray) -> None:
    background = np.full(frame.shape, 10.6)
    out = run({"image_background_enable": True, "image_background": "b"}, frame, background)
    np.testing.assert_array_equal(out["image"], np.clip(frame.astype(np.int64) - 11, 0, None))


def test_passive_background_reaches_a_user_function(tmp_path: Any, frame: np.ndarray) -> None:
    (tmp_path / "probe.py").write_text(
        "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n"
        "    return {'bg_sum': int(parameters['background_data'].sum()),\n"
        "            'ok': parameters['image_background_ok']}\n"
    )
    background = np.full(frame.shape, 3, np.uint16)
    pipeline = ImagePipeline({"image_background_enable": "passive", "image_background": "b", "function": "probe"},
                             background_loader=lambda _id: background, scripts_dir=tmp_path)
    out = pipeline.process(frame, 1, 0.0, np.arange(53), np.arange(37))
    assert out["bg_sum"] == 3 * frame.size and out["ok"] is True


def test_bad_background_size_is_a_processing_error(frame: np.ndarray) -> None:
    config = {"image_background_enable": True, "image_background": "b"}
    with pytest.raises(ProcessingError, match="Bad background image size"):
        run(config, frame, np.zeros((10, 10), np.uint16))


def test_background_of_the_raw_frame_is_binned_with_it(frame: np.ndarray) -> None:
    background = np.full(frame.shape, 7, np.uint16)
    config = {"binning_x": 2, "binning_y": 2, "image_background_enable": True, "image_background": "b"}
    out = run(config, frame, background)
    binned = frame[:36, :52].astype(np.int64).reshape(18, 2, 26, 2).sum(axis=(1, 3))
    np.testing.assert_array_equal(out["image"], np.clip(np.minimum(binned, 0xFFFF) - 28, 0, None))


@pytest.mark.parametrize("mean", [False, True])
def test_binning(frame: np.ndarray, mean: bool) -> None:
    config = {"binning_x": 3, "binning_y": 2, "binning_mean": mean}
    x_axis = np.linspace(-5, 5, 53, dtype=np.float32)
    out = run(config, frame, x_axis=x_axis)
    blocks = frame[:36, :51].astype(np.float64).reshape(18, 2, 17, 3)
    if mean:
        assert out["image"].dtype == np.float64
        np.testing.assert_allclose(out["image"], blocks.mean(axis=(1, 3)), rtol=1e-15)
    else:
        assert out["image"].dtype == np.uint16
        np.testing.assert_array_equal(out["image"], np.minimum(blocks.sum(axis=(1, 3)), 0xFFFF))
    # axes: numpy's mean of the float32 blocks, in float32 (as cam_server's binning computes them)
    assert out["x_axis"].dtype == np.float32
    np.testing.assert_array_equal(out["x_axis"], x_axis[:51].reshape(17, 3).mean(axis=1))
    np.testing.assert_allclose(out["x_axis"], x_axis[:51].astype(np.float64).reshape(17, 3).mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(out["y_axis"], np.arange(36).reshape(18, 2).mean(axis=1))
    assert (out["width"], out["height"]) == (17, 18)


def test_binned_sums_saturate_at_16_bits() -> None:
    image = np.full((4, 4), 60000, np.uint16)
    out = run({"binning_x": 2, "binning_y": 2}, image)
    assert out["image"].dtype == np.uint16 and np.all(out["image"] == 0xFFFF)


def test_mirrors_flip_image_and_axes(frame: np.ndarray) -> None:
    x_axis = np.arange(53, dtype=np.float32) * 2
    y_axis = np.arange(37, dtype=np.float32) * 3
    out = run({"mirror_x": True, "mirror_y": True}, frame, x_axis=x_axis, y_axis=y_axis)
    np.testing.assert_array_equal(out["image"], frame[::-1, ::-1])
    np.testing.assert_array_equal(out["x_axis"], x_axis[::-1])
    np.testing.assert_array_equal(out["y_axis"], y_axis[::-1])
    np.testing.assert_array_equal(out["x_profile"], frame.astype(np.int64).sum(axis=0)[::-1])


@pytest.mark.parametrize("angle", [90, 180, 270, -90])
def test_ortho_rotation_turns_image_and_axes(frame: np.ndarray, angle: int) -> None:
    x_axis = np.arange(53, dtype=np.float32) + 1000
    y_axis = np.arange(37, dtype=np.float32) - 500
    out = run({"rotation": {"angle": angle, "mode": "ortho"}}, frame, x_axis=x_axis, y_axis=y_axis)
    k = (angle // 90) % 4
    np.testing.assert_array_equal(out["image"], np.rot90(frame, k))
    # every pixel keeps its physical coordinates: rotate coordinate maps along with the image
    xs = np.rot90(np.broadcast_to(x_axis, frame.shape), k)
    ys = np.rot90(np.broadcast_to(y_axis[:, None], frame.shape), k)
    new_x, new_y = (ys[0], xs[:, 0]) if k % 2 else (xs[0], ys[:, 0])
    np.testing.assert_array_equal(out["x_axis"], new_x)
    np.testing.assert_array_equal(out["y_axis"], new_y)


def test_rotation_number_and_dict(frame: np.ndarray) -> None:
    import scipy.ndimage

    out = run({"rotation": 30}, frame)
    np.testing.assert_array_equal(out["image"], scipy.ndimage.rotate(frame, 30, reshape=False, order=1))
    out = run({"rotation": {"angle": -20, "order": 0, "mode": "7"}}, frame)
    expected = scipy.ndimage.rotate(frame, -20, reshape=False, order=0, mode="constant", cval=7.0)
    np.testing.assert_array_equal(out["image"], expected)
    assert run({"rotation": 0}, frame)["image"] is frame  # angle 0 disables


@pytest.mark.parametrize(
    ("roi", "window"),
    [
        ([10, 20, 5, 12], (10, 30, 5, 17)),
        ([-5, 20, -3, 100], (0, 20, 0, 37)),  # offsets at least 0, height limited to the image
        ([40, 50, 30, 50], (3, 53, 0, 37)),  # too large: sizes limited, then shifted back to fit, not cut
        ([100, 10, 50, 10], (43, 53, 27, 37)),  # offset beyond the image: shifted back to its edge
    ],
)
def test_region_of_interest_is_clamped(frame: np.ndarray, roi: list[int], window: tuple[int, ...]) -> None:
    """processing-parity.md section 4 on a 53 x 37 frame: the window ``(x0, x1, y0, y1)`` expected."""
    x0, x1, y0, y1 = window
    x_axis = np.linspace(3, -3, 53, dtype=np.float32)
    out = run({"image_region_of_interest": roi}, frame, x_axis=x_axis)
    np.testing.assert_array_equal(out["image"], frame[y0:y1, x0:x1])
    np.testing.assert_array_equal(out["x_axis"], x_axis[x0:x1])
    np.testing.assert_array_equal(out["y_axis"], np.arange(y0, y1))
    assert (out["width"], out["height"]) == (x1 - x0, y1 - y0)
    assert out["image"].flags.c_contiguous


def test_too_large_region_of_interest_is_shifted_to_fit() -> None:
    """The parity example: [40, 300, 30, 220] on 320 x 240 gives 300 x 220 from (20, 20)."""
    image = np.arange(240 * 320, dtype=np.uint32).reshape(240, 320)
    out = run({"image_region_of_interest": [40, 300, 30, 220]}, image)
    assert out["image"].shape == (220, 300)
    np.testing.assert_array_equal(out["image"], image[20:240, 20:320])
    assert (out["x_axis"][0], out["y_axis"][0]) == (20, 20)


@pytest.mark.parametrize("roi", [[0, 0, 0, 10], [5, 10, 5, -3], [-2, -1, 0, 5]])
def test_region_of_interest_without_pixels_is_an_error(frame: np.ndarray, roi: list[int]) -> None:
    with pytest.raises(ProcessingError, match="has no pixels"):
        run({"image_region_of_interest": roi}, frame)


@pytest.mark.parametrize("threshold", [0.5, 1.0, 1000.9, 70000])
def test_threshold_uses_int(frame: np.ndarray, threshold: float) -> None:
    out = run({"image_threshold": threshold}, frame)
    expected = frame.copy()
    expected[expected < int(threshold)] = 0
    np.testing.assert_array_equal(out["image"], expected)


def test_threshold_on_float_keeps_nan() -> None:
    image = np.array([[1.0, np.nan, 5.5], [2.9, 3.0, -1.0]])
    out = run({"image_threshold": 3.7}, image)
    np.testing.assert_array_equal(out["image"], [[0.0, np.nan, 5.5], [0.0, 3.0, 0.0]])
    assert out["max_value"] == 5.5 and out["min_value"] == 0.0  # nanmin / nanmax
    assert np.isnan(out["x_profile"][1])  # sums propagate NaN


def test_scale_and_offset_make_float64(frame: np.ndarray) -> None:
    out = run({"image_scale": 0.5, "image_offset": -2}, frame)
    assert out["image"].dtype == np.float64
    np.testing.assert_array_equal(out["image"], frame * 0.5 - 2)
    assert out["x_profile"].dtype == np.float64
    assert run({"image_scale": 0, "image_offset": 0}, frame)["image"] is frame  # falsy: disabled


def test_image_averaging_is_a_rolling_mean(frame: np.ndarray) -> None:
    pipeline = ImagePipeline({"image_averaging": 3, "image_threshold": 100})
    frames = [np.where(frame >= 100, frame, 0) + i for i in range(5)]
    axes = (np.arange(53), np.arange(37))
    outputs = [pipeline.process(f, i, 0.0, *axes)["image"] for i, f in enumerate(frames)]
    thresholded = [np.where(f < 100, 0, f).astype(np.float64) for f in frames]
    for i, out in enumerate(outputs):
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, np.mean(thresholded[max(0, i - 2) : i + 1], axis=0))


def test_frame_averaging_blocks_and_rolling(frame: np.ndarray) -> None:
    axes = (np.arange(53), np.arange(37))
    frames = [(frame // 2 + 7 * i).astype(np.uint16) for i in range(6)]
    block = ImagePipeline({"averaging": 3})
    results = [block.process(f, i, 0.0, *axes) for i, f in enumerate(frames)]
    assert [r is None for r in results] == [True, True, False, True, True, False]
    np.testing.assert_array_equal(results[2]["image"], np.mean(frames[0:3], axis=0))
    np.testing.assert_array_equal(results[5]["image"], np.mean(frames[3:6], axis=0))
    rolling = ImagePipeline({"averaging": -2})
    results = [rolling.process(f, i, 0.0, *axes) for i, f in enumerate(frames)]
    np.testing.assert_array_equal(results[0]["image"], frames[0])
    np.testing.assert_array_equal(results[4]["image"], np.mean(frames[3:5], axis=0))


def test_frame_averaging_restarts_on_shape_change(frame: np.ndarray) -> None:
    pipeline = ImagePipeline({"averaging": 2})
    assert pipeline.process(frame, 0, 0.0, np.arange(53), np.arange(37)) is None
    small = frame[:10, :10].copy()
    assert pipeline.process(small, 1, 0.0, np.arange(10), np.arange(10)) is None  # restarted
    out = pipeline.process(small, 2, 0.0, np.arange(10), np.arange(10))
    np.testing.assert_array_equal(out["image"], small)


def test_float_rolling_mean_does_not_drift() -> None:
    rng = np.random.default_rng(0)
    pipeline = ImagePipeline({"image_averaging": 4})
    frames = [rng.normal(0, 1e6, (8, 8)) for _ in range(50)]
    for i, f in enumerate(frames):
        out = pipeline.process(f, i, 0.0, np.arange(8), np.arange(8))
    np.testing.assert_allclose(out["image"], np.mean(frames[-4:], axis=0), rtol=1e-9, atol=1e-6)


def test_axes_must_match_the_image(frame: np.ndarray) -> None:
    with pytest.raises(ProcessingError, match="Axes do not match"):
        ImagePipeline({}).process(frame, 0, 0.0, np.arange(10), np.arange(37))
    out = ImagePipeline({}).process(frame, 0, 0.0, None, None)  # missing axes: pixel indices
    np.testing.assert_array_equal(out["x_axis"], np.arange(53))


@pytest.mark.parametrize("image", [np.zeros((3, 3), bool), np.zeros((2, 3, 4), np.uint8), np.zeros((0, 5))])
def test_unsupported_images_are_processing_errors(image: np.ndarray) -> None:
    with pytest.raises(ProcessingError):
        ImagePipeline({}).process(image, 0, 0.0, None, None)
