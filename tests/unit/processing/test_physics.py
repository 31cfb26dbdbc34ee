"""What a beam physicist expects from the default function, on beams of known parameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from camioc.processing import ImagePipeline

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


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
        assert out[f"{name}_center_of_mass"] == pytest.approx(centre, abs=1e-6 * sigma)
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
    assert out["slice_length"] == pytest.approx(round(3.0 * along_sigma / 7), abs=0)
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
    assert out["coupling"] == pytest.approx(rho * sx * sy, rel=0.05)


def test_good_region_surrounds_the_beam(beam_factory: Any) -> None:
    beam = beam_factory(300, 400, sigma=(20.0, 10.0), noise=None)
    out = analyse(beam, {"image_good_region": {"threshold": 0.3, "gfscale": 1.8}})
    xs, ys, xe, ye = out["good_region"]
    half_width = 20.0 * math.sqrt(2 * math.log(1 / 0.3)) * 1.8
    assert (xs + xe) / 2 == pytest.approx(200, abs=1) and (ys + ye) / 2 == pytest.approx(150, abs=1)
    assert (xe - xs) / 2 == pytest.approx(half_width, rel=0.05)
    assert out["gr_intensity"] == beam.image[ys : ye + 1, xs : xe + 1].astype(np.int64).sum()
    assert out["gr_x_fit_mean"] == pytest.approx(200, abs=0.05)


def test_beam_cut_by_the_edge_has_no_fwhm_but_a_good_region_to_the_edge(beam_factory: Any) -> None:
    beam = beam_factory(100, 200, center=(1.0, 0.5), sigma=(15.0, 8.0), noise=None)
    out = analyse(beam, {"image_good_region": {}})
    assert out["x_fwhm"] == 0.0 and out["y_fwhm"] > 0
    assert out["good_region"][2] == 199
