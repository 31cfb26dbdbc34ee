"""numba kernels for the full-frame passes of the processing pipeline.

Why numba: every frame is read at most once or twice. numpy needs one pass (and often a
full-frame temporary) per operation: background subtraction, clamping, threshold, ROI copy,
column sums, row sums, min and max are seven passes. These kernels fuse them into one pass that
reads the camera frame (and background) and writes the output image while accumulating the
x/y profiles and min/max, so that the cost of a frame is close to the cost of one copy.

Conventions shared by the kernels:

* Images are C-contiguous 2-D arrays; views (ROI, mirror) are expressed as a source row mapping
  (``row0 + i * row_step``) and a source column window (``col0 .. col0 + width``), so the inner
  loop always runs over contiguous memory and vectorises. A mirrored x direction is a separate
  in-place pass (:func:`reverse_columns`) plus a reversed x profile.
* Sums are accumulated in an *accumulator* type: int32 where no overflow is possible (8/16-bit
  pixels), int64 for wider integers, float64 for floats. The caller picks it with
  :func:`accumulator_dtype` and converts profiles to cam_server's int64/float64 afterwards.
* Integer kernels also return the minimum/maximum (initialised by the caller with the
  accumulator type's extreme values); float kernels leave them to numpy (see
  :func:`pixelwise_float`).

All kernels are compiled with ``cache=True, nogil=True, error_model="numpy"`` (IEEE division:
inf/NaN like numpy, never a ZeroDivisionError from inside a kernel);
:func:`camioc.processing.warm_up` compiles them for the common pixel types outside the hot path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "BG_NONE",
    "BG_SIGNED",
    "BG_UNSIGNED",
    "accumulator_dtype",
    "band_x_profiles",
    "band_y_profiles",
    "bin_image",
    "com_rms",
    "full_width",
    "gauss_evaluate",
    "good_region_bounds",
    "pixelwise_float",
    "pixelwise_int",
    "region_stats_float",
    "region_stats_int",
    "reverse_columns",
]

#: Re-association only (no ``nnan``/``ninf``): lets LLVM vectorise float sums while NaN and
#: infinity keep their IEEE meaning (cam_server's profiles propagate NaN, its min/max skip it).
_REASSOC = {"reassoc", "nsz", "contract"}

#: Background modes understood by :func:`pixelwise_int` / :func:`pixelwise_float`.
BG_NONE = 0
BG_UNSIGNED = 1
BG_SIGNED = 2


def accumulator_dtype(dtype: np.dtype, shape: tuple[int, ...]) -> np.dtype:
    """Narrowest type in which every row and column sum of an image is exact.

    int32 doubles the SIMD width compared with int64 and is exact as long as
    ``max|pixel| * max(height, width) < 2**31`` (16-bit frames up to 32767 pixels a side).
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(np.float64)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        if max(abs(int(info.min)), int(info.max)) * max(shape) < 2**31:
            return np.dtype(np.int32)
    return np.dtype(np.int64)


# --------------------------------------------------------------------------------------------
# Full-frame passes
# --------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def pixelwise_int(src, bg, mode, row0, row_step, col0, thr, out, xacc, yacc, mn, mx):  # noqa: PLR0913
    """Fused background subtraction, ROI/row mirror, threshold and statistics (integer pixels).

    ``out[i, j]`` takes source pixel ``src[row0 + i*row_step, col0 + j]``. Value in the
    accumulator type: ``mode`` BG_UNSIGNED → ``max(s - b, 0)``, BG_SIGNED → ``s - b``; then
    ``v < thr`` → 0 (cam_server's ``image[image < thr] = 0``). Column sums, row sums and
    min/max of the stored values are accumulated in the same pass. Returns ``(min, max)``.

    The loop body is written the way LLVM vectorises it: ``min``/``max`` builtins, only
    loop-invariant branches, row slices instead of offset indices (a possibly negative index
    makes numba emit wrap-around code), no optional work (a flag tested in the loop, or a second
    loop over the row in the same nest, stops vectorisation: mirroring columns is a separate
    pass, :func:`reverse_columns`).
    """
    height, width = out.shape
    acc = yacc.dtype.type
    store = out.dtype.type
    zero = acc(0)
    for i in range(height):
        srow = src[row0 + i * row_step][col0 : col0 + width]
        brow = bg[row0 + i * row_step][col0 : col0 + width]
        orow = out[i]
        s = zero
        for j in range(width):
            v = acc(srow[j])
            if mode == BG_UNSIGNED:
                v = acc(max(v - acc(brow[j]), zero))
            elif mode == BG_SIGNED:
                v = acc(v - acc(brow[j]))
            if v < thr:
                v = zero
            w = store(v)
            orow[j] = w
            v = acc(w)
            xacc[j] += v
            s += v
            mn = min(mn, v)
            mx = max(mx, v)
        yacc[i] = s
    return mn, mx


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_REASSOC)
def pixelwise_float(src, bg, mode, row0, row_step, col0, thr, out, xacc, yacc):  # noqa: PLR0913
    """:func:`pixelwise_int` for float pixels, without min/max.

    Sums are re-associated (vectorised, float64); a min/max chain over floats with NaN
    semantics does not vectorise, so the caller takes them with ``numpy.fmin/fmax.reduce``
    (NaN-ignoring, SIMD), which together cost a third of a fused scalar loop. NaN pixels stay
    NaN through the background and threshold steps, as with numpy.
    """
    height, width = out.shape
    store = out.dtype.type
    for i in range(height):
        srow = src[row0 + i * row_step][col0 : col0 + width]
        brow = bg[row0 + i * row_step][col0 : col0 + width]
        orow = out[i]
        s = 0.0
        for j in range(width):
            v = float(srow[j])
            if mode == BG_UNSIGNED:
                d = v - float(brow[j])
                v = 0.0 if d < 0.0 else d
            elif mode == BG_SIGNED:
                v = v - float(brow[j])
            if v < thr:
                v = 0.0
            w = store(v)
            orow[j] = w
            v = float(w)
            xacc[j] += v
            s += v
        yacc[i] = s


@njit(cache=True, nogil=True, error_model="numpy")
def reverse_columns(img):
    """Mirror ``img`` left-right in place (one in-cache pass per row)."""
    height, width = img.shape
    for i in range(height):
        row = img[i]
        for j in range(width // 2):
            t = row[j]
            row[j] = row[width - 1 - j]
            row[width - 1 - j] = t


@njit(cache=True, nogil=True, error_model="numpy")
def region_stats_int(img, r0, r1, c0, c1, xacc, yacc, mn, mx):
    """Column sums (into zeroed ``xacc``), row sums (into ``yacc``) and min/max of ``img[r0:r1, c0:c1]``."""
    acc = yacc.dtype.type
    zero = acc(0)
    for i in range(r0, r1):
        row = img[i][c0:c1]
        s = zero
        for j in range(c1 - c0):
            v = acc(row[j])
            xacc[j] += v
            s += v
            mn = min(mn, v)
            mx = max(mx, v)
        yacc[i - r0] = s
    return mn, mx


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_REASSOC)
def region_stats_float(img, r0, r1, c0, c1, xacc, yacc):
    """:func:`region_stats_int` for float pixels, sums only (see :func:`pixelwise_float`)."""
    for i in range(r0, r1):
        row = img[i][c0:c1]
        s = 0.0
        for j in range(c1 - c0):
            v = float(row[j])
            xacc[j] += v
            s += v
        yacc[i - r0] = s


@njit(cache=True, nogil=True, error_model="numpy")
def band_x_profiles(img, row_edges, c0, c1, out):
    """Column sums of consecutive row bands: ``out[k] = img[row_edges[k]:row_edges[k+1], c0:c1].sum(0)``."""
    for k in range(row_edges.shape[0] - 1):
        acc = out[k]
        for i in range(row_edges[k], row_edges[k + 1]):
            row = img[i][c0:c1]
            for j in range(c1 - c0):
                acc[j] += row[j]


@njit(cache=True, nogil=True, error_model="numpy")
def band_y_profiles(img, col_edges, r0, r1, out):
    """Row sums of consecutive column bands: ``out[k, i] = img[r0+i, col_edges[k]:col_edges[k+1]].sum()``."""
    zero = out.dtype.type(0)
    for i in range(r1 - r0):
        row = img[r0 + i]
        for k in range(col_edges.shape[0] - 1):
            band = row[col_edges[k] : col_edges[k + 1]]
            s = zero
            for j in range(band.shape[0]):
                s += band[j]
            out[k, i] = s


@njit(cache=True, nogil=True, error_model="numpy")
def bin_image(src, by, bx, mean, clip, out):
    """Block sums (or means) of ``by × bx`` pixels; the remainder rows/columns are dropped.

    With ``clip`` the value is clipped to 0..0xFFFF (cam_server's binned-sum convention for
    integer frames, stored as uint16).
    """
    height, width = out.shape
    norm = 1.0 / (by * bx)
    for i in range(height):
        for j in range(width):
            s = 0.0
            for a in range(by):
                row = src[i * by + a]
                for b in range(bx):
                    s += row[j * bx + b]
            if mean:
                s *= norm
            if clip:
                s = min(max(s, 0.0), 65535.0)
            out[i, j] = s


# --------------------------------------------------------------------------------------------
# Profile analysis (small arrays, but called several times per frame)
# --------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def _numpy_extremes(y):
    """``(min, max, argmax)`` of a non-empty profile with numpy's semantics (cam_server uses them):
    the first maximum; with a NaN sample min and max are NaN and argmax is the first NaN."""
    ymin = y[0]
    ymax = y[0]
    imax = 0
    for i in range(y.shape[0]):
        if math.isnan(y[i]):
            return y[i], y[i], i
        if y[i] < ymin:
            ymin = y[i]
        if y[i] > ymax:
            ymax = y[i]
            imax = i
    return ymin, ymax, imax


@njit(cache=True, nogil=True, error_model="numpy")
def full_width(x, y, fraction):
    """cam_server's full width of ``y(x)`` at ``fraction`` of its height above the minimum.

    From the (first) maximum, the first sample below the level is searched on each side; a side
    that never drops uses the edge sample. Each crossing is the straight line through that sample
    and its inner neighbour evaluated at the level (an extrapolation at an edge that never
    dropped), and the width is the distance of the two crossings. A flat profile divides 0 by 0
    and gives NaN, as cam_server's numpy arithmetic does; fewer than two samples give 0.0 (its
    "any error" answer).
    """
    n = y.shape[0]
    if n < 2:
        return 0.0
    ymin, ymax, imax = _numpy_extremes(y)
    level = ymin + (ymax - ymin) * fraction  # NaN with a NaN sample: the width comes out NaN
    left = 0
    for i in range(imax, -1, -1):
        if y[i] < level:
            left = i
            break
    right = n - 1
    for i in range(imax, n):
        if y[i] < level:
            right = i
            break
    if left + 1 >= n or right < 1:
        return 0.0
    xl = x[left] + (level - y[left]) * (x[left + 1] - x[left]) / (y[left + 1] - y[left])
    xr = x[right] + (level - y[right]) * (x[right - 1] - x[right]) / (y[right - 1] - y[right])
    return abs(xr - xl)


@njit(cache=True, nogil=True, error_model="numpy")
def good_region_bounds(y, threshold, gfscale):
    """cam_server's good region of one profile: ``(start, end)``, ``end`` exclusive for slicing.

    processing-parity.md §2: level = min + (max - min) * threshold; from the first maximum ``m``
    walk left over ``m, m-1, ..., 1`` (index 0 is never examined) and right over ``m, ..., n-1``
    to the first sample below the level; a side that never drops keeps ``m``. The interval is
    widened by ``(w * gfscale - w) / 2`` on each side, clamped to ``[0, n - 1]`` and truncated.
    A NaN sample makes the level NaN (numpy's min/max), so the region is empty at the first NaN.
    """
    n = y.shape[0]
    ymin, ymax, imax = _numpy_extremes(y)
    level = ymin + (ymax - ymin) * threshold  # NaN: nothing is below it, the region is empty
    start = imax
    for i in range(imax, 0, -1):
        if y[i] < level:
            start = i
            break
    end = imax
    for i in range(imax, n):
        if y[i] < level:
            end = i
            break
    width = float(end - start)
    extend = (width * gfscale - width) / 2.0
    fstart = start - extend
    fend = end + extend
    if not fstart > 0.0:
        fstart = 0.0
    if not fend < n - 1.0:
        fend = n - 1.0
    return int(fstart), int(fend)


@njit(cache=True, nogil=True, error_model="numpy")
def com_rms(x, y, offset, mean, sigma):
    """cam_server's centre of mass and rms of a profile (processing-parity.md §1).

    ``q = y - offset`` is normalised by its sum over *all* samples (when that sum is not 0),
    samples farther than ``5 sigma`` from ``mean`` are then zeroed, and the moments are taken
    without renormalising: ``com = sum(x q)``, ``rms = sqrt(|sum((x - com)**2 q)|)``. The same
    arithmetic runs for a flat or empty profile (no NaN is made up).
    """
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total += y[i] - offset
    norm = total if total != 0.0 else 1.0
    half = 5.0 * sigma
    com = 0.0
    for i in range(n):
        if abs(x[i] - mean) > half:
            continue
        com += x[i] * ((y[i] - offset) / norm)
    second = 0.0
    for i in range(n):
        if abs(x[i] - mean) > half:
            continue
        d = x[i] - com
        second += d * d * ((y[i] - offset) / norm)
    return com, math.sqrt(abs(second))


@njit(cache=True, nogil=True, error_model="numpy")
def gauss_evaluate(x, offset, amplitude, mean, sigma, out):
    """``offset + amplitude * exp(-(x - mean)**2 / (2 sigma**2))`` into ``out`` (cam_server's model)."""
    two_s2 = 2.0 * sigma * sigma
    for i in range(x.shape[0]):
        d = x[i] - mean
        out[i] = offset + amplitude * math.exp(-(d * d) / two_s2)
