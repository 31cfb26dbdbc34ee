"""Simulated camera: a beam image cheap enough for 100 Hz at 1280x960 on one core.

What a frame contains (``size_x`` x ``size_y``, ``dtype`` default uint16):

* pedestal (dark level, ~2 % of full scale) + read noise: a pool of Gaussian noise slightly longer
  than a frame is generated once; each frame takes a window of it at a random offset, so every
  frame has different noise without drawing 1.2 M random numbers per frame;
* a Gaussian beam spot (``image_type`` ``beam``): elliptical, peak ~60 % of full scale, centre
  jittering by a few pixels around a slow drift, intensity varying by a few %, with shot-noise-like
  fluctuations. It is computed only in a +-4 sigma window around the centre (a separable outer
  product), not over the full frame;
* a few hot pixels (fixed positions, saturated), like a real sensor.

``image_type``: ``beam`` (moving spot + noise), ``raw`` (noise only, no beam), ``static_beam`` /
``static_raw`` (one pre-generated read-only frame returned every time: no per-frame cost).

Pacing: frames are due on a monotonic schedule ``t0 + n / frame_rate`` (no drift from sleeping
``1/rate``); if the consumer falls more than a frame behind, the schedule restarts from now instead
of bursting. ``frame_rate <= 0`` means unpaced. Timestamps are wall-clock time of generation;
with ``simulate_pulse_id`` the pulse id is ``int(time * 100)``, kept strictly increasing.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from camioc.errors import ConfigError
from camioc.sources.base import CameraSource, Frame

if TYPE_CHECKING:
    from camioc.config.camera import CameraConfig

__all__ = ["SimulationSource", "SimulatedImage"]

DEFAULT_WIDTH = 1280
DEFAULT_HEIGHT = 960
DEFAULT_DTYPE = "uint16"
IMAGE_TYPES = ("beam", "raw", "static_beam", "static_raw")

# Levels as fractions of full scale.
_PEDESTAL = 0.02
_READ_NOISE = 0.004
_BEAM_PEAK = 0.6
_FLOAT_FULL_SCALE = 4096.0


def _full_scale(dtype: np.dtype) -> float:
    if dtype.kind in "iu":
        return float(np.iinfo(dtype).max)
    return _FLOAT_FULL_SCALE


class SimulatedImage:
    """Generates simulated frames of one geometry and dtype (no pacing, no I/O).

    Args:
        width, height: frame size in pixels.
        dtype: numpy dtype name of the frames.
        beam: draw a beam spot.
        seed: RNG seed (None: random).
    """

    def __init__(
        self, width: int, height: int, dtype: str | np.dtype = DEFAULT_DTYPE, beam: bool = True,
        seed: int | None = None,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ConfigError(f"Invalid simulation size {width}x{height}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise ConfigError(f"Invalid simulation dtype {dtype!r}") from exc
        if self.dtype.kind not in "iuf":
            raise ConfigError(f"Invalid simulation dtype {dtype!r}: must be an integer or float type")
        self.width, self.height, self.beam = int(width), int(height), beam
        self._rng = np.random.default_rng(seed)
        self._max = _full_scale(self.dtype)
        npix = self.width * self.height
        self._noise_margin = max(npix // 4, 4096)
        noise = self._rng.normal(_PEDESTAL * self._max, _READ_NOISE * self._max, npix + self._noise_margin)
        self._noise_pool = self._to_dtype(noise)
        # Multiplicative fluctuation pool for the beam window (shot-noise-like).
        self._shot_pool = self._rng.normal(1.0, 0.03, 1 << 16).astype(np.float32)
        n_hot = max(4, npix // 50_000)
        self._hot_index = self._rng.choice(npix, size=n_hot, replace=False)
        self._hot_value = np.asarray(self._max * self._rng.uniform(0.8, 1.0, n_hot)).astype(self.dtype)
        # Beam: nominal centre, sizes (sigma in px), slow drift phase.
        self._sigma_x = max(self.width / 28.0, 1.0)
        self._sigma_y = max(self.height / 40.0, 1.0)
        self._centre_x = self.width * 0.5
        self._centre_y = self.height * 0.5
        self._phase = self._rng.uniform(0, 2 * math.pi)
        self._count = 0
        self.beam_position: tuple[float, float] | None = None  # (x, y) of the last beam drawn

    def _to_dtype(self, values: np.ndarray) -> np.ndarray:
        if self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            values = np.clip(np.rint(values), max(info.min, 0), info.max)
        return values.astype(self.dtype)

    def generate(self) -> np.ndarray:
        """Return a fresh (writable) frame."""
        npix = self.width * self.height
        offset = int(self._rng.integers(0, self._noise_margin + 1))
        frame = self._noise_pool[offset : offset + npix].reshape(self.height, self.width).copy()
        if self.beam:
            self._draw_beam(frame)
        else:
            self.beam_position = None
        frame.reshape(-1)[self._hot_index] = self._hot_value
        self._count += 1
        return frame

    def _draw_beam(self, frame: np.ndarray) -> None:
        rng = self._rng
        drift = 0.05 * math.sin(self._phase + 0.02 * self._count)
        cx = self._centre_x * (1 + drift) + rng.normal(0.0, self._sigma_x * 0.05)
        cy = self._centre_y * (1 - drift) + rng.normal(0.0, self._sigma_y * 0.05)
        self.beam_position = (cx, cy)
        peak = _BEAM_PEAK * self._max * (1 + rng.normal(0.0, 0.03))
        x0 = max(int(cx - 4 * self._sigma_x), 0)
        x1 = min(int(cx + 4 * self._sigma_x) + 1, self.width)
        y0 = max(int(cy - 4 * self._sigma_y), 0)
        y1 = min(int(cy + 4 * self._sigma_y) + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        gx = np.exp(-0.5 * ((np.arange(x0, x1, dtype=np.float32) - cx) / self._sigma_x) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1, dtype=np.float32) - cy) / self._sigma_y) ** 2)
        spot = np.outer(gy * np.float32(peak), gx)
        n = spot.size
        start = int(rng.integers(0, max(self._shot_pool.size - n, 0) + 1))
        if n <= self._shot_pool.size:
            spot *= self._shot_pool[start : start + n].reshape(spot.shape)
        window = frame[y0:y1, x0:x1]
        spot += window
        if self.dtype.kind in "iu":
            np.clip(spot, 0, self._max, out=spot)
        window[...] = spot


class SimulationSource(CameraSource):
    """``source_type: simulation`` (see module doc)."""

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        image_type = getattr(config, "image_type", None) or "beam"
        if image_type not in IMAGE_TYPES:
            raise ConfigError(f"Invalid simulation image_type {image_type!r}: must be one of {', '.join(IMAGE_TYPES)}")
        self.image_type = image_type
        self._width = int(getattr(config, "size_x", None) or DEFAULT_WIDTH)
        self._height = int(getattr(config, "size_y", None) or DEFAULT_HEIGHT)
        self._dtype = getattr(config, "dtype", None) or DEFAULT_DTYPE
        rate = float(getattr(config, "frame_rate", 0) or 0)
        self._period = 1.0 / rate if rate > 0 else 0.0
        self._simulate_pulse_id = bool(getattr(config, "simulate_pulse_id", False))
        self._generator: SimulatedImage | None = None
        self._static: np.ndarray | None = None
        self._next_due: float | None = None
        self._last_pulse_id = -1
        self._closed = threading.Event()

    def connect(self, timeout: float = 3.0) -> None:
        if self._generator is not None:
            return
        beam = self.image_type in ("beam", "static_beam")
        self._generator = SimulatedImage(self._width, self._height, self._dtype, beam=beam)
        if self.image_type.startswith("static"):
            static = self._generator.generate()
            static.flags.writeable = False
            self._static = static
        self._closed.clear()
        self._next_due = None

    def geometry(self) -> tuple[int, int]:
        return self._width, self._height

    def read(self, timeout: float) -> Frame | None:
        if self._closed.is_set():
            return None
        if self._generator is None:
            self.connect()
        now = time.monotonic()
        if self._period:
            if self._next_due is None:
                self._next_due = now
            wait = self._next_due - now
            if wait > timeout:
                self._closed.wait(max(timeout, 0.0))
                return None
            if wait > 0 and self._closed.wait(wait):
                return None
            # Next slot on the schedule; restart it rather than burst when far behind.
            self._next_due += self._period
            if self._next_due < time.monotonic() - self._period:
                self._next_due = time.monotonic() + self._period
        return self._make_frame()

    def _make_frame(self) -> Frame:
        assert self._generator is not None
        image = self._static if self._static is not None else self._generator.generate()
        timestamp = time.time()
        pulse_id = None
        if self._simulate_pulse_id:
            pulse_id = max(int(timestamp * 100), self._last_pulse_id + 1)
            self._last_pulse_id = pulse_id
        return Frame(image=image, timestamp=timestamp, pulse_id=pulse_id)

    def close(self) -> None:
        self._closed.set()
        self._generator = None
        self._static = None
