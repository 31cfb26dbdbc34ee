"""Pre-processing in cam_server's order, with the full-frame work fused into one pass.

Order (compat §2.2): binning → background → mirror x → mirror y → rotation → region of interest
→ threshold → ``image_averaging`` → ``image_scale`` → ``image_offset``. The frame-buffer
``averaging`` runs before all of this (see :class:`BlockMean` / :class:`RollingMean`, used by
the pipeline).

How it is computed: background subtraction and threshold are per-pixel, and mirror and ROI only
select which pixels land where, so for an unrotated frame all of them (plus the x/y profiles and
min/max the default function needs) are one :func:`~camioc.processing.kernels.pixelwise_int`
pass from the camera frame into a new output image. When nothing changes pixels the camera frame
itself is passed on (no copy). A rotation splits the pass in two: background and mirror before,
ROI and threshold after (the rotation interpolates between neighbours, so it does not commute
with cropping).

Decisions where the reference is silent:

* Axes follow the image through every step (binning: mean of the binned axis samples; mirror:
  reversed; quarter turns: swapped/reversed like ``numpy.rot90``; ROI: sliced). cam_server
  transforms the axes for mirror/ortho before averaging; the result is the same.
* Binning of integer frames sums into uint16 clipped at 0xFFFF (cam_server's camera-side rule for
  the same keys); ``binning_mean`` and float frames give float64. The remainder rows/columns that
  do not fill a block are dropped.
* A background recorded at the camera's full resolution is binned like the image when binning is
  on (otherwise it would never match); a background already of the binned shape is used as is.
  Any other shape is ``"Bad background image size"``.
* The background is converted once to the image dtype (rounded and clipped for integer frames)
  and cached; unsigned subtraction keeps the image dtype with negatives clamped to 0; signed
  subtraction gives int32 for 8/16-bit frames (int64 for wider integers, the float type for
  floats).
* The region of interest is intersected with the image (negative offsets or sizes beyond the edge
  shrink it); an empty intersection is a processing error.
* ``image_averaging`` restarts when the frame shape or dtype changes or when a pre-processing
  setting that changes the meaning of the frames (binning, background, mirror, rotation, ROI,
  threshold) changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage

from camioc.errors import ProcessingError
from camioc.processing import kernels
from camioc.processing.parameters import BackgroundMode, ProcessingParameters, RegionOfInterest

__all__ = [
    "Background",
    "BlockMean",
    "Frame",
    "Preprocessor",
    "Profiles",
    "RollingMean",
    "image_profiles",
    "region_profiles",
]

BackgroundLoader = Callable[[str], np.ndarray]


@dataclass(frozen=True, slots=True)
class Profiles:
    """x/y profiles (int64 for integer images, float64 for float) and min/max of an image."""

    x: np.ndarray
    y: np.ndarray
    min_value: np.generic
    max_value: np.generic


@dataclass(frozen=True, slots=True)
class Frame:
    """A pre-processed frame: image, its axes, and (when a fused pass made them) its profiles."""

    image: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    profiles: Profiles | None = None
    background_data: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _check_pixel_type(dtype: np.dtype) -> None:
    if dtype.kind not in "iuf":
        raise ProcessingError(f"Unsupported image type {dtype}: integer or float pixels expected")


def _int_extremes(acc: np.dtype) -> tuple[np.generic, np.generic]:
    info = np.iinfo(acc)
    return acc.type(info.max), acc.type(info.min)


def _finish_minmax(image: np.ndarray, mn: Any, mx: Any) -> tuple[np.generic, np.generic]:
    if image.dtype.kind == "f":
        return image.dtype.type(np.fmin.reduce(image, axis=None)), image.dtype.type(
            np.fmax.reduce(image, axis=None)
        )
    return image.dtype.type(mn), image.dtype.type(mx)


def _profile_type(acc: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if acc.kind == "f" else np.dtype(np.int64)


def region_profiles(image: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> Profiles:
    """Profiles and min/max of ``image[r0:r1, c0:c1]`` in one pass (image C-contiguous)."""
    acc = kernels.accumulator_dtype(image.dtype, image.shape)
    xacc = np.zeros(c1 - c0, acc)
    yacc = np.empty(r1 - r0, acc)
    if acc.kind == "f":
        kernels.region_stats_float(image, r0, r1, c0, c1, xacc, yacc)
        mn, mx = _finish_minmax(image[r0:r1, c0:c1], None, None)
    else:
        lo, hi = _int_extremes(acc)
        mn, mx = kernels.region_stats_int(image, r0, r1, c0, c1, xacc, yacc, lo, hi)
        mn, mx = image.dtype.type(mn), image.dtype.type(mx)
    kind = _profile_type(acc)
    return Profiles(xacc.astype(kind, copy=False), yacc.astype(kind, copy=False), mn, mx)


def image_profiles(image: np.ndarray) -> Profiles:
    """cam_server's ``x_profile = image.sum(0)``, ``y_profile = image.sum(1)``, nanmin, nanmax."""
    return region_profiles(image, 0, image.shape[0], 0, image.shape[1])


# --------------------------------------------------------------------------------------------
# Frame buffers (averaging, image_averaging)
# --------------------------------------------------------------------------------------------


class RollingMean:
    """Mean of the last ``n`` frames (fewer at the start), float64, updated in O(1) passes.

    A running float64 sum is kept (exact for integer frames); for float frames it is rebuilt
    from the buffer every ``n`` frames so that rounding cannot drift. Frames are stored as
    given when ``owned`` (the caller hands them over) and copied otherwise.
    """

    def __init__(self, n: int) -> None:
        self._n = n
        self._frames: deque[np.ndarray] = deque()
        self._sum: np.ndarray | None = None
        self._since_rebuild = 0

    def resize(self, n: int) -> None:
        """Keep the newest ``n`` frames (a config change must not throw the history away)."""
        self._n = n
        while len(self._frames) > n:
            self._drop_oldest()

    def reset(self) -> None:
        self._frames.clear()
        self._sum = None
        self._since_rebuild = 0

    def push(self, image: np.ndarray, *, owned: bool = False) -> np.ndarray:
        if self._frames and (
            self._frames[0].shape != image.shape or self._frames[0].dtype != image.dtype
        ):
            self.reset()
        frame = image if owned else image.copy()
        if self._sum is None:
            self._sum = frame.astype(np.float64)
        else:
            np.add(self._sum, frame, out=self._sum)
        self._frames.append(frame)
        while len(self._frames) > self._n:
            self._drop_oldest()
        if frame.dtype.kind == "f":
            self._since_rebuild += 1
            if self._since_rebuild >= self._n:
                rebuilt = self._frames[0].astype(np.float64)
                for older in list(self._frames)[1:]:
                    rebuilt += older
                self._sum = rebuilt
                self._since_rebuild = 0
        return self._sum / len(self._frames)

    def _drop_oldest(self) -> None:
        oldest = self._frames.popleft()
        if self._sum is not None:
            np.subtract(self._sum, oldest, out=self._sum)


class BlockMean:
    """One mean of every ``n`` consecutive frames (``None`` until a block is complete)."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._sum: np.ndarray | None = None
        self._count = 0
        self._key: tuple[Any, ...] | None = None

    def resize(self, n: int) -> None:
        """Keep the partial block; it completes at the new size."""
        self._n = n

    def reset(self) -> None:
        self._sum = None
        self._count = 0
        self._key = None

    def push(self, image: np.ndarray) -> np.ndarray | None:
        key = (image.shape, image.dtype)
        if key != self._key:
            self.reset()
            self._key = key
        if self._sum is None:
            self._sum = image.astype(np.float64)
        else:
            np.add(self._sum, image, out=self._sum)
        self._count += 1
        if self._count < self._n:
            return None
        mean = self._sum / self._count
        self._sum = None
        self._count = 0
        return mean


# --------------------------------------------------------------------------------------------
# Background
# --------------------------------------------------------------------------------------------


class Background:
    """A background image loaded through the injected loader, and its per-frame conversions.

    Loading never raises: a failure is kept as :attr:`error` (cam_server's
    ``"Invalid background image file: <id>"``) and reported for every frame that needs it.
    """

    def __init__(self, background_id: str | None, loader: BackgroundLoader | None) -> None:
        self.background_id = background_id
        self.array: np.ndarray | None = None
        self.error: str | None = None
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}
        if background_id is None:
            self.error = "Invalid background image file: None (no image_background configured)"
        elif loader is None:
            self.error = f"Invalid background image file: {background_id} (no background loader)"
        else:
            try:
                array = np.asarray(loader(background_id))
            except Exception as exc:  # the loader is foreign code; any failure means "invalid"
                self.error = f"Invalid background image file: {background_id} ({exc})"
            else:
                if array.ndim != 2 or array.dtype.kind not in "iuf" or array.size == 0:
                    self.error = (
                        f"Invalid background image file: {background_id} "
                        f"(not a 2-D numeric image: shape {array.shape}, type {array.dtype})"
                    )
                else:
                    self.array = array

    @property
    def ok(self) -> bool:
        return self.array is not None

    def matched(
        self, image_shape: tuple[int, ...], raw_shape: tuple[int, ...], binning: tuple[int, int, bool]
    ) -> np.ndarray:
        """The background with the shape of the (binned) image, in its own dtype."""
        if self.array is None:
            raise ProcessingError(self.error or "Invalid background image file")
        key = ("matched", image_shape, raw_shape, binning)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        by, bx, mean = binning
        if self.array.shape == image_shape:
            matched = self.array
        elif (by > 1 or bx > 1) and self.array.shape == raw_shape:
            matched = bin_array(self.array, by, bx, mean)
        else:
            raise ProcessingError(
                f"Bad background image size: background {_shape_text(self.array.shape)}, "
                f"image {_shape_text(image_shape)}"
            )
        self._cache[key] = matched
        return matched

    def converted(
        self,
        image_shape: tuple[int, ...],
        raw_shape: tuple[int, ...],
        binning: tuple[int, int, bool],
        dtype: np.dtype,
    ) -> np.ndarray:
        """The matched background in the image dtype (rounded and clipped for integers), cached."""
        key = ("converted", image_shape, raw_shape, binning, dtype)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        matched = self.matched(image_shape, raw_shape, binning)
        # always an owned, writable, C-contiguous copy: one numba signature whatever the loader gave
        if matched.dtype == dtype:
            converted = np.array(matched, order="C")
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            values = np.rint(matched) if matched.dtype.kind == "f" else matched
            converted = np.clip(values, info.min, info.max).astype(dtype)
        else:
            converted = matched.astype(dtype)
        self._cache[key] = converted
        return converted


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} (width x height)" if len(shape) == 2 else str(shape)


# --------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------


def bin_array(image: np.ndarray, by: int, bx: int, mean: bool) -> np.ndarray:
    """Block-sum (uint16, clipped) or block-mean (float64) binning; floats always float64."""
    height, width = image.shape[0] // by, image.shape[1] // bx
    if height == 0 or width == 0:
        raise ProcessingError(
            f"Binning {bx}x{by} is larger than the image {_shape_text(image.shape)}"
        )
    integer_sum = image.dtype.kind in "iu" and not mean
    out = np.empty((height, width), np.uint16 if integer_sum else np.float64)
    kernels.bin_image(np.ascontiguousarray(image), by, bx, mean, integer_sum, out)
    return out


def _bin_axis(axis: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return axis
    n = axis.shape[0] // factor
    # float32 arithmetic, as numpy's mean of cam_server's float32 axis blocks
    return axis[: n * factor].reshape(n, factor).astype(np.float32).mean(axis=1, dtype=np.float32)


def _rotate(
    image: np.ndarray, x_axis: np.ndarray, y_axis: np.ndarray, params: ProcessingParameters
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rotation = params.rotation
    assert rotation is not None
    if rotation.ortho:
        k = rotation.quarter_turns
        rotated = np.ascontiguousarray(np.rot90(image, k))
        if k == 1:
            return rotated, y_axis, x_axis[::-1]
        if k == 2:
            return rotated, x_axis[::-1], y_axis[::-1]
        if k == 3:
            return rotated, y_axis[::-1], x_axis
        return rotated, x_axis, y_axis
    try:
        rotated = scipy.ndimage.rotate(
            image,
            rotation.angle,
            reshape=False,
            order=rotation.order,
            mode=rotation.mode,
            cval=rotation.cval,
            prefilter=True,
        )
    except (RuntimeError, ValueError) as exc:
        raise ProcessingError(f"Rotation failed: {exc}") from exc
    return np.ascontiguousarray(rotated), x_axis, y_axis


def _roi_window(roi: RegionOfInterest | None, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, x1, y0, y1)`` of the ROI, clamped into the image as cam_server does.

    processing-parity.md §4: each size is limited to the image, then the offset is moved so that
    the region fits (a too-large ROI is *shifted*, not cut), and neither offset is negative.
    """
    height, width = shape
    if roi is None:
        return 0, width, 0, height
    if roi.size_x <= 0 or roi.size_y <= 0:
        raise ProcessingError(
            "Region of interest "
            f"[{roi.offset_x}, {roi.size_x}, {roi.offset_y}, {roi.size_y}] "
            "has no pixels: sizes must be positive"
        )
    size_x, size_y = min(roi.size_x, width), min(roi.size_y, height)
    x0 = max(min(roi.offset_x, width - size_x), 0)
    y0 = max(min(roi.offset_y, height - size_y), 0)
    return x0, x0 + size_x, y0, y0 + size_y


def _signed_type(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.int32) if dtype.itemsize <= 2 else np.dtype(np.int64)


_KERNEL_MODE = {
    BackgroundMode.UNSIGNED: kernels.BG_UNSIGNED,
    BackgroundMode.SIGNED: kernels.BG_SIGNED,
}


def fused_pass(  # noqa: PLR0913
    src: np.ndarray,
    background: np.ndarray | None,
    mode: BackgroundMode,
    flip_y: bool,
    flip_x: bool,
    window: tuple[int, int, int, int],
    threshold: float | None,
) -> tuple[np.ndarray, Profiles]:
    """One pass: background, mirror, ROI ``window`` (in mirrored coordinates), threshold, profiles.

    Returns a new C-contiguous image and its profiles.
    """
    height, width = src.shape
    x0, x1, y0, y1 = window
    kmode = _KERNEL_MODE.get(mode, kernels.BG_NONE)
    out_dtype = _signed_type(src.dtype) if kmode == kernels.BG_SIGNED else src.dtype
    out = np.empty((y1 - y0, x1 - x0), out_dtype)
    acc = kernels.accumulator_dtype(out_dtype, out.shape)
    if kmode == kernels.BG_SIGNED and acc.kind != "f":
        # differences of two pixels need one more bit than the pixels themselves
        small = src.dtype.itemsize <= 2 and 2**17 * max(out.shape) < 2**31
        acc = np.dtype(np.int32) if small else np.dtype(np.int64)
    row0, row_step = (height - 1 - y0, -1) if flip_y else (y0, 1)
    col0 = width - x1 if flip_x else x0
    bg = src if background is None or kmode == kernels.BG_NONE else background
    xacc = np.zeros(out.shape[1], acc)
    yacc = np.empty(out.shape[0], acc)
    if acc.kind == "f":
        thr = float(int(threshold)) if threshold is not None else -np.inf
        kernels.pixelwise_float(src, bg, kmode, row0, row_step, col0, thr, out, xacc, yacc)
        mn = mx = None
    else:
        info = np.iinfo(acc)
        thr_value = int(threshold) if threshold is not None else int(info.min)
        thr_acc = acc.type(min(max(thr_value, int(info.min)), int(info.max)))
        lo, hi = _int_extremes(acc)
        mn, mx = kernels.pixelwise_int(src, bg, kmode, row0, row_step, col0, thr_acc, out, xacc, yacc, lo, hi)
    if flip_x:
        kernels.reverse_columns(out)
        xacc = xacc[::-1]
    mn, mx = _finish_minmax(out, mn, mx)
    kind = _profile_type(acc)
    return out, Profiles(np.ascontiguousarray(xacc, dtype=kind), yacc.astype(kind, copy=False), mn, mx)


# --------------------------------------------------------------------------------------------
# The pre-processor
# --------------------------------------------------------------------------------------------


class Preprocessor:
    """Applies a :class:`ProcessingParameters`' pre-processing to frames; owns image_averaging."""

    def __init__(self, params: ProcessingParameters) -> None:
        self._params = params
        self._image_mean = RollingMean(params.image_averaging) if params.image_averaging else None

    @property
    def parameters(self) -> ProcessingParameters:
        return self._params

    def update(self, params: ProcessingParameters) -> None:
        """New settings; the image_averaging history survives unless its meaning changed."""
        old = self._params
        self._params = params
        if not params.image_averaging:
            self._image_mean = None
        elif self._image_mean is None or old.preprocessing_key != params.preprocessing_key:
            self._image_mean = RollingMean(params.image_averaging)
        else:
            self._image_mean.resize(params.image_averaging)

    def run(
        self,
        image: np.ndarray,
        x_axis: np.ndarray,
        y_axis: np.ndarray,
        background: Background | None,
    ) -> Frame:
        """Pre-process one frame (``image`` is never modified)."""
        p = self._params
        raw_shape = image.shape
        owned = False
        if p.binning_x > 1 or p.binning_y > 1:
            image = bin_array(image, p.binning_y, p.binning_x, p.binning_mean)
            x_axis = _bin_axis(x_axis, p.binning_x)
            y_axis = _bin_axis(y_axis, p.binning_y)
            owned = True
        binning = (p.binning_y, p.binning_x, p.binning_mean)

        mode = p.background_mode
        bg_array: np.ndarray | None = None
        background_data: np.ndarray | None = None
        if mode is not BackgroundMode.OFF:
            if background is None:
                raise ProcessingError("Invalid background image file: None (no background loaded)")
            if mode is BackgroundMode.PASSIVE:
                background_data = background.matched(image.shape, raw_shape, binning)
                mode = BackgroundMode.OFF
            else:
                bg_array = background.converted(image.shape, raw_shape, binning, image.dtype)

        flip_x, flip_y = p.mirror_x, p.mirror_y
        if flip_x:
            x_axis = x_axis[::-1]
        if flip_y:
            y_axis = y_axis[::-1]
        profiles: Profiles | None = None

        if p.rotation is not None:
            if mode is not BackgroundMode.OFF or flip_x or flip_y:
                full = (0, image.shape[1], 0, image.shape[0])
                image, _ = fused_pass(image, bg_array, mode, flip_y, flip_x, full, None)
                owned = True
            image, x_axis, y_axis = _rotate(image, x_axis, y_axis, p)
            owned = True
            mode, flip_x, flip_y = BackgroundMode.OFF, False, False

        window = _roi_window(p.roi, image.shape)
        x0, x1, y0, y1 = window
        full_frame = window == (0, image.shape[1], 0, image.shape[0])
        if mode is not BackgroundMode.OFF or flip_x or flip_y or not full_frame or p.threshold is not None:
            image, profiles = fused_pass(image, bg_array, mode, flip_y, flip_x, window, p.threshold)
            owned = True
            x_axis = x_axis[x0:x1]
            y_axis = y_axis[y0:y1]

        if self._image_mean is not None:
            image = self._image_mean.push(image, owned=owned)
            owned = True
            profiles = None
        if p.image_scale is not None or p.image_offset is not None:
            if not (owned and image.dtype == np.float64):
                image = image.astype(np.float64)
            if p.image_scale is not None:
                image *= p.image_scale
            if p.image_offset is not None:
                image += p.image_offset
            profiles = None
        if profiles is None:
            profiles = image_profiles(image)
        return Frame(
            image=image,
            x_axis=np.ascontiguousarray(x_axis, dtype=np.float32),
            y_axis=np.ascontiguousarray(y_axis, dtype=np.float32),
            profiles=profiles,
            background_data=background_data,
        )


def check_frame(image: Any, x_axis: Any, y_axis: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and normalise one input frame: C-contiguous 2-D numeric image, float32 axes."""
    img = np.asarray(image)
    if img.ndim != 2 or img.size == 0:
        raise ProcessingError(f"Image must be a non-empty 2-D array, not shape {img.shape}")
    _check_pixel_type(img.dtype)
    if not img.flags.c_contiguous:
        img = np.ascontiguousarray(img)
    # A stream without axes gets pixel indices (cam_server's uncalibrated axes).
    xa = np.arange(img.shape[1], dtype=np.float32) if x_axis is None else np.asarray(x_axis, np.float32)
    ya = np.arange(img.shape[0], dtype=np.float32) if y_axis is None else np.asarray(y_axis, np.float32)
    if xa.shape != (img.shape[1],) or ya.shape != (img.shape[0],):
        raise ProcessingError(
            f"Axes do not match the image: x_axis {xa.shape}, y_axis {ya.shape}, "
            f"image {_shape_text(img.shape)}"
        )
    return img, xa, ya
