"""cam_server's default pipeline function: profiles, fits, moments, good region, slices.

Output names and types follow compat §2.3. Decisions where the reference is silent or ambiguous
(what a beam physicist would expect):

* Profiles of integer images are exact int64 sums; of float images float64 sums (NaN propagates,
  as ``sum`` does), ``min_value``/``max_value`` skip NaN (``nanmin``/``nanmax``) and keep the image
  dtype.
* FWHM (and ``*_fw`` at ``fw_threshold``): the width of the peak that contains the maximum, from
  the baseline ``min(profile)``, walking outwards from the maximum to the first sample below the
  level on each side and interpolating linearly; 0.0 when a side never drops below the level
  (beam cut by the edge) or the profile is flat/non-finite. ``abs`` makes it positive on
  descending (calibrated) axes.
* Centre of mass and rms: weights ``profile - fit_offset`` inside ``|x - fit_mean| <= 5 fit_sigma``
  (the Gaussian fit's offset is the pedestal estimate; the window is skipped if sigma is not
  finite and positive). Negative weights are kept (they average out noise symmetrically); when
  the weights do not sum to a positive value (no beam) both are NaN, and the rms is NaN if the
  second moment comes out negative. NaN is the honest "no beam" answer and never raises.
* Good region: inclusive sample bounds ``[x_start, y_start, x_end, y_end]`` (the order of the
  reference); the crop includes both ends. A profile that never drops below the level on a side
  extends to that edge.
* Slices (``n`` odd): slice width ``w = max(1, round(scale * sigma / n / pitch))`` pixels along
  the slicing direction (``pitch`` = mean axis step); the middle slice is the band of ``w``
  pixels whose centre is nearest to the fitted mean (fractional index on the linear axis);
  pair ``k`` (slices ``middle ± k``) exists only if both lie fully inside the good region (and
  all inner pairs exist); the middle slice is clipped to it. Slices
  are numbered in pixel order (``slice_0`` has the lowest row/column index, the middle one is
  ``n // 2``). A slice that does not exist reports NaN in its four fields, so that every frame
  has the same channels. ``slice_<i>_intensity`` is the band sum (float64); the band centre
  coordinate is the mean of its axis samples.
* Coupling: the linear fit of the fitted slice centres against the slice positions, i.e.
  ``x_c = slope * y + offset`` for vertical slices (row bands) and ``y_c = slope * x + offset``
  for horizontal ones; ``coupling = slope * sigma_pos**2`` with ``sigma_pos`` the good-region fit
  sigma along the slice positions. For horizontal slices this is the reference's
  ``slope * gr_x_sigma**2``; for vertical slices the same covariance estimate ``<xy>`` uses
  ``gr_y_sigma``. NaN with fewer than two slices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from camioc.processing import kernels
from camioc.processing.fitting import GaussianFit, fit_gaussian, gaussian, linear_fit
from camioc.processing.parameters import GoodRegionParameters, ProcessingParameters, SliceParameters
from camioc.processing.preprocess import Frame, Profiles, check_frame, image_profiles, region_profiles

__all__ = ["analyse_frame", "process_image"]


def process_image(
    image: np.ndarray,
    pulse_id: int,
    timestamp: float,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    parameters: ProcessingParameters | Mapping[str, Any],
    bsdata: Any = None,
) -> dict[str, Any]:
    """cam_server's ``process_image`` signature, on an already pre-processed image."""
    del pulse_id, bsdata  # part of the function signature; the default function does not use them
    params = (
        parameters
        if isinstance(parameters, ProcessingParameters)
        else ProcessingParameters.from_config(parameters)
    )
    img, xa, ya = check_frame(image, x_axis, y_axis)
    return analyse_frame(Frame(img, xa, ya), timestamp, params)


def analyse_frame(frame: Frame, timestamp: float, params: ProcessingParameters) -> dict[str, Any]:
    """All default-function outputs for a pre-processed frame (profiles reused if present)."""
    image, x_axis, y_axis = frame.image, frame.x_axis, frame.y_axis
    profiles = frame.profiles if frame.profiles is not None else image_profiles(image)
    out: dict[str, Any] = {
        "x_axis": x_axis,
        "y_axis": y_axis,
        "image": image,
        "width": np.int64(image.shape[1]),
        "height": np.int64(image.shape[0]),
        "timestamp": np.float64(timestamp),
        "min_value": profiles.min_value,
        "max_value": profiles.max_value,
        "x_profile": profiles.x,
        "y_profile": profiles.y,
        "intensity": profiles.x.sum(),
    }
    for name, axis, profile in (("x", x_axis, profiles.x), ("y", y_axis, profiles.y)):
        _profile_outputs(out, name, axis, profile, params.fw_threshold)
    if params.good_region is not None:
        _good_region_outputs(out, image, profiles, x_axis, y_axis, params.good_region, params.slices)
    return out


def _profile_outputs(
    out: dict[str, Any], name: str, axis: np.ndarray, profile: np.ndarray, fw_threshold: float | None
) -> None:
    ax = axis.astype(np.float64)
    prof = profile.astype(np.float64)
    fit = fit_gaussian(prof, axis)
    out[f"{name}_fwhm"] = np.float64(kernels.full_width(ax, prof, 0.5))
    if fw_threshold is not None:
        out[f"{name}_fw"] = np.float64(kernels.full_width(ax, prof, fw_threshold))
    com, rms = kernels.com_rms(ax, prof, fit.offset, fit.mean, fit.standard_deviation)
    out[f"{name}_center_of_mass"] = np.float64(com)
    out[f"{name}_rms"] = np.float64(rms)
    _fit_outputs(out, name, axis, fit)


def _fit_outputs(out: dict[str, Any], prefix: str, axis: np.ndarray, fit: GaussianFit) -> None:
    out[f"{prefix}_fit_gauss_function"] = gaussian(axis, fit)
    out[f"{prefix}_fit_offset"] = np.float64(fit.offset)
    out[f"{prefix}_fit_amplitude"] = np.float64(fit.amplitude)
    out[f"{prefix}_fit_mean"] = np.float64(fit.mean)
    out[f"{prefix}_fit_standard_deviation"] = np.float64(fit.standard_deviation)


def _good_region_outputs(  # noqa: PLR0913
    out: dict[str, Any],
    image: np.ndarray,
    profiles: Profiles,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    region: GoodRegionParameters,
    slices: SliceParameters | None,
) -> None:
    xs, xe = kernels.good_region_bounds(profiles.x.astype(np.float64), region.threshold, region.gfscale)
    ys, ye = kernels.good_region_bounds(profiles.y.astype(np.float64), region.threshold, region.gfscale)
    gr = region_profiles(image, ys, ye + 1, xs, xe + 1)
    gr_x_axis = x_axis[xs : xe + 1]
    gr_y_axis = y_axis[ys : ye + 1]
    gr_x_fit = fit_gaussian(gr.x, gr_x_axis)
    gr_y_fit = fit_gaussian(gr.y, gr_y_axis)
    out["good_region"] = np.array([xs, ys, xe, ye], dtype=np.int64)
    out["gr_x_axis"] = gr_x_axis
    out["gr_y_axis"] = gr_y_axis
    out["gr_x_profile"] = gr.x
    out["gr_y_profile"] = gr.y
    _fit_outputs(out, "gr_x", gr_x_axis, gr_x_fit)
    _fit_outputs(out, "gr_y", gr_y_axis, gr_y_fit)
    out["gr_intensity"] = gr.x.sum()
    if slices is not None:
        window = (ys, ye + 1, xs, xe + 1)
        _slice_outputs(out, image, window, gr_x_axis, gr_y_axis, gr_x_fit, gr_y_fit, slices)


def slice_bounds(
    axis: np.ndarray, mean: float, sigma: float, scale: float, count: int
) -> tuple[list[tuple[int, int] | None], float]:
    """Index bands ``[start, stop)`` of the ``count`` slices along ``axis`` and the slice length.

    ``None`` marks a slice that does not fit (see the module docstring for the rule).
    """
    length = axis.shape[0]
    missing: list[tuple[int, int] | None] = [None] * count
    if not (math.isfinite(mean) and math.isfinite(sigma)) or length == 0:
        return missing, math.nan
    step = (float(axis[-1]) - float(axis[0])) / (length - 1) if length > 1 else math.nan
    pitch = abs(step)
    width = max(1, math.floor(scale * sigma / count / pitch + 0.5)) if pitch > 0.0 else 1
    # fractional index of the mean on the (linear) axis; the middle band is centred on it
    position = (mean - float(axis[0])) / step if pitch > 0.0 else 0.0
    start = math.floor(position - (width - 1) / 2.0 + 0.5)
    slice_length = width * pitch if pitch > 0.0 else math.nan
    middle = (max(start, 0), min(start + width, length))
    if middle[1] <= middle[0]:  # the mean lies outside the good region
        return missing, slice_length
    half = count // 2
    bands = missing.copy()
    bands[half] = middle
    for k in range(1, half + 1):
        low, high = start - k * width, start + k * width
        if low < 0 or high + width > length:
            break
        bands[half - k] = (low, low + width)
        bands[half + k] = (high, high + width)
    return bands, slice_length


def _slice_outputs(  # noqa: PLR0913
    out: dict[str, Any],
    image: np.ndarray,
    window: tuple[int, int, int, int],
    gr_x_axis: np.ndarray,
    gr_y_axis: np.ndarray,
    gr_x_fit: GaussianFit,
    gr_y_fit: GaussianFit,
    slices: SliceParameters,
) -> None:
    n = slices.count
    vertical = slices.orientation == "vertical"
    if vertical:
        pos_axis, fit_axis, pos_fit = gr_y_axis, gr_x_axis, gr_y_fit
    else:
        pos_axis, fit_axis, pos_fit = gr_x_axis, gr_y_axis, gr_x_fit
    bands, slice_length = slice_bounds(
        pos_axis, pos_fit.mean, pos_fit.standard_deviation, slices.scale, n
    )
    present = [k for k in range(n) if bands[k] is not None]
    band_profiles = _band_profiles(image, window, [bands[k] for k in present], vertical)  # type: ignore[misc]
    out["slice_orientation"] = slices.orientation
    out["slice_amount"] = np.int64(n)
    out["slice_length"] = np.float64(slice_length)
    positions: list[float] = []
    centres: list[float] = []
    results: dict[int, tuple[float, float, float, float]] = {}
    for row, k in enumerate(present):
        start, stop = bands[k]  # type: ignore[misc]
        profile = band_profiles[row]
        fit = fit_gaussian(profile, fit_axis)
        position = float(pos_axis[start:stop].astype(np.float64).mean())
        centre_x, centre_y = (fit.mean, position) if vertical else (position, fit.mean)
        results[k] = (centre_x, centre_y, fit.standard_deviation, float(profile.sum()))
        positions.append(position)
        centres.append(fit.mean)
    for k in range(n):
        cx, cy, sd, intensity = results.get(k, (math.nan,) * 4)
        out[f"slice_{k}_center_x"] = np.float64(cx)
        out[f"slice_{k}_center_y"] = np.float64(cy)
        out[f"slice_{k}_standard_deviation"] = np.float64(sd)
        out[f"slice_{k}_intensity"] = np.float64(intensity)
    slope, offset = linear_fit(np.array(positions), np.array(centres))
    out["coupling"] = np.float64(slope * pos_fit.standard_deviation**2)
    out["coupling_slope"] = np.float64(slope)
    out["coupling_offset"] = np.float64(offset)


def _band_profiles(
    image: np.ndarray, window: tuple[int, int, int, int], bands: list[tuple[int, int]], vertical: bool
) -> np.ndarray:
    """Profiles across consecutive bands of the good region, one pass over the bands."""
    r0, r1, c0, c1 = window
    kind = np.float64 if image.dtype.kind == "f" else np.int64
    if not bands:
        return np.zeros((0, 0), kind)
    edges = np.array([b[0] for b in bands] + [bands[-1][1]], dtype=np.int64)
    if vertical:
        profiles = np.zeros((len(bands), c1 - c0), kind)
        kernels.band_x_profiles(image, edges + r0, c0, c1, profiles)
    else:
        profiles = np.zeros((len(bands), r1 - r0), kind)
        kernels.band_y_profiles(image, edges + c0, r0, r1, profiles)
    return profiles
