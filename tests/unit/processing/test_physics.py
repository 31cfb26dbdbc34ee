"""What a beam physicist expects from the default function, on beams of known parameters.

The estimators are cam_server's (processing-parity.md); the expectations below are what is
physically true of them, derived from their formulas, not what camioc happens to output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from camioc.processing import ImagePipeline

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))
#: The fraction of a Gaussian beyond +-5 sigma: cam_server zeroes it after normalising by the total
#: (parity section 1), so the centre of mass is pulled towards the axis origin by that fraction.
TAIL_BEYOND_5_SIGMA = math.erfc(5 / math.sqrt(2))


def analyse(beam: Any, config: dict[str, Any]) -> dict[str, Any]:
    out = ImagePipeline(config).process(beam.image, 0, 0.0, beam.x_axis, beam.y_axis)
    assert out is not None
    return out


@pytest.mark.parametrize("calibrated", [False, True])
def test_centroid_rms_fwhm_and_fit_of_a_clean_beam(beam_factory: Any, calibrated: bool) -> None:
    beam = beam_factory(300, 400, center=(0.4, 0.55), sigma=(18.0, 9.0), noise=None, dtype=np.float64,
                        calibrated=calibrated)
    out = analyse(beam, {})
    for name, axis, centre_px, sigma_px in (("x", beam.x_axis, 160.0, 18.0), ("y", beam.y_axis, 165.0, 9.0)):
        ax = axis.astype(np.float64)
        centre = float(np.interp(centre_px, np.arange(ax.size), ax))
        sigma = sigma_px * abs(ax[-1] - ax[0]) / (ax.size - 1)
        assert out[f"{name}_fit_mean"] == pytest.approx(centre, abs=1e-6 * sigma)
        assert out[f"{name}_fit_standard_deviation"] == pytest.approx(sigma, rel=1e-6)
        # com = centre * (1 - mass of the zeroed samples): pulled towards the axis origin by the beam
        # fraction beyond the window; the zeroed samples start between 5 sigma and 5 sigma + 1 pixel
        pull = (centre - out[f"{name}_center_of_mass"]) * math.copysign(1.0, centre)
        least, most = math.erfc((5 + 1 / sigma_px) / math.sqrt(2)), TAIL_BEYOND_5_SIGMA
        assert abs(centre) * least - 1e-6 * sigma <= pull <= abs(centre) * most + 1e-6 * sigma
        assert out[f"{name}_rms"] == pytest.approx(sigma, rel=1e-4)
        assert out[f"{name}_fwhm"] == pytest.approx(FWHM_PER_SIGMA * sigma, rel=5e-3)
        assert out[f"{name}_fit_offset"] == pytest.approx(100.0 * (300 if name == "x" else 400), rel=1e-6)


def test_centroid_ignores_the_pedestal_and_far_noise(beam_factory: Any) -> None:
    """Pedestal subtracted by the fit offset, samples beyond 5 sigma ignored: no pull to the centre."""
    beam = beam_factory(256, 512, center=(0.2, 0.5), sigma=(10.0, 10.0), pedestal=400.0, amplitude=2000.0, seed=4)
    out = analyse(beam, {})
    assert out["x_center_of_mass"] == pytest.approx(0.2 * 512, abs=0.1)
    assert out["x_rms"] == pytest.approx(10.0, rel=0.03)
    naive = float(np.average(np.arange(512), weights=beam.image.sum(axis=0)))
    assert naive > 180  # an unweighted centroid would be dragged far towards the image centre


@pytest.mark.parametrize("orientation", ["vertical", "horizontal"])
def test_slices_follow_a_tilted_beam_and_coupling_is_the_covariance(beam_factory: Any, orientation: str) -> None:
    rho, sx, sy = 0.6, 30.0, 20.0
    beam = beam_factory(400, 500, sigma=(sx, sy), tilt=rho, noise=None, dtype=np.float64)
    config = {"image_good_region": {"threshold": 0.1, "gfscale": 2.0},
              "image_slices": {"number_of_slices": 7, "scale": 3.0, "orientation": orientation}}
    out = analyse(beam, config)
    x0, y0 = 250.0, 200.0
    assert out["slice_amount"] == 7 and out["slice_orientation"] == orientation
    along_sigma = out["gr_y_fit_standard_deviation" if orientation == "vertical" else "gr_x_fit_standard_deviation"]
    # a slice is 2h pixels, h the whole pixels between the mean and the mean + half a slice (scale sigma / n)
    half = 3.0 * along_sigma / 7 / 2
    assert out["slice_length"] in {2.0 * max(math.floor(half), 1), 2.0 * max(math.ceil(half), 1)}
    for k in range(7):
        cx, cy = out[f"slice_{k}_center_x"], out[f"slice_{k}_center_y"]
        assert not math.isnan(cx)
        if orientation == "vertical":  # x centre of a row band: x0 + rho sx/sy (y - y0)
            assert cx == pytest.approx(x0 + rho * sx / sy * (cy - y0), abs=0.05 * sx)
            assert out[f"slice_{k}_standard_deviation"] == pytest.approx(sx * math.sqrt(1 - rho**2), rel=0.05)
        else:
            assert cy == pytest.approx(y0 + rho * sy / sx * (cx - x0), abs=0.05 * sy)
    middle = out["slice_3_center_y" if orientation == "vertical" else "slice_3_center_x"]
    assert middle == pytest.approx(y0 if orientation == "vertical" else x0, abs=1.0)
    # coupling from the x-slices whatever the orientation: their centres follow y0 + rho sy/sx (x - x0), and
    # slope * gr_x_sigma**2 = rho sy/sx * sx**2 = rho sx sy, the x-y covariance
    assert out["coupling_slope"] == pytest.approx(rho * sy / sx, rel=0.05)
    assert out["coupling"] == pytest.approx(out["coupling_slope"] * out["gr_x_fit_standard_deviation"] ** 2,
                                            rel=1e-12)
    assert out["coupling"] == pytest.approx(rho * sx * sy, rel=0.05)


def test_good_region_surrounds_the_beam(beam_factory: Any) -> None:
    beam = beam_factory(300, 400, sigma=(20.0, 10.0), noise=None)
    out = analyse(beam, {"image_good_region": {"threshold": 0.3, "gfscale": 1.8}})
    xs, ys, xe, ye = out["good_region"]
    # from the maximum to the first pixel below 30 % on each side (|d| just beyond sigma sqrt(2 ln(1/0.3))),
    # widened by 1.8
    half_width = 20.0 * math.sqrt(2 * math.log(1 / 0.3)) * 1.8
    assert (xs + xe) / 2 == pytest.approx(200, abs=1) and (ys + ye) / 2 == pytest.approx(150, abs=1)
    assert (xe - xs) / 2 == pytest.approx(half_width, rel=0.05)
    # the crop ends before good_region's end index (cam_server slices [start:end])
    assert out["gr_x_profile"].size == xe - xs and out["gr_y_profile"].size == ye - ys
    assert out["gr_intensity"] == beam.image[ys:ye, xs:xe].astype(np.int64).sum()
    np.testing.assert_array_equal(out["gr_x_axis"], beam.x_axis[xs:xe])
    assert out["gr_x_fit_mean"] == pytest.approx(200, abs=0.05)


def test_beam_cut_by_the_edge_has_an_extrapolated_fwhm_and_a_good_region_to_the_edge(beam_factory: Any) -> None:
    """Centre 5 pixels inside the right edge, sigma 15: the right flank never falls to half height."""
    centre, sigma = 195.0, 15.0
    beam = beam_factory(100, 200, center=(centre / 200, 0.5), sigma=(sigma, 8.0), noise=None, dtype=np.float64)
    out = analyse(beam, {"image_good_region": {}})
    # FWHM: the left crossing interpolated on the flank (at centre - FWHM/2), the right one extrapolated
    # from the edge along the line through the last two samples. The x profile is an affine image of
    # g(i) = exp(-(i - centre)**2 / (2 sigma**2)) (pedestal + row sums), which leaves both crossings unchanged.
    g = np.exp(-((np.arange(200) - centre) ** 2) / (2 * sigma**2))
    level = g.min() + 0.5 * (g.max() - g.min())
    right = 199 + (level - g[199]) * (198 - 199) / (g[198] - g[199])
    left = centre - FWHM_PER_SIGMA * sigma / 2
    assert right > centre + FWHM_PER_SIGMA * sigma / 2 > 199  # beyond the edge, beyond the true crossing
    assert out["x_fwhm"] == pytest.approx(right - left, abs=0.1)
    assert out["x_fwhm"] > FWHM_PER_SIGMA * sigma  # the flat top at the edge overestimates the width
    assert out["y_fwhm"] == pytest.approx(FWHM_PER_SIGMA * 8.0, rel=5e-3)
    # good region: the right side never drops and keeps the maximum's index, the widening runs into the
    # edge, so the region ends at the last index and the crop (exclusive end) leaves the last column out
    xs, _, xe, _ = out["good_region"]
    width = math.ceil(sigma * math.sqrt(2 * math.log(1 / 0.3)))  # maximum to the first pixel below 30 %, left
    assert xe == 199
    assert xs == int(centre - width - (width * 1.8 - width) / 2)
    np.testing.assert_array_equal(out["gr_x_axis"], beam.x_axis[xs:199])
