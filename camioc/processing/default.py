"""cam_server's default pipeline function: profiles, fits, moments, good region, slices.

Output names, types and numbers follow cam_server (compat §2.3, processing-parity.md), checked
field by field against cam_server's own outputs (``tests/unit/processing/test_golden_parity.py``):

* Profiles of integer images are exact int64 sums; of float images float64 sums (NaN propagates,
  as ``sum`` does); ``min_value``/``max_value`` skip NaN and keep the image dtype.
* FWHM (and ``*_fw`` at ``fw_threshold``): :func:`kernels.full_width` — from the maximum to the
  first sample below the level on each side (the edge sample when a side never drops), crossing
  by the straight line through that sample and its inner neighbour; NaN for a flat profile.
* Centre of mass and rms (parity §1): ``profile - fit_offset`` normalised by its sum over all
  samples, samples beyond 5 fit sigmas zeroed, no renormalisation (:func:`kernels.com_rms`).
* Good region (parity §2): :func:`regions.good_region_bounds`; the crop, the ``gr_`` axes and
  profiles use an exclusive end; an empty region leaves every ``gr_``/slice field ``None``.
* Slices (parity §3): an even count becomes odd; x-slices (column bands) and y-slices (row bands)
  are both computed, the orientation picks the output (``vertical`` → row bands), an x-slice
  failure leaves all slice fields ``None``, and the coupling is always the x-slices' line slope
  times the good-region x sigma squared. Fields that cam_server leaves ``None`` are ``None`` here
  (the bsread sender then sends them as empty values).

The Gaussian fits are MINPACK's Levenberg-Marquardt path (see :mod:`camioc.processing.fitting`);
they agree with cam_server's ``curve_fit`` results to about 1e-9..1e-7 relative on beam profiles
(the golden set), which is as close as scipy's own ``curve_fit`` re-run here gets to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from camioc.processing import kernels, regions
from camioc.processing.fitting import GaussianFit, fit_gaussian, gaussian, linear_fit
from camioc.processing.parameters import (
    GoodRegionParameters,
    PipelineSettings,
    ProcessingParameters,
    SliceParameters,
)
from camioc.processing.preprocess import Frame, Profiles, check_frame, image_profiles, region_profiles

__all__ = ["analyse_frame", "process_image"]


def process_image(
    image: np.ndarray,
    pulse_id: int,
    timestamp: float,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    parameters: ProcessingParameters | PipelineSettings | Mapping[str, Any],
    bsdata: Any = None,
) -> dict[str, Any]:
    """cam_server's ``process_image`` signature, on an already pre-processed image.

    ``parameters`` is usually the dict a user function got and hands on (cam_server's helper
    API), read with :meth:`ProcessingParameters.from_config`; a typed config or a ready view is
    used as it is.
    """
    del pulse_id, bsdata  # part of the function signature; the default function does not use them
    params = parameters if isinstance(parameters, ProcessingParameters) else ProcessingParameters.view(parameters)
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
    """Good-region (and slice) outputs; every one of them ``None`` when the region is empty."""
    for name in _GOOD_REGION_FIELDS:
        out[name] = None
    if slices is not None:
        _init_slice_outputs(out, slices)
    xs, xe = regions.good_region_bounds(profiles.x, region.threshold, region.gfscale)
    ys, ye = regions.good_region_bounds(profiles.y, region.threshold, region.gfscale)
    if xe <= xs or ye <= ys:
        return  # cam_server's fit of an empty profile raises: the whole section stays None
    gr = region_profiles(image, ys, ye, xs, xe)
    gr_x_axis = x_axis[xs:xe]
    gr_y_axis = y_axis[ys:ye]
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
        window = (ys, ye, xs, xe)
        _slice_outputs(out, image, window, gr_x_axis, gr_y_axis, gr_x_fit, gr_y_fit, slices)


_GOOD_REGION_FIELDS = (
    "good_region",
    "gr_x_axis",
    "gr_y_axis",
    "gr_x_profile",
    "gr_y_profile",
    "gr_x_fit_gauss_function",
    "gr_x_fit_offset",
    "gr_x_fit_amplitude",
    "gr_x_fit_mean",
    "gr_x_fit_standard_deviation",
    "gr_y_fit_gauss_function",
    "gr_y_fit_offset",
    "gr_y_fit_amplitude",
    "gr_y_fit_mean",
    "gr_y_fit_standard_deviation",
    "gr_intensity",
)
_SLICE_FIELDS = ("center_x", "center_y", "standard_deviation", "intensity")


def _init_slice_outputs(out: dict[str, Any], slices: SliceParameters) -> None:
    """The slice fields as cam_server starts them: orientation and amount set, the rest None."""
    out["slice_orientation"] = slices.orientation
    out["slice_amount"] = np.int64(slices.count)
    out["slice_length"] = None
    for k in range(slices.count):
        for field in _SLICE_FIELDS:
            out[f"slice_{k}_{field}"] = None
    out["coupling"] = None
    out["coupling_slope"] = None
    out["coupling_offset"] = None


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
    """cam_server's slices (processing-parity.md §3).

    Both the x-slices (column bands along the good region's x axis) and the y-slices (row bands)
    are computed; the orientation picks which are output (``vertical`` → y-slices), the coupling
    always comes from the x-slices, and an x-slice failure (the middle slice does not fit) leaves
    every slice field None.
    """
    n = slices.count
    x_bounds, x_length = regions.slice_boundaries(
        gr_x_axis, gr_x_fit.mean, gr_x_fit.standard_deviation, slices.scale, n
    )
    if x_bounds is None:
        return
    x_half = (x_bounds[1] - x_bounds[0]) // 2
    x_slices = regions.band_results(image, window, x_bounds, x_half, False, gr_y_axis, gr_x_axis)
    if slices.orientation == "vertical":
        y_bounds, y_length = regions.slice_boundaries(
            gr_y_axis, gr_y_fit.mean, gr_y_fit.standard_deviation, slices.scale, n
        )
        chosen: list[regions.SliceResult] = []
        if y_bounds is not None:
            y_half = (y_bounds[1] - y_bounds[0]) // 2
            chosen = regions.band_results(image, window, y_bounds, y_half, True, gr_x_axis, gr_y_axis)
        slice_length = y_length
    else:
        chosen, slice_length = x_slices, x_length
    out["slice_length"] = None if slice_length is None else np.float64(slice_length)
    for k, result in enumerate(chosen[:n]):
        out[f"slice_{k}_center_x"] = np.float64(result.center_x)
        out[f"slice_{k}_center_y"] = np.float64(result.center_y)
        out[f"slice_{k}_standard_deviation"] = np.float64(result.standard_deviation)
        out[f"slice_{k}_intensity"] = np.float64(result.intensity)
    if len(x_slices) >= 2:
        slope, offset = linear_fit(
            np.array([r.center_x for r in x_slices]), np.array([r.center_y for r in x_slices])
        )
        out["coupling"] = np.float64(slope * gr_x_fit.standard_deviation**2)
        out["coupling_slope"] = np.float64(slope)
        out["coupling_offset"] = np.float64(offset)
