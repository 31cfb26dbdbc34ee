"""A plain numpy/scipy reference of cam_server's documented processing.

Written from the documents, for readability, not speed, and independently of ``camioc.processing``
(nothing of camioc is imported): whole-array numpy operations, Python loops where the documented
algorithm is a walk, and ``scipy.optimize.curve_fit`` exactly as cam_server calls it. Pre-processing
order and fits: compat §2.2-2.4; centre of mass and rms, good region, slices and coupling, ROI
clamping: ``processing-parity.md`` §1-§4 (which wins where camioc used to differ); FWHM: compat
appendix B (``get_fw``). ``test_equivalence.py`` also holds these estimators to cam_server's own
golden outputs, so the reference is checked against cam_server itself, not only against camioc.

Quantities that take a fit as input (centre of mass/rms window, slice boundaries) accept the fit
parameters to use, so that each quantity can be compared on its own: a 1e-6 difference between
two converged fits must not move a window edge and masquerade as a centroid error.
"""

from __future__ import annotations

import math
import warnings
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.ndimage
import scipy.optimize


# ------------------------------------------------------------------------------------ fits
def gauss_function(x: np.ndarray, offset: float, amplitude: float, mean: float, sigma: float) -> np.ndarray:
    return offset + amplitude * np.exp(-((x - mean) ** 2) / (2 * sigma**2))


def initial_guess(profile: np.ndarray, axis: np.ndarray) -> list[float]:
    offset = profile.min()
    amplitude = profile.max() - offset
    mean = axis[profile.argmax()]
    sigma = np.trapezoid(profile - offset, x=axis) / (amplitude * np.sqrt(2 * np.pi)) if amplitude else 1.0
    return [offset, amplitude, mean, sigma]


def gauss_fit(profile: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, bool]:
    """cam_server's gauss_fit: curve_fit from the initial guesses; the guesses on any exception."""
    p0 = initial_guess(profile, axis)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = scipy.optimize.curve_fit(gauss_function, axis, profile.astype("float32"), p0=p0)
        converged = True
    except Exception:  # noqa: BLE001 - cam_server's fall-back on any failure
        params = np.array(p0, dtype=np.float64)
        converged = False
    params = np.array(params, dtype=np.float64)
    params[3] = abs(params[3])
    return params, converged


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 2:
        return math.nan, math.nan
    slope, offset = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(offset)


# --------------------------------------------------------------------------- profile analysis
def profiles(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wide = image.astype(np.float64) if image.dtype.kind == "f" else image.astype(np.int64)
    return wide.sum(axis=0), wide.sum(axis=1)


def full_width(x: np.ndarray, y: np.ndarray, fraction: float) -> float:
    """Full width at ``fraction`` of (max - min) above min, scanning out from the first maximum.

    On each side the first sample below the level is taken (the edge sample when a side never
    drops) and the crossing is the straight line through it and its inner neighbour, evaluated
    at the level: an extrapolation past the edge for a beam cut by it. numpy arithmetic: a flat
    profile gives 0/0 = NaN. Fewer than two samples: 0.0 (cam_server's answer to any error).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2:
        return 0.0
    level = y.min() + (y.max() - y.min()) * fraction
    peak = int(np.argmax(y))
    below_left = np.flatnonzero(y[: peak + 1] < level)
    below_right = np.flatnonzero(y[peak:] < level)
    left = int(below_left[-1]) if below_left.size else 0
    right = peak + int(below_right[0]) if below_right.size else y.size - 1

    def crossing(outer: int, inner: int) -> np.float64:
        slope = (x[inner] - x[outer]) / (y[inner] - y[outer])
        return x[outer] + (level - y[outer]) * slope

    with np.errstate(divide="ignore", invalid="ignore"):
        return float(abs(crossing(right, right - 1) - crossing(left, left + 1)))


def center_of_mass_and_rms(
    x: np.ndarray, y: np.ndarray, offset: float, mean: float, sigma: float
) -> tuple[float, float]:
    """processing-parity.md section 1: normalise by the sum over all samples, then cut at 5 sigma."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(y, dtype=np.float64) - offset
    total = q.sum()
    if total != 0:
        q = q / total
    q = np.where(np.abs(x - mean) > 5 * sigma, 0.0, q)
    com = (x * q).sum()
    rms = np.sqrt(np.abs(((x - com) ** 2 * q).sum()))
    return float(com), float(rms)


def good_region(profile: np.ndarray, threshold: float, gfscale: float) -> tuple[int, int]:
    """processing-parity.md section 2: ``(start, end)``, to be sliced with an exclusive end."""
    profile = np.asarray(profile, dtype=np.float64)
    n = len(profile)
    level = profile.min() + (profile.max() - profile.min()) * threshold
    peak = int(np.argmax(profile))
    start = end = peak
    for i in range(peak, 0, -1):  # index 0 is never examined
        if profile[i] < level:
            start = i
            break
    for i in range(peak, n):
        if profile[i] < level:
            end = i
            break
    width = end - start
    grow = (width * gfscale - width) / 2
    start, end = start - grow, end + grow
    if not start > 0:
        start = 0
    if not end < n - 1:
        end = n - 1
    return int(start), int(end)


def find_index(axis: np.ndarray, value: float) -> int:
    """processing-parity.md section 3 ``idx``."""
    a = np.asarray(axis, dtype=np.float64)
    if a[0] > a[-1]:  # descending
        if value > a[0]:
            return 0
        if value < a[-1]:
            return len(a) - 1
        return int(np.searchsorted(-a, -value, side="left"))
    if value < a[0]:
        return 0
    if value > a[-1]:
        return len(a) - 1
    k = int(np.searchsorted(a, value, side="left"))
    return k if a[k] == value else k - 1


def calculate_slices(
    axis: np.ndarray, center: float, sigma: float, scale: float, n: int
) -> tuple[list[int], int, float | None]:
    """processing-parity.md section 3 boundaries: ``(boundaries, h, slice_length)``.

    No boundaries (``[]``, ``slice_length`` None) when the middle slice does not fit.
    """
    size = scale * sigma / n
    middle = find_index(axis, center)
    half = max(abs(find_index(axis, center + size / 2) - middle), 1)
    lo, hi = middle - half, middle + half
    if not (lo >= 0 and hi < len(axis)):
        return [], half, None
    boundaries = [lo, hi]
    slice_length = float(abs(axis[lo] - axis[hi]))  # in the axis' own dtype, as numpy does
    left = n - 1
    while left > 0:
        lo -= 2 * half
        hi += 2 * half
        if lo < 0 or hi >= len(axis):
            break
        boundaries.insert(0, lo)
        boundaries.append(hi)
        left -= 2
    return boundaries, half, slice_length


def slices_data(
    crop: np.ndarray, gr_x_axis: np.ndarray, gr_y_axis: np.ndarray, center: float, sigma: float,
    scale: float, n: int, rows: bool,
) -> tuple[list[dict[str, Any]], float | None]:
    """Row bands (``rows``: y-slices) or column bands (x-slices) of the good-region ``crop``."""
    position_axis, fit_axis = (gr_y_axis, gr_x_axis) if rows else (gr_x_axis, gr_y_axis)
    boundaries, half, slice_length = calculate_slices(position_axis, center, sigma, scale, n)
    extent = crop.shape[0] if rows else crop.shape[1]
    result = []
    for b0, b1 in pairwise(boundaries):
        if not (b0 < extent and b1 < extent):
            continue
        band = crop[b0:b1, :] if rows else crop[:, b0:b1]
        profile = profiles(band)[0 if rows else 1]
        params, _ = gauss_fit(profile, fit_axis)
        position = float(position_axis[b0 + half])
        centre_x, centre_y = (params[2], position) if rows else (position, params[2])
        result.append(dict(center_x=float(centre_x), center_y=float(centre_y), standard_deviation=params[3],
                           intensity=float(profile.sum()), fit=params))
    return result, slice_length


# ---------------------------------------------------------------------------- pre-processing
def preprocess(
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    config: dict[str, Any],
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cam_server's pre_processor order with numpy whole-array operations."""
    image = image.copy()
    x_axis = np.asarray(x_axis, dtype=np.float32).copy()
    y_axis = np.asarray(y_axis, dtype=np.float32).copy()
    bx, by = config.get("binning_x") or 1, config.get("binning_y") or 1
    raw_shape = image.shape
    if bx > 1 or by > 1:
        h, w = image.shape[0] // by, image.shape[1] // bx
        blocks = image[: h * by, : w * bx].astype(np.float64).reshape(h, by, w, bx)
        if config.get("binning_mean"):
            image = blocks.mean(axis=(1, 3))
        elif image.dtype.kind in "iu":
            image = np.clip(blocks.sum(axis=(1, 3)), 0, 0xFFFF).astype(np.uint16)
        else:
            image = blocks.sum(axis=(1, 3))
        # numpy's mean of the float32 axis blocks (float32 arithmetic)
        x_axis = x_axis[: w * bx].reshape(w, bx).mean(axis=1)
        y_axis = y_axis[: h * by].reshape(h, by).mean(axis=1)
    mode = config.get("image_background_enable")
    if mode and mode != "passive":
        bg = background
        if bg.shape == raw_shape and bg.shape != image.shape:
            bg, _, _ = preprocess(bg, np.zeros(raw_shape[1]), np.zeros(raw_shape[0]),
                                  {k: config.get(k) for k in ("binning_x", "binning_y", "binning_mean")})
        if image.dtype.kind in "iu" and bg.dtype.kind == "f":
            bg = np.rint(bg)
        if image.dtype.kind in "iu":
            bg = np.clip(bg, np.iinfo(image.dtype).min, np.iinfo(image.dtype).max).astype(image.dtype)
        if mode == "signed":
            signed = np.int32 if image.dtype.itemsize <= 2 else np.int64
            image = image.astype(signed) - bg.astype(signed) if image.dtype.kind in "iu" else image - bg
        else:
            image = np.where(image > bg, image - bg, 0).astype(image.dtype)
    if config.get("mirror_x"):
        image = np.fliplr(image)
        x_axis = x_axis[::-1]
    if config.get("mirror_y"):
        image = np.flipud(image)
        y_axis = y_axis[::-1]
    rotation = config.get("rotation")
    if rotation:
        if not isinstance(rotation, dict):
            rotation = {"angle": rotation}
        angle = rotation.get("angle", 0)
        if angle:
            if rotation.get("mode") == "ortho":
                k = int(round(angle / 90)) % 4
                marker_x = np.broadcast_to(x_axis, image.shape)
                marker_y = np.broadcast_to(y_axis[:, None], image.shape)
                image = np.rot90(image, k)
                x_axis = np.rot90(marker_y, k)[0].copy() if k % 2 else np.rot90(marker_x, k)[0].copy()
                y_axis = np.rot90(marker_x, k)[:, 0].copy() if k % 2 else np.rot90(marker_y, k)[:, 0].copy()
            else:
                mode_value = rotation.get("mode", "constant")
                try:
                    cval, scipy_mode = float(mode_value), "constant"
                except (TypeError, ValueError):
                    cval, scipy_mode = 0.0, mode_value
                image = scipy.ndimage.rotate(image, angle, reshape=False, order=rotation.get("order", 1),
                                             mode=scipy_mode, cval=cval, prefilter=True)
    roi = config.get("image_region_of_interest")
    if roi:
        # processing-parity.md section 4: sizes limited to the image, offsets moved so that it fits
        ox, sx, oy, sy = roi
        height, width = image.shape
        sx, sy = min(sx, width), min(sy, height)
        ox, oy = max(min(ox, width - sx), 0), max(min(oy, height - sy), 0)
        image = image[oy : oy + sy, ox : ox + sx]
        x_axis, y_axis = x_axis[ox : ox + sx], y_axis[oy : oy + sy]
    threshold = config.get("image_threshold")
    if threshold is not None and threshold > 0:
        image = image.copy()
        image[image < int(threshold)] = 0
    if config.get("image_scale"):
        image = image * float(config["image_scale"])
    if config.get("image_offset"):
        image = image.astype(np.float64) + float(config["image_offset"])
    return np.ascontiguousarray(image), x_axis, y_axis


# ------------------------------------------------------------------------- default function
SLICE_FIELDS = ("center_x", "center_y", "standard_deviation", "intensity")


def default_outputs(
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    config: dict[str, Any],
    use_fits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reference outputs of the default function, under cam_server's names (None where it has None).

    Fit parameters are also returned as arrays (``x_fit``, ``gr_x_fit``, ``slice_<k>_fit``).
    ``use_fits``: fit parameters (cam_server output names) to position windows and slices with;
    defaults to this reference's own fits.
    """
    given = use_fits or {}
    out: dict[str, Any] = {}
    x_profile, y_profile = profiles(image)
    out.update(
        width=image.shape[1], height=image.shape[0], x_profile=x_profile, y_profile=y_profile,
        intensity=x_profile.sum(), min_value=np.nanmin(image), max_value=np.nanmax(image),
    )
    x64, y64 = x_axis.astype(np.float64), y_axis.astype(np.float64)
    for name, axis, ax64, profile in (("x", x_axis, x64, x_profile), ("y", y_axis, y64, y_profile)):
        params, converged = gauss_fit(profile, axis)
        out[f"{name}_fit"] = params
        out[f"{name}_fit_converged"] = converged
        out[f"{name}_fit_gauss_function"] = gauss_function(ax64, *params)
        out[f"{name}_fwhm"] = full_width(ax64, profile, 0.5)
        if config.get("fw_threshold") is not None:
            out[f"{name}_fw"] = full_width(ax64, profile, config["fw_threshold"])
        offset = given.get(f"{name}_fit_offset", params[0])
        mean = given.get(f"{name}_fit_mean", params[2])
        sigma = given.get(f"{name}_fit_standard_deviation", params[3])
        out[f"{name}_center_of_mass"], out[f"{name}_rms"] = center_of_mass_and_rms(ax64, profile, offset, mean, sigma)
    region = config.get("image_good_region")
    if region is None:
        return out
    slices = config.get("image_slices")
    # everything None until computed (a failure leaves it so)
    for name in ("good_region", "gr_x_axis", "gr_y_axis", "gr_x_profile", "gr_y_profile", "gr_intensity",
                 "gr_x_fit", "gr_y_fit"):
        out[name] = None
    n = 0
    if slices is not None:
        n = slices.get("number_of_slices", 1)
        n = n if n % 2 else n + 1
        out.update(slice_amount=n, slice_orientation=slices.get("orientation", "vertical"), slice_length=None,
                   coupling=None, coupling_slope=None, coupling_offset=None, x_slices=[])
        for k in range(n):
            out[f"slice_{k}_fit"] = None
            for field in SLICE_FIELDS:
                out[f"slice_{k}_{field}"] = None
    threshold, gfscale = region.get("threshold", 0.3), region.get("gfscale", 1.8)
    xs, xe = good_region(x_profile, threshold, gfscale)
    ys, ye = good_region(y_profile, threshold, gfscale)
    crop = image[ys:ye, xs:xe]  # the end is exclusive
    if crop.size == 0:  # cam_server's fit of an empty profile raises: all None
        return out
    gr_x_axis, gr_y_axis = x_axis[xs:xe], y_axis[ys:ye]
    gr_x_profile, gr_y_profile = profiles(crop)
    out.update(good_region=np.array([xs, ys, xe, ye]), gr_x_axis=gr_x_axis, gr_y_axis=gr_y_axis,
               gr_x_profile=gr_x_profile, gr_y_profile=gr_y_profile, gr_intensity=gr_x_profile.sum())
    out["gr_x_fit"], _ = gauss_fit(gr_x_profile, gr_x_axis)
    out["gr_y_fit"], _ = gauss_fit(gr_y_profile, gr_y_axis)
    if slices is None:
        return out
    scale = slices.get("scale", 2.0)
    centre_and_sigma = {}
    for name in ("gr_x", "gr_y"):
        fit = out[f"{name}_fit"]
        centre_and_sigma[name] = (given.get(f"{name}_fit_mean", fit[2]),
                                  given.get(f"{name}_fit_standard_deviation", fit[3]))
    x_slices, x_length = slices_data(crop, gr_x_axis, gr_y_axis, *centre_and_sigma["gr_x"], scale, n, rows=False)
    if x_length is None:  # no x boundaries: the whole slice computation is aborted
        return out
    if out["slice_orientation"] == "vertical":
        chosen, out["slice_length"] = slices_data(crop, gr_x_axis, gr_y_axis, *centre_and_sigma["gr_y"], scale, n,
                                                  rows=True)
    else:
        chosen, out["slice_length"] = x_slices, x_length
    for k, entry in enumerate(chosen[:n]):
        out[f"slice_{k}_fit"] = entry["fit"]
        for field in SLICE_FIELDS:
            out[f"slice_{k}_{field}"] = entry[field]
    out["x_slices"] = x_slices
    if len(x_slices) >= 2:
        slope, offset = linear_fit(np.array([s["center_x"] for s in x_slices]),
                                   np.array([s["center_y"] for s in x_slices]))
        gr_x_sigma = centre_and_sigma["gr_x"][1]
        out.update(coupling=slope * gr_x_sigma**2, coupling_slope=slope, coupling_offset=offset)
    return out
