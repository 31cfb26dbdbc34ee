"""Kernels on every pixel type, at the overflow boundaries; no recompilation per frame; memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from processing_reference import calculate_slices, center_of_mass_and_rms, find_index, full_width, good_region

from camioc.processing import ImagePipeline, fitting, kernels, regions, warm_up
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


def _random_profile(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Small integer profiles (ties at the level), noise, beams cut by either edge, single peaks."""
    n = int(rng.integers(2, 40))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        profile = rng.integers(0, 6, n).astype(np.int64)
    elif kind == 1:
        profile = rng.normal(0, 1, n)
    elif kind == 2:
        centre, sigma = rng.uniform(-5, n + 5), rng.uniform(0.5, n)
        profile = np.rint(100 * np.exp(-((np.arange(n) - centre) ** 2) / (2 * sigma**2))).astype(np.int64)
    else:
        profile = np.full(n, 3, np.int64)
        profile[rng.integers(0, n)] = 5
    if rng.random() < 0.5:  # calibrated: descending float32
        return profile, (-(np.arange(n) - n / 3) * 0.7).astype(np.float32)
    return profile, np.arange(n, dtype=np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_estimators_agree_with_the_reference_on_odd_profiles(seed: int) -> None:
    """FWHM, centre of mass/rms, good region, idx and slice boundaries on 500 profiles each."""
    rng = np.random.default_rng(seed)
    for _ in range(500):
        profile, axis = _random_profile(rng)
        x, y = axis.astype(np.float64), profile.astype(np.float64)
        fraction = float(rng.choice([0.5, 0.3, 0.25, 0.1]))
        mine, ref = kernels.full_width(x, y, fraction), full_width(x, profile, fraction)
        assert (np.isnan(mine) and np.isnan(ref)) or mine == pytest.approx(ref, rel=1e-9, abs=1e-12), (profile, axis)
        gfscale = float(rng.uniform(0.5, 4))
        assert regions.good_region_bounds(profile, fraction, gfscale) == good_region(profile, fraction, gfscale)
        mean, sigma = float(x[rng.integers(0, x.size)]), float(rng.uniform(0.1, 10))
        com, rms = kernels.com_rms(x, y, float(y.min()), mean, sigma)
        ref_com, ref_rms = center_of_mass_and_rms(x, profile, float(y.min()), mean, sigma)
        assert (com, rms) == pytest.approx((ref_com, ref_rms), rel=1e-9, abs=1e-12)
        value = float(rng.uniform(x.min() - 2, x.max() + 2))
        assert regions.find_index(axis, value) == find_index(axis, value)
        assert regions.find_index(axis, mean) == find_index(axis, mean)
        scale, count = float(rng.uniform(0.5, 5)), int(rng.choice([1, 3, 5, 7]))
        bounds, length = regions.slice_boundaries(axis, mean, sigma, scale, count)
        ref_bounds, _, ref_length = calculate_slices(axis, mean, sigma, scale, count)
        assert (bounds or []) == ref_bounds
        assert (length is None and ref_length is None) or length == pytest.approx(ref_length, rel=1e-6)


def test_centre_of_mass_is_not_renormalised_inside_the_window() -> None:
    """processing-parity.md section 1, worked by hand: (2 + 3) / 4, not (2 + 3) / 2."""
    x = np.arange(10, dtype=np.float64)
    y = np.full(10, 5.0)
    y[[2, 3, 9]] += [1.0, 1.0, 2.0]
    com, rms = kernels.com_rms(x, y, 5.0, 2.5, 0.2)
    assert com == pytest.approx(1.25, rel=1e-15)
    assert rms == pytest.approx(np.sqrt(0.75**2 / 4 + 1.75**2 / 4), rel=1e-15)
    flat_com, flat_rms = kernels.com_rms(x, np.full(10, 5.0), 5.0, 2.5, 0.2)  # sum 0: no NaN, both 0
    assert (flat_com, flat_rms) == (0.0, 0.0)


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
