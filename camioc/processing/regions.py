"""Good region and slices exactly as cam_server computes them (processing-parity.md §2, §3).

These are the index rules that decide which pixels a result is computed from; they are small
(a few comparisons per profile) and kept in plain Python so that they read like the
specification. The full-frame work (profiles of the bands) is done by the numba kernels.

Conventions (cam_server's, reproduced on purpose):

* a good region is ``(start, end)`` with ``end`` *exclusive* when slicing (``axis[start:end]``),
  although ``end`` is computed as a sample index (see :func:`kernels.good_region_bounds`);
* :func:`find_index` is cam_server's ``find_index``: on a descending (calibrated) axis it returns
  the left insertion point of ``-value`` in ``-axis``; on an ascending axis the index of the last
  sample below ``value`` unless ``value`` is a sample;
* :func:`slice_boundaries` grows the slices outwards pairwise from a middle slice centred on the
  fitted mean, each slice ``2 h`` samples wide; when the middle slice does not fit there are no
  slices at all (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camioc.processing import kernels
from camioc.processing.fitting import fit_gaussian

__all__ = [
    "SliceResult",
    "band_results",
    "find_index",
    "good_region_bounds",
    "half_slice",
    "slice_boundaries",
    "slice_profiles",
]


def find_index(axis: np.ndarray, value: float) -> int:
    """cam_server's index of ``value`` on a monotonic ``axis`` (processing-parity.md §3 ``idx``)."""
    a = np.asarray(axis, dtype=np.float64)
    last = a.shape[0] - 1
    if a[0] > a[-1]:  # descending (calibrated axes)
        if value > a[0]:
            return 0
        if value < a[-1]:
            return last
        return int(np.searchsorted(-a, -value, side="left"))
    if value < a[0]:
        return 0
    if value > a[-1]:
        return last
    k = int(np.searchsorted(a, value, side="left"))  # NaN sorts last: k == len(a)
    return k if k < a.shape[0] and a[k] == value else k - 1


def good_region_bounds(profile: np.ndarray, threshold: float, gfscale: float) -> tuple[int, int]:
    """``(start, end)`` of cam_server's good region of one profile; slice with ``[start:end]``."""
    start, end = kernels.good_region_bounds(np.asarray(profile, dtype=np.float64), threshold, gfscale)
    return int(start), int(end)


def slice_boundaries(
    axis: np.ndarray, center: float, sigma: float, scale: float, count: int
) -> tuple[list[int] | None, float | None]:
    """Band boundaries (sample indices, ascending) and the slice length, or ``(None, None)``.

    ``count`` is the (odd) number of slices wanted; fewer are returned when the outer pairs do
    not fit inside the axis. ``slice_length`` is the axis distance spanned by one slice.
    """
    length = axis.shape[0]
    if length == 0:
        return None, None
    middle = find_index(axis, center)
    half = half_slice(axis, center, sigma, scale, count)
    low, high = middle - half, middle + half
    if low < 0 or high >= length:
        return None, None
    boundaries = [low, high]
    slice_length = abs(float(axis[low]) - float(axis[high]))
    remaining = count - 1
    while remaining > 0:
        low -= 2 * half
        high += 2 * half
        if low < 0 or high >= length:
            break
        boundaries.insert(0, low)
        boundaries.append(high)
        remaining -= 2
    return boundaries, slice_length


def half_slice(axis: np.ndarray, center: float, sigma: float, scale: float, count: int) -> int:
    """``h``: half a slice in samples (at least 1); a slice is ``2 h`` samples wide (§3)."""
    if axis.shape[0] == 0:
        return 1
    size = scale * sigma / count
    return max(abs(find_index(axis, center + size / 2.0) - find_index(axis, center)), 1)


@dataclass(frozen=True, slots=True)
class SliceResult:
    """One slice of cam_server's ``image_slices`` output."""

    center_x: float
    center_y: float
    standard_deviation: float
    intensity: float


def slice_profiles(
    image: np.ndarray, window: tuple[int, int, int, int], boundaries: list[int], rows: bool
) -> np.ndarray:
    """Profiles across the bands ``[b_k, b_{k+1})`` of the crop ``window`` of ``image``.

    ``window = (r0, r1, c0, c1)`` is the good region; ``boundaries`` are indices inside it.
    ``rows`` → row bands, each band's column sums (an x profile per band); otherwise column
    bands, each band's row sums (a y profile per band). int64 for integer images, else float64.
    """
    r0, r1, c0, c1 = window
    kind = np.float64 if image.dtype.kind == "f" else np.int64
    edges = np.asarray(boundaries, dtype=np.int64)
    bands = edges.shape[0] - 1
    if rows:
        out = np.zeros((bands, c1 - c0), kind)
        kernels.band_x_profiles(image, edges + r0, c0, c1, out)
    else:
        out = np.zeros((bands, r1 - r0), kind)
        kernels.band_y_profiles(image, edges + c0, r0, r1, out)
    return out


def band_results(  # noqa: PLR0913
    image: np.ndarray,
    window: tuple[int, int, int, int],
    boundaries: list[int],
    half: int,
    rows: bool,
    fit_axis: np.ndarray,
    position_axis: np.ndarray,
) -> list[SliceResult]:
    """Fit every band of :func:`slice_profiles` (parity §3): row bands (``rows``) are y-slices.

    A band's centre along the slicing direction is ``position_axis[b_k + half]``; across it, the
    Gaussian fit's mean on ``fit_axis``, whose sigma is the slice's standard deviation.
    """
    results = []
    for k, profile in enumerate(slice_profiles(image, window, boundaries, rows)):
        fit = fit_gaussian(profile, fit_axis)
        position = float(position_axis[boundaries[k] + half])
        centre_x, centre_y = (fit.mean, position) if rows else (position, fit.mean)
        results.append(SliceResult(centre_x, centre_y, fit.standard_deviation, float(profile.sum())))
    return results
