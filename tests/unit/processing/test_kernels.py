"""Kernels on every pixel type, at the overflow boundaries; no recompilation per frame; memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

from camioc.processing import ImagePipeline, fitting, kernels, warm_up
from camioc.processing.preprocess import image_profiles


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.float32, np.float64]
)
def test_profiles_and_extremes_on_every_pixel_type(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        image = rng.normal(0, 1e3, (33, 47)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        low, high = max(info.min, -(2**40)), min(info.max, 2**40)
        image = rng.integers(low, high, (33, 47), dtype=np.int64, endpoint=True).astype(dtype)
    profiles = image_profiles(image)
    wide = image.astype(np.float64 if image.dtype.kind == "f" else np.int64)
    if image.dtype.kind == "f":
        np.testing.assert_allclose(profiles.x, wide.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(profiles.y, wide.sum(axis=1), rtol=1e-12)
    else:
        np.testing.assert_array_equal(profiles.x, wide.sum(axis=0))
        np.testing.assert_array_equal(profiles.y, wide.sum(axis=1))
    assert profiles.min_value == image.min() and profiles.min_value.dtype == image.dtype
    assert profiles.max_value == image.max() and profiles.max_value.dtype == image.dtype


@pytest.mark.parametrize("rows", [32767, 40000])
def test_no_overflow_at_the_int32_accumulator_boundary(rows: int) -> None:
    """Full-scale 16-bit columns: int32 sums up to 32767 rows, int64 beyond; exact either way."""
    image = np.full((rows, 2), 65535, np.uint16)
    assert kernels.accumulator_dtype(image.dtype, image.shape) == (np.int32 if rows <= 32767 else np.int64)
    profiles = image_profiles(image)
    assert profiles.x.tolist() == [65535 * rows] * 2
    out = ImagePipeline({"image_background_enable": "signed", "image_background": "b"},
                        background_loader=lambda _id: np.zeros_like(image)).process(image, 0, 0.0, None, None)
    assert out["x_profile"].tolist() == [65535 * rows] * 2
    assert out["image"].dtype == np.int32


def _signature_counts() -> dict[str, int]:
    dispatchers = {
        name: getattr(kernels, name) for name in kernels.__all__ if hasattr(getattr(kernels, name), "signatures")
    }
    dispatchers["fit"] = fitting._fit_gaussian
    return {name: len(d.signatures) for name, d in dispatchers.items()}


def test_warm_up_compiles_everything_a_uint16_pipeline_needs(beam_factory: Any) -> None:
    """After warm_up, new frame sizes, configurations and read-only frames compile nothing."""
    warm_up((np.uint16,))
    before = _signature_counts()
    configs = [
        {},
        {"image_background_enable": True, "image_background": "b", "image_threshold": 5,
         "image_region_of_interest": [3, 100, 4, 60], "mirror_x": True},
        {"image_background_enable": "signed", "image_background": "b", "mirror_y": True},
        {"image_good_region": {}, "image_slices": {"number_of_slices": 7, "orientation": "horizontal"}},
        {"image_good_region": {}, "image_slices": {"number_of_slices": 3}, "fw_threshold": 0.3},
        {"averaging": 2, "image_scale": 3.0},
        {"averaging": -3, "image_background_enable": True, "image_background": "b", "mirror_y": True,
         "image_region_of_interest": [1, 50, 2, 40], "image_good_region": {}, "image_slices": {}},
        {"binning_x": 4, "binning_y": 2, "binning_mean": True},
    ]
    for height, width in ((70, 130), (97, 201)):
        beam = beam_factory(height, width, seed=height)
        received = beam.image.copy()
        received.flags.writeable = False  # zero-copy from a stream: numba types it separately
        background = np.full((height, width), 50, np.uint16)
        background.flags.writeable = False  # e.g. a memory-mapped .npy
        for config in configs:
            pipeline = ImagePipeline(config, background_loader=lambda _id, bg=background: bg)
            for pulse_id, image in enumerate((beam.image, received, beam.image)):
                pipeline.process(image, pulse_id, 0.0, beam.x_axis, beam.y_axis)
    assert _signature_counts() == before


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        ({}, 0.05),
        ({"image_background_enable": True, "image_background": "b", "image_threshold": 120,
          "image_region_of_interest": [128, 768, 128, 768]}, 0.6),  # the new ROI image itself
        ({"image_good_region": {}, "image_slices": {"number_of_slices": 5}}, 0.05),
        ({"mirror_x": True, "image_threshold": 120}, 1.05),  # the new (mirrored) image itself
    ],
    ids=["plain", "bg-thr-roi", "slices", "mirror"],
)
def test_memory_per_frame(beam_factory: Any, config: dict[str, Any], limit: float) -> None:
    """Extra memory per frame, as a fraction of the frame: only the output image, if any."""
    beam = beam_factory(1024, 1024, sigma=(60, 40), seed=8)
    background = np.full(beam.image.shape, 100, np.uint16)
    pipeline = ImagePipeline(config, background_loader=lambda _id: background)
    pipeline.process(beam.image, 0, 0.0, beam.x_axis, beam.y_axis)  # caches (converted background)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = pipeline.process(beam.image, 1, 0.0, beam.x_axis, beam.y_axis)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert out is not None
    assert peak <= limit * beam.image.nbytes + 200_000, f"{peak / beam.image.nbytes:.2f} frames"
