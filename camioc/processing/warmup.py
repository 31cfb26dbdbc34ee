"""Compile the numba kernels before the first frame.

Kernels are compiled per pixel type on first use (and cached on disk by numba); a pipeline worker
calls :func:`warm_up` at start-up so that the first frames are not delayed by compilation. It runs
a small synthetic beam through every code path (plain, background/threshold/ROI/mirror, signed
background, good region with vertical and horizontal slices, averaging/scale in float64, binning),
once writable and once read-only: numba compiles read-only arrays (frames received zero-copy from
a stream) as a separate type.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["warm_up"]

_CONFIGS: tuple[dict[str, Any], ...] = (
    {},
    {
        "image_background_enable": True,
        "image_background": "warm-up",
        "image_threshold": 3,
        "image_region_of_interest": [2, 40, 3, 30],
        "mirror_x": True,
        "mirror_y": True,
    },
    {"image_background_enable": "signed", "image_background": "warm-up"},
    {
        "image_good_region": {"threshold": 0.3, "gfscale": 1.8},
        "image_slices": {"number_of_slices": 3, "orientation": "vertical"},
        "fw_threshold": 0.2,
    },
    {"image_good_region": {}, "image_slices": {"number_of_slices": 3, "orientation": "horizontal"}},
    {"image_averaging": 2, "image_scale": 2.0, "image_offset": 1.0},
    {  # frame averaging: float64 frames through the fused pass
        "averaging": -2,
        "image_background_enable": True,
        "image_background": "warm-up",
        "image_threshold": 3,
        "mirror_x": True,
        "image_good_region": {},
        "image_slices": {"number_of_slices": 3},
    },
    {"binning_x": 2, "binning_y": 2, "image_background_enable": True, "image_background": "warm-up"},
    {"binning_x": 2, "binning_y": 2, "binning_mean": True},
)


def _beam(shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    y, x = np.indices(shape, dtype=np.float64)
    beam = 10.0 + 1000.0 * np.exp(-((x - shape[1] / 2) ** 2) / 50.0 - (y - shape[0] / 2) ** 2 / 30.0)
    if dtype.kind in "iu":
        beam = np.clip(np.rint(beam), np.iinfo(dtype).min, np.iinfo(dtype).max)
    return beam.astype(dtype)


def warm_up(dtypes: Iterable[DTypeLike] = (np.uint16,)) -> float:
    """Compile (or load from numba's cache) every kernel for these pixel types; returns seconds."""
    from camioc.processing.pipeline import ImagePipeline  # noqa: PLC0415 - avoid an import cycle

    start = time.perf_counter()
    shape = (48, 64)
    for dtype_like in dtypes:
        dtype = np.dtype(dtype_like)
        writable = _beam(shape, dtype)
        readonly = writable.copy()
        readonly.flags.writeable = False
        background = np.full(shape, 5, dtype=dtype)
        x_axis = np.arange(shape[1], dtype=np.float32)
        y_axis = np.arange(shape[0], dtype=np.float32)
        for config in _CONFIGS:
            pipeline = ImagePipeline(config, background_loader=lambda _id, bg=background: bg)
            for pulse_id, image in enumerate((writable, readonly, writable)):
                pipeline.process(image, pulse_id, 0.0, x_axis, y_axis)
    return time.perf_counter() - start
