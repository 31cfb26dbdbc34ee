"""cam_server's helper functions (``cam_server.pipeline.data_processing.functions``), for user scripts.

Existing facility user functions call these helpers by name; this module gives them the names,
signatures and results documented in camserver-compat.md Appendix B, so that such a script runs
unchanged in a camioc pipeline worker. It is a re-implementation from that documented behaviour
(no cam_server code). Where camioc has the algorithm already, the helper calls it, so that a
user function gets the numbers camioc's own default pipeline computes:

* Gaussian fit, fitted curve, linear fit: :mod:`camioc.processing.fitting`;
* centre of mass / rms, full width, binning: :mod:`camioc.processing.kernels`;
* profiles: :func:`camioc.processing.preprocess.image_profiles`;
* good region, slice boundaries and band profiles, index of a value:
  :mod:`camioc.processing.regions` (processing-parity.md §2, §3); each band is then fitted with
  the same Gaussian fit, as the pipeline's slices are;
* PNG rendering: :func:`camioc.processing.png.render_png` (also the REST image routes' renderer).

The remaining helpers are one-line numpy/scipy operations with cam_server's argument
conventions. Decisions where the documented behaviour leaves a choice are stated per function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage

from camioc.processing import fitting, kernels, regions
from camioc.processing.preprocess import image_profiles

__all__ = [
    "apply_threshold",
    "binning",
    "calculate_slices",
    "chunk_copy",
    "copy_image",
    "enforce_image_writable",
    "find_index",
    "gauss_fit",
    "get_fw",
    "get_fwhm",
    "get_good_region_profile",
    "get_intensity",
    "get_min_max",
    "get_png_from_image",
    "get_region_of_interest",
    "get_x_slices_data",
    "get_x_y_profile",
    "get_y_slices_data",
    "is_number",
    "linear_fit",
    "quadratic_fit",
    "rotate",
    "slice_image",
    "subtract_background",
    "subtract_background_signed",
]


# --------------------------------------------------------------------------------------------
# Checks and copies
# --------------------------------------------------------------------------------------------


def is_number(var: Any) -> bool:
    """True if ``float(var)`` works (numbers, numeric strings, numpy scalars; also "nan")."""
    try:
        float(var)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def copy_image(image: np.ndarray) -> np.ndarray:
    """A C-ordered, writable copy (images received from a stream are read-only views)."""
    return np.array(image, copy=True, order="C")


def chunk_copy(image: np.ndarray, max_chunk: int = 2000000) -> np.ndarray:
    """A copy made band of rows by band of rows, each band at most ``max_chunk`` bytes.

    Why bands: on servers, one copy of a frame much larger than a 2 MB huge page can cost many
    times the CPU of the same copy done in bands smaller than that, which stay at memory speed.
    At least one row per band, whatever ``max_chunk`` says.
    """
    source = np.asarray(image)
    out = np.empty_like(source, order="C")
    if source.ndim < 2 or source.shape[0] == 0:
        out[...] = source
        return out
    row_bytes = source[0].nbytes
    rows = max(1, int(max_chunk) // row_bytes) if row_bytes else source.shape[0]
    for start in range(0, source.shape[0], rows):
        out[start : start + rows] = source[start : start + rows]
    return out


def enforce_image_writable(image: np.ndarray) -> np.ndarray:
    """``image`` itself if it is writable, else a writable copy (for the in-place helpers)."""
    if isinstance(image, np.ndarray) and image.flags.writeable:
        return image
    return copy_image(image)


# --------------------------------------------------------------------------------------------
# Pixel operations
# --------------------------------------------------------------------------------------------


def _checked_background(image: np.ndarray, background_image: Any) -> np.ndarray:
    background = np.asarray(background_image)
    if background.shape != image.shape:
        raise RuntimeError(
            f"Invalid background_image size {background.shape} compared to image {image.shape}"
        )
    return background


def subtract_background(image: np.ndarray, background_image: np.ndarray | None) -> np.ndarray:
    """``image - background_image`` with negative results set to 0, in the image's dtype.

    Works in place when ``image`` is writable (callers may ignore the result, as cam_server's
    callers do), on a copy when it is read-only. ``None`` background → ``image`` unchanged.
    Shape mismatch → ``RuntimeError("Invalid background_image size ...")``. The subtraction is done
    in the image's dtype after clamping, so unsigned pixels never wrap around; a float background
    on an integer image is truncated towards zero by the cast, like an in-place numpy subtraction.
    """
    if background_image is None:
        return image
    image = enforce_image_writable(image)
    background = _checked_background(image, background_image)
    below = image < background  # before subtracting: unsigned differences would wrap
    np.subtract(image, background, out=image, casting="unsafe")
    image[below] = 0
    return image


def subtract_background_signed(image: np.ndarray, background_image: np.ndarray | None) -> np.ndarray:
    """An int32 copy of ``image`` minus ``background_image``; negative results are kept.

    ``None`` background → the int32 copy alone (the result type does not depend on whether a
    background is configured). Shape mismatch → the same RuntimeError as
    :func:`subtract_background`.
    """
    out = np.asarray(image).astype(np.int32)
    if background_image is None:
        return out
    background = _checked_background(out, background_image)
    np.subtract(out, background, out=out, casting="unsafe")
    return out


def rotate(image: np.ndarray, degrees: float, order: int = 1, mode: str = "0.0") -> np.ndarray:
    """Rotate counter-clockwise by ``degrees``, keeping the image shape.

    ``mode="ortho"``: exact quarter turns, ``numpy.rot90(image, int(degrees / 90))`` (so 45° is no
    turn, 100° one turn: ``int`` truncates). Otherwise ``scipy.ndimage.rotate(reshape=False,
    order=order)``: a numeric ``mode`` (the default ``"0.0"``, or e.g. ``5``) means constant mode
    filled with that value, any other string is scipy's mode name (``"nearest"``, ``"reflect"``...).
    """
    if mode == "ortho":
        return np.rot90(image, int(degrees / 90))
    if is_number(mode):
        return scipy.ndimage.rotate(image, float(degrees), reshape=False, order=order, mode="constant",
                                    cval=float(mode))
    return scipy.ndimage.rotate(image, float(degrees), reshape=False, order=order, mode=mode)


def get_region_of_interest(
    image: np.ndarray, offset_x: int, size_x: int, offset_y: int, size_y: int
) -> np.ndarray:
    """The view ``image[offset_y:offset_y + size_y, offset_x:offset_x + size_x]`` (no clamping, no copy)."""
    return image[offset_y : offset_y + size_y, offset_x : offset_x + size_x]


def apply_threshold(image: np.ndarray, threshold: float = 1) -> np.ndarray:
    """Pixels below ``int(threshold)`` set to 0, in place (on a copy if ``image`` is read-only)."""
    image = enforce_image_writable(image)
    image[image < int(threshold)] = 0
    return image


def binning(
    image: np.ndarray | None,
    x_axis: np.ndarray | None,
    y_axis: np.ndarray | None,
    bx: int,
    by: int,
    mean: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Bin ``bx`` columns × ``by`` rows into one pixel: ``(uint16 image, x_axis, y_axis)``.

    The image is cropped to whole blocks (the remainder rows/columns are dropped); each output
    pixel is the block sum, or with ``mean`` the block mean, clipped to 0…65535 and truncated into
    uint16 (the documented result type, whatever the input type; camioc's binning kernel). Each
    axis becomes the mean of its samples per block, in the axis' own float type (float64 for an
    integer axis). Any of the three may be ``None`` (only the others are binned; without an image
    the axes' lengths are the image size). Raises ValueError when a bin factor is not positive or
    larger than the image.
    """
    bx, by = int(bx), int(by)
    if bx < 1 or by < 1:
        raise ValueError(f"Binning factors must be positive, not bx={bx}, by={by}")
    source = None if image is None else np.asarray(image)
    if source is not None:
        rows, columns = source.shape[0], source.shape[1]
    else:
        rows = 0 if y_axis is None else len(y_axis)
        columns = 0 if x_axis is None else len(x_axis)
    height, width = rows // by, columns // bx
    out = None
    if source is not None:
        if height == 0 or width == 0:
            raise ValueError(f"Binning {bx}x{by} is larger than the image {columns}x{rows}")
        out = np.empty((height, width), np.uint16)
        kernels.bin_image(np.ascontiguousarray(source), by, bx, bool(mean), True, out)
    return out, _bin_axis(x_axis, bx, width), _bin_axis(y_axis, by, height)


def _bin_axis(axis: np.ndarray | None, factor: int, size: int) -> np.ndarray | None:
    if axis is None:
        return None
    values = np.asarray(axis)
    kind = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    blocks = values[: size * factor].astype(np.float64).reshape(size, factor)
    return blocks.mean(axis=1).astype(kind)


# --------------------------------------------------------------------------------------------
# Profiles and statistics
# --------------------------------------------------------------------------------------------


def get_min_max(image: np.ndarray) -> tuple[Any, Any]:
    """``(nanmin(image), nanmax(image))``, as numpy scalars of the image's dtype."""
    return np.nanmin(image), np.nanmax(image)


def get_x_y_profile(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x_profile, y_profile)``: the sums over rows (one value per column) and over columns.

    Integer images give exact int64 sums (cam_server: unsigned sums as int64, "avoid BigInteger
    in Java"), float images float64 sums — camioc's own profile computation, so the numbers equal
    the pipeline's ``x_profile``/``y_profile``.
    """
    img = np.ascontiguousarray(image)
    if img.dtype.kind == "b":
        img = img.astype(np.uint8)
    profiles = image_profiles(img)
    return profiles.x, profiles.y


def get_intensity(profile: np.ndarray) -> Any:
    """``profile.sum()`` (the total intensity when given a profile)."""
    return np.asarray(profile).sum()


def find_index(axis: np.ndarray, item: float) -> int:
    """Index of ``item`` on a monotonic (ascending or descending) axis, processing-parity.md §3.

    Out-of-range values give the nearest end; inside, the sample equal to ``item`` or else the
    nearest one below it in value. Calibrated camera axes are descending; both directions work.
    """
    return int(regions.find_index(np.asarray(axis), float(item)))


def get_good_region_profile(profile: np.ndarray, threshold: float = 0.3, gfscale: float = 1.8) -> tuple[int, int]:
    """``(start, end)`` of the good region of a profile (processing-parity.md §2; ``end`` exclusive
    in the way the pipeline crops: ``profile[start:end]``)."""
    start, end = regions.good_region_bounds(np.asarray(profile), float(threshold), float(gfscale))
    return int(start), int(end)


def gauss_fit(
    profile: np.ndarray, axis: np.ndarray, remove_outliers: bool = True
) -> tuple[np.ndarray, np.float64, np.float64, np.float64, np.float64, np.float64, np.float64]:
    """Gaussian fit of ``profile`` on ``axis``: ``(curve, offset, amplitude, mean, sigma, com, rms)``.

    The fit, the curve (``offset + amplitude·exp(-(x-mean)²/(2 sigma²))`` on ``axis``, float64) and
    ``sigma ≥ 0`` are camioc's (cam_server's initial guesses and MINPACK fit; the guesses are
    returned when the fit fails). ``com``/``rms`` with ``remove_outliers`` are the pipeline's
    ``x_center_of_mass``/``x_rms`` (processing-parity.md §1: offset removed, normalised by the sum
    over all samples, samples farther than 5 sigma from the mean zeroed); without it the plain
    moments of the profile as given (cam_server's estimator before outlier removal existed):
    ``com = Σ a·p / Σ p``, ``rms = sqrt(|Σ (a − com)²·p / Σ p|)`` — §1's arithmetic with no offset
    and no sample zeroed.
    """
    prof = np.asarray(profile)
    ax = np.asarray(axis)
    fit = fitting.fit_gaussian(prof, ax)
    curve = fitting.gaussian(ax, fit)
    if remove_outliers:
        offset, mean, sigma = fit.offset, fit.mean, fit.standard_deviation
    else:
        offset, mean, sigma = 0.0, 0.0, math.inf  # |x - 0| > inf never holds: nothing is zeroed
    com, rms = kernels.com_rms(
        np.ascontiguousarray(ax, dtype=np.float64), np.ascontiguousarray(prof, dtype=np.float64),
        offset, mean, sigma,
    )
    return (
        curve,
        np.float64(fit.offset),
        np.float64(fit.amplitude),
        np.float64(fit.mean),
        np.float64(fit.standard_deviation),
        np.float64(com),
        np.float64(rms),
    )


def get_fw(x: np.ndarray, y: np.ndarray, threshold: float = 0.5, interpolate: bool = True) -> float:
    """Full width of the peak of ``y(x)`` at ``threshold`` of its height above its minimum.

    With ``interpolate`` (the pipeline's ``x_fwhm``/``x_fw``,
    :func:`camioc.processing.kernels.full_width`, cam_server's numbers): from the (first) maximum
    to the first sample below ``min + threshold·(max − min)`` on each side (the edge sample when a
    side never drops), each crossing on the straight line through that sample and its inner
    neighbour; NaN for a flat profile, whose interpolation divides 0 by 0. Without it (cam_server's
    older, sample-only width): the distance between the first samples *at or below* the level on
    each side (a sample exactly on the level ends the peak). 0.0 on any error (cam_server's
    contract): fewer than two samples, an ``x`` shorter than ``y``, values that are not numbers.
    Always ≥ 0 (descending axes too).
    """
    try:
        xs = np.ascontiguousarray(x, dtype=np.float64)
        ys = np.ascontiguousarray(y, dtype=np.float64)
        if xs.ndim != 1 or ys.ndim != 1 or xs.shape[0] < ys.shape[0] or ys.shape[0] < 2:
            return 0.0
        if interpolate:
            return float(kernels.full_width(xs, ys, float(threshold)))
        return _full_width_samples(xs, ys, float(threshold))
    except Exception:  # cam_server's contract: any failure is a width of 0.0
        return 0.0


def _full_width_samples(x: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """The scan without interpolation: from the maximum, the first sample at or below the level on
    each side (the edge sample when there is none); the width is their distance."""
    peak = int(np.argmax(y))
    low = float(y.min())
    level = low + (float(y[peak]) - low) * threshold
    at_or_below_left = np.flatnonzero(y[:peak] <= level)
    at_or_below_right = np.flatnonzero(y[peak + 1 :] <= level)
    left = int(at_or_below_left[-1]) if at_or_below_left.size else 0
    right = peak + 1 + int(at_or_below_right[0]) if at_or_below_right.size else y.shape[0] - 1
    return abs(float(x[right]) - float(x[left]))


def get_fwhm(x: np.ndarray, y: np.ndarray) -> float:
    """Full width at half maximum: ``get_fw(x, y, 0.5)`` (the pipeline's ``x_fwhm``/``y_fwhm``)."""
    return get_fw(x, y, 0.5)


# --------------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------------


def _fit_points(x: Any, y: Any, parameters: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"{what}: x and y must have the same length, not {xs.size} and {ys.size}")
    if xs.size < parameters:
        # curve_fit's refusal, as cam_server's callers see it (they catch it)
        raise TypeError(
            f"{what}: improper input: {parameters} parameters need at least {parameters} points, got {xs.size}"
        )
    return xs, ys


def linear_fit(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> np.ndarray:
    """Least-squares line ``y = slope·x + offset``: ``array([slope, offset])`` (float64).

    camioc's linear fit (the slice coupling's). Fewer than two points → TypeError (curve_fit's
    failure, which cam_server's callers catch); all ``x`` equal → NaN for both.
    """
    xs, ys = _fit_points(x, y, 2, "linear_fit")
    slope, offset = fitting.linear_fit(xs, ys)
    return np.array([slope, offset], dtype=np.float64)


def quadratic_fit(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> np.ndarray:
    """Least-squares parabola ``y = a·x² + b·x + c``: ``array([a, b, c])`` (float64).

    Solved in closed form (``numpy.linalg.lstsq``): the minimum curve_fit's iteration converges to.
    Fewer than three points → TypeError, as :func:`linear_fit`.
    """
    xs, ys = _fit_points(x, y, 3, "quadratic_fit")
    design = np.stack([xs * xs, xs, np.ones_like(xs)], axis=1)
    solution, *_ = np.linalg.lstsq(design, ys, rcond=None)
    return solution.astype(np.float64)


# --------------------------------------------------------------------------------------------
# Slices
# --------------------------------------------------------------------------------------------


def slice_image(image: np.ndarray, number_of_slices: int = 1, vertical: bool = False) -> np.ndarray:
    """``number_of_slices`` bands of rows, each summed over its rows: an N×width float64 array.

    With ``vertical`` the image is transposed first (bands of columns, N×height). Each band is
    ``height // N`` rows (rows left over at the bottom are not part of any band).
    """
    img = np.asarray(image)
    if vertical:
        img = img.T
    n = int(number_of_slices)
    if n < 1:
        raise ValueError(f"number_of_slices must be positive, not {number_of_slices}")
    size = img.shape[0] // n
    out = np.zeros((n, img.shape[1]), dtype=np.float64)
    for k in range(n):
        out[k] = img[k * size : (k + 1) * size].sum(axis=0, dtype=np.float64)
    return out


def calculate_slices(
    axis: np.ndarray, center: float, standard_deviation: float, scaling: float = 2, number_of_slices: int = 9
) -> tuple[list[int], int, float | None]:
    """``(boundaries, n_pixel_half_slice, slice_length)`` of ``number_of_slices`` (odd) slices.

    processing-parity.md §3 (``boundaries``, ``h``, ``slice_length``): slices of
    ``scaling·sigma/n`` (axis units) centred on ``center``, ``2h`` samples each, added pairwise
    outwards while inside the axis. ``boundaries`` are ascending indices into ``axis``; slice k
    spans ``[b_k, b_k+1)`` and its middle sample is ``b_k + h``. When even the middle slice does not
    fit: ``([], h, None)``. Three values, as cam_server's own callers unpack them (Appendix B of
    camserver-compat.md lists only boundaries and length). An even ``number_of_slices`` is refused
    with ValueError (the pipeline makes it odd before calling; §3).
    """
    if int(number_of_slices) % 2 == 0:
        raise ValueError(f"Number of slices must be odd, not {number_of_slices}.")
    ax = np.asarray(axis)
    boundaries, length = regions.slice_boundaries(
        ax, float(center), float(standard_deviation), float(scaling), int(number_of_slices)
    )
    half = regions.half_slice(ax, float(center), float(standard_deviation), float(scaling), int(number_of_slices))
    if boundaries is None:
        return [], half, None
    return [int(b) for b in boundaries], half, (None if length is None else float(length))


#: One slice as cam_server's slice helpers give it: ``([center_x, center_y], standard_deviation, intensity)``.
SliceData = tuple[list[Any], Any, Any]


def get_x_slices_data(  # noqa: PLR0913
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    x_center: float,
    x_standard_deviation: float,
    scaling: float = 2,
    number_of_slices: int = 11,
) -> tuple[list[SliceData], float | None]:
    """Column bands of ``image`` around ``x_center``, each fitted along y (processing-parity.md §3).

    ``image`` and the axes are those of the region to slice (the pipeline passes the good-region
    crop). Boundaries are :func:`calculate_slices` on ``x_axis``; band k spans columns
    ``[b_k, b_k+1)`` (a band reaching past the image is dropped); its y profile (row sums) is fitted
    on ``y_axis``. Returns ``(slices, slice_length)``, one ``([center_x, center_y],
    standard_deviation, intensity)`` per band from the lowest column: ``center_x = x_axis[b_k + h]``
    (the band's middle sample), ``center_y``/``standard_deviation`` the fit's mean/sigma,
    ``intensity`` the band sum. ``([], None)`` when the middle slice does not fit.
    """
    return _slices_data(image, x_axis, y_axis, x_center, x_standard_deviation, scaling, number_of_slices, rows=False)


def get_y_slices_data(  # noqa: PLR0913
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    y_center: float,
    y_standard_deviation: float,
    scaling: float = 2,
    number_of_slices: int = 11,
) -> tuple[list[SliceData], float | None]:
    """Row bands around ``y_center``, each fitted along x: :func:`get_x_slices_data` with the axes
    swapped (``center_x``/``standard_deviation`` from the fit on ``x_axis``, ``center_y =
    y_axis[b_k + h]``); the ``image_slices`` ``vertical`` orientation."""
    return _slices_data(image, x_axis, y_axis, y_center, y_standard_deviation, scaling, number_of_slices, rows=True)


def _slices_data(  # noqa: PLR0913
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    center: float,
    sigma: float,
    scaling: float,
    number_of_slices: int,
    *,
    rows: bool,
) -> tuple[list[SliceData], float | None]:
    img = np.ascontiguousarray(image)
    xa, ya = np.asarray(x_axis), np.asarray(y_axis)
    position_axis, fit_axis = (ya, xa) if rows else (xa, ya)
    boundaries, half, slice_length = calculate_slices(position_axis, center, sigma, scaling, number_of_slices)
    extent = img.shape[0] if rows else img.shape[1]
    inside = [b for b in boundaries if b < extent]  # ascending: the bands inside are a prefix
    if len(inside) < 2:
        return [], slice_length
    window = (0, img.shape[0], 0, img.shape[1])
    slices: list[SliceData] = []
    for result in regions.band_results(img, window, inside, half, rows, fit_axis, position_axis):
        position = position_axis[inside[len(slices)] + half]
        centre = np.float64(result.center_x if rows else result.center_y)
        pair = [centre, position] if rows else [position, centre]
        slices.append((pair, np.float64(result.standard_deviation), result.intensity))
    return slices, slice_length


# --------------------------------------------------------------------------------------------
# PNG
# --------------------------------------------------------------------------------------------


def get_png_from_image(
    image_raw_bytes: np.ndarray,
    scale: float | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    colormap_name: str | None = None,
) -> bytes:
    """PNG bytes of a 2-D image, rendered exactly as camioc's REST ``/image`` route renders it.

    ``image_raw_bytes`` is the image array (cam_server's parameter name). ``scale`` < 1 shrinks
    by block means, > 1 enlarges; ``min_value``/``max_value`` clip the display range; the colormap
    defaults to ``rainbow`` (cam_server's). camioc writes a palette PNG where cam_server wrote RGBA;
    PNG readers take both. Unknown colormap or a non-image → ValueError (camioc's ConfigError).
    """
    from camioc.processing.png import DEFAULT_COLORMAP, render_png

    return render_png(
        np.asarray(image_raw_bytes),
        scale=None if scale is None else float(scale),
        min_value=None if min_value is None else float(min_value),
        max_value=None if max_value is None else float(max_value),
        colormap=colormap_name or DEFAULT_COLORMAP,
    )
