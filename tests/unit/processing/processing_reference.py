"""A plain numpy/scipy reference of cam_server's documented processing (compat §2.2-2.4).

Written for readability, not speed, and independently of ``camioc.processing``: whole-array numpy
operations, Python loops where the documented algorithm is a walk, and
``scipy.optimize.curve_fit`` exactly as cam_server calls it. The decisions camioc took where the
reference is silent (module docstrings of ``camioc.processing``) are re-implemented here from
their description.

Quantities that take a fit as input (centre of mass/rms window, slice positions) accept the fit
parameters to use, so that each quantity can be compared on its own: a 1e-6 difference between
two converged fits must not move a window edge and masquerade as a centroid error.
"""

from __future__ import annotations

import math
import warnings
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
    y = np.asarray(y, dtype=np.float64) - np.min(y)
    if not np.all(np.isfinite(y)) or y.max() <= 0:
        return 0.0
    level = fraction * y.max()
    peak = int(np.argmax(y))
    left = peak
    while left >= 0 and y[left] >= level:
        left -= 1
    right = peak
    while right < len(y) and y[right] >= level:
        right += 1
    if left < 0 or right >= len(y):
        return 0.0
    x_left = np.interp(level, [y[left], y[left + 1]], [x[left], x[left + 1]])
    x_right = np.interp(level, [y[right], y[right - 1]], [x[right], x[right - 1]])
    return float(abs(x_right - x_left))


def center_of_mass_and_rms(
    x: np.ndarray, y: np.ndarray, offset: float, mean: float, sigma: float
) -> tuple[float, float]:
    weights = np.asarray(y, dtype=np.float64) - offset
    if math.isfinite(sigma) and sigma > 0 and math.isfinite(mean):
        weights = np.where(np.abs(x - mean) <= 5 * sigma, weights, 0.0)
    total = weights.sum()
    if not total > 0:
        return math.nan, math.nan
    com = float((weights * x).sum() / total)
    variance = float((weights * (x - com) ** 2).sum() / total)
    return com, (math.sqrt(variance) if variance >= 0 else math.nan)


def good_region(profile: np.ndarray, threshold: float, gfscale: float) -> tuple[int, int]:
    profile = np.asarray(profile, dtype=np.float64)
    level = profile.min() + (profile.max() - profile.min()) * threshold
    peak = int(np.argmax(profile))
    start = 0
    for i in range(peak, -1, -1):
        if profile[i] < level:
            start = i
            break
    end = len(profile) - 1
    for i in range(peak, len(profile)):
        if profile[i] < level:
            end = i
            break
    extend = (end - start) * gfscale - (end - start)
    return int(max(start - extend / 2, 0)), int(min(end + extend / 2, len(profile) - 1))


def slice_bands(axis: np.ndarray, mean: float, sigma: float, scale: float, n: int) -> tuple[list[Any], float]:
    """The documented slice layout: n odd bands of w pixels, middle centred on the mean."""
    length = len(axis)
    if length < 2 or not (math.isfinite(mean) and math.isfinite(sigma)):
        return [None] * n, math.nan
    step = (float(axis[-1]) - float(axis[0])) / (length - 1)
    width = max(1, int(math.floor(scale * sigma / n / abs(step) + 0.5)))
    middle_start = int(math.floor((mean - float(axis[0])) / step - (width - 1) / 2 + 0.5))
    bands: list[Any] = [None] * n
    half = n // 2
    first, last = max(middle_start, 0), min(middle_start + width, length)
    if last <= first:
        return bands, width * abs(step)
    bands[half] = (first, last)
    k = 1
    while k <= half and middle_start - k * width >= 0 and middle_start + (k + 1) * width <= length:
        bands[half - k] = (middle_start - k * width, middle_start - (k - 1) * width)
        bands[half + k] = (middle_start + k * width, middle_start + (k + 1) * width)
        k += 1
    return bands, width * abs(step)


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
        x_axis = x_axis[: w * bx].astype(np.float64).reshape(w, bx).mean(axis=1).astype(np.float32)
        y_axis = y_axis[: h * by].astype(np.float64).reshape(h, by).mean(axis=1).astype(np.float32)
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
        ox, sx, oy, sy = roi
        x0, x1 = max(ox, 0), min(ox + sx, image.shape[1])
        y0, y1 = max(oy, 0), min(oy + sy, image.shape[0])
        image = image[y0:y1, x0:x1]
        x_axis, y_axis = x_axis[x0:x1], y_axis[y0:y1]
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
def default_outputs(
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    config: dict[str, Any],
    use_fits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reference outputs of the default function.

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
    threshold, gfscale = region.get("threshold", 0.3), region.get("gfscale", 1.8)
    xs, xe = good_region(x_profile, threshold, gfscale)
    ys, ye = good_region(y_profile, threshold, gfscale)
    crop = image[ys : ye + 1, xs : xe + 1]
    gr_x_axis, gr_y_axis = x_axis[xs : xe + 1], y_axis[ys : ye + 1]
    gr_x_profile, gr_y_profile = profiles(crop)
    out.update(good_region=np.array([xs, ys, xe, ye]), gr_x_axis=gr_x_axis, gr_y_axis=gr_y_axis,
               gr_x_profile=gr_x_profile, gr_y_profile=gr_y_profile, gr_intensity=gr_x_profile.sum())
    out["gr_x_fit"], _ = gauss_fit(gr_x_profile, gr_x_axis)
    out["gr_y_fit"], _ = gauss_fit(gr_y_profile, gr_y_axis)
    slices = config.get("image_slices")
    if slices is None:
        return out
    n = slices.get("number_of_slices", 1)
    n = n if n % 2 else n + 1
    vertical = slices.get("orientation", "vertical") == "vertical"
    pos_axis, fit_axis = (gr_y_axis, gr_x_axis) if vertical else (gr_x_axis, gr_y_axis)
    pos_name = "gr_y" if vertical else "gr_x"
    pos_fit = out[f"{pos_name}_fit"]
    mean = given.get(f"{pos_name}_fit_mean", pos_fit[2])
    sigma = given.get(f"{pos_name}_fit_standard_deviation", pos_fit[3])
    bands, length = slice_bands(pos_axis, mean, sigma, slices.get("scale", 2.0), n)
    out.update(slice_amount=n, slice_length=length, slice_orientation="vertical" if vertical else "horizontal")
    positions, centres = [], []
    for k, band in enumerate(bands):
        if band is None:
            out[f"slice_{k}"] = None
            continue
        part = crop[band[0] : band[1], :] if vertical else crop[:, band[0] : band[1]]
        profile = profiles(part)[0 if vertical else 1]
        params, _ = gauss_fit(profile, fit_axis)
        position = float(pos_axis[band[0] : band[1]].astype(np.float64).mean())
        out[f"slice_{k}"] = dict(fit=params, position=position, intensity=float(profile.sum()))
        positions.append(position)
        centres.append(params[2])
    out["coupling_slope"], out["coupling_offset"] = linear_fit(np.array(positions), np.array(centres))
    out["slice_positions"], out["slice_centres"] = positions, centres
    return out
