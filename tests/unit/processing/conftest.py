"""Fixtures for the processing tests: synthetic beams and the recorded camera frames.

numba compiles kernels on first use per pixel type and caches them on disk; the session-wide
``warm_up()`` in ``tests/conftest.py`` covers uint16, other types compile in the first test using
them (a one-off per machine).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class Beam:
    """A synthetic camera frame and its axes."""

    image: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray


def make_beam(  # noqa: PLR0913
    height: int,
    width: int,
    *,
    center: tuple[float, float] = (0.5, 0.5),
    sigma: tuple[float, float] = (20.0, 12.0),
    tilt: float = 0.0,
    amplitude: float = 3000.0,
    pedestal: float = 100.0,
    noise: str | None = "poisson",
    hot_pixels: int = 0,
    saturation: float | None = None,
    dtype: type = np.uint16,
    calibrated: bool = False,
    seed: int = 0,
) -> Beam:
    """A Gaussian beam (sigma in pixels, ``tilt`` = x-y correlation) on a pedestal, with noise.

    ``calibrated`` gives descending physical axes as cam_server's camera calibration does
    (``-(i - origin) * pixel_size``, float32).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u = (xx - center[0] * width) / sigma[0]
    v = (yy - center[1] * height) / sigma[1]
    exponent = -(u**2 - 2 * tilt * u * v + v**2) / (2 * (1 - tilt**2))
    image = pedestal + amplitude * np.exp(exponent)
    if noise == "poisson":
        image = rng.poisson(image).astype(np.float64)
    elif noise == "gauss":
        image = image + rng.normal(0.0, 0.05 * amplitude, image.shape)
    if hot_pixels:
        rows = rng.integers(0, height, hot_pixels)
        cols = rng.integers(0, width, hot_pixels)
        image[rows, cols] = 4095.0
    if saturation is not None:
        image = np.minimum(image, saturation)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        image = np.clip(np.rint(image), info.min, info.max)
    image = image.astype(dtype)
    if calibrated:
        x_axis = (-(np.arange(width) - width * 0.4) * 7.3).astype(np.float32)
        y_axis = (-(np.arange(height) - height * 0.55) * 5.1).astype(np.float32)
    else:
        x_axis = np.linspace(0, width - 1, width, dtype=np.float32)
        y_axis = np.linspace(0, height - 1, height, dtype=np.float32)
    return Beam(image, x_axis, y_axis)


@pytest.fixture(scope="session")
def beam_factory() -> Callable[..., Beam]:
    return make_beam


def read_dump_frame(folder: Path, message: str) -> np.ndarray:
    """The image of one recorded bsread message (part 2, shape from the data header, part 1)."""
    header = json.loads((folder / f"{message}_001.raw").read_text())
    (channel,) = header["channels"]
    width, height = channel["shape"]  # bsread order: fastest first = [width, height]
    assert channel["type"] == "uint16" and channel["encoding"] == "little"
    data = (folder / f"{message}_002.raw").read_bytes()
    return np.frombuffer(data, dtype="<u2").reshape(height, width)


@pytest.fixture(scope="session")
def camera_frames(camserver_fixtures: Path) -> list[np.ndarray]:
    """The two real camera frames of ``test_camera_dump`` (494 x 659 uint16)."""
    folder = camserver_fixtures / "test_camera_dump"
    frames = [read_dump_frame(folder, message) for message in ("000000", "000001")]
    assert all(frame.shape == (494, 659) for frame in frames)
    return frames
