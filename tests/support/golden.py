"""cam_server's golden outputs (``../shared/reference/golden``) and the parity comparison.

The golden set is read-only reference data produced by cam_server's own code: 6 frames × 14 pipeline
configs. :func:`compare_results` holds camioc's output to the tolerances of
``processing-parity.md`` §intro and returns one line per differing field (both values shown), so a
failing parity test says exactly what differs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.server import REPO_ROOT

#: ``shared/`` lies beside the clone (as CI lays it); ``CAMIOC_SHARED`` overrides it, as for the fixtures.
GOLDEN_DIR = Path(os.environ.get("CAMIOC_SHARED", REPO_ROOT.parent / "shared")) / "reference" / "golden"

#: Compared exactly (processing-parity.md §intro).
EXACT_FIELDS = frozenset(
    {
        "intensity",
        "min_value",
        "max_value",
        "x_profile",
        "y_profile",
        "gr_x_profile",
        "gr_y_profile",
        "good_region",
        "gr_intensity",
        "width",
        "height",
        "slice_amount",
        "slice_orientation",
    }
)
#: Centre of mass, rms, FWHM and axes: 1e-9 relative.
TIGHT_RTOL = 1e-9
#: Fit results, slice results and coupling: 1e-4 relative.
FIT_RTOL = 1e-4
#: The frame without a beam: its fits are not compared.
NO_BEAM_FRAME = "v5"


@dataclass(frozen=True)
class GoldenCase:
    frame: str
    config_name: str
    config: Mapping[str, Any]
    calibration: Mapping[str, Any] | None
    results: Mapping[str, Any]
    image_shape: tuple[int, int]
    image_sum: float

    @property
    def id(self) -> str:
        return f"{self.frame}-{self.config_name}"


def require_golden() -> Path:
    """The golden folder; a clear failure (never a skip) when the reference data is missing."""
    if not (GOLDEN_DIR / "golden_outputs.json").is_file():
        raise FileNotFoundError(
            f"cam_server's golden reference is missing: expected {GOLDEN_DIR}/golden_outputs.json "
            "(the read-only shared/ folder beside the repository)"
        )
    return GOLDEN_DIR


@cache
def golden_cases() -> tuple[GoldenCase, ...]:
    folder = require_golden()
    data = json.loads((folder / "golden_outputs.json").read_text())
    cases = []
    for case in data["cases"]:
        cases.append(
            GoldenCase(
                frame=case["image"],
                config_name=case["config"],
                config=data["configs"][case["config"]],
                calibration=data["calibrations"].get(case["image"]),
                results=case["results"],
                image_shape=tuple(case["image_shape"]),
                image_sum=float(case["image_sum"]),
            )
        )
    return tuple(cases)


@cache
def golden_inputs() -> Mapping[str, np.ndarray]:
    with np.load(require_golden() / "golden_inputs.npz") as npz:
        return {name: npz[name] for name in npz.files}


def frame_of(case: GoldenCase) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(image, x_axis, y_axis, background)`` of a case's input frame."""
    inputs = golden_inputs()
    return inputs[case.frame], inputs[f"{case.frame}_x"], inputs[f"{case.frame}_y"], inputs[f"bg_{case.frame}"]


def expected_value(value: Any) -> Any:
    """A golden value as numpy (``{"array", "dtype"}`` → ndarray), other values as they are."""
    if isinstance(value, dict) and "array" in value:
        return np.asarray(value["array"], dtype=value["dtype"])
    return value


def _is_fit_field(name: str) -> bool:
    return "_fit_" in name or name.startswith(("slice_", "coupling")) and name != "slice_amount"


def _tolerance(name: str) -> float | None:
    """None → exact; else the relative tolerance of the field."""
    if name in EXACT_FIELDS:
        return None
    if _is_fit_field(name):
        return FIT_RTOL
    return TIGHT_RTOL


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, np.ndarray) and value.size == 0:
        return True
    return isinstance(value, float) and math.isnan(value)


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size > 8:
            return f"array(shape={value.shape}, dtype={value.dtype}, first={value.ravel()[:4].tolist()}…)"
        return f"array({value.tolist()}, dtype={value.dtype})"
    return repr(value)


def _differs(expected: Any, actual: Any, rtol: float | None) -> str | None:
    """A reason when ``actual`` is not ``expected`` within ``rtol`` (None: exactly)."""
    if isinstance(expected, str) or isinstance(actual, str):
        return None if expected == actual else "text differs"
    exp = np.asarray(expected, dtype=np.float64)
    try:
        act = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        return f"not numeric ({type(actual).__name__})"
    if exp.shape != act.shape:
        return f"shape {act.shape} instead of {exp.shape}"
    if rtol is None:
        bad = exp != act
    else:
        scale = np.maximum(np.abs(exp), np.max(np.abs(exp), initial=0.0) if exp.ndim else 0.0)
        # arrays (fitted curves, axes): relative to the array's magnitude; scalars to the value
        bad = np.abs(act - exp) > rtol * np.where(scale > 0, scale, 1.0)
        bad |= np.isnan(act) != np.isnan(exp)
    if np.any(bad):
        worst = int(np.argmax(np.abs(act - exp).ravel())) if exp.ndim else 0
        if exp.ndim:
            return f"{int(np.count_nonzero(bad))} of {exp.size} samples differ (worst at {worst})"
        return f"relative difference {abs(float(act) - float(exp)) / max(abs(float(exp)), 1e-300):.3g}"
    return None


#: Centre of mass and rms: cam_server's estimator applied to a Gaussian fit.
MOMENT_FIELDS = frozenset({"x_center_of_mass", "x_rms", "y_center_of_mass", "y_rms"})


def compare_results(
    case: GoldenCase, output: Mapping[str, Any], *, moments_rtol: float | None = TIGHT_RTOL
) -> list[str]:
    """Every field of the golden case that camioc's ``output`` does not reproduce.

    ``moments_rtol``: tolerance of centre of mass and rms, or None to leave them out (they follow
    the fit's last digits; see ``tests/unit/processing/test_golden_parity.py``).
    """
    problems: list[str] = []
    for name, raw in case.results.items():
        if name in MOMENT_FIELDS and moments_rtol is None and raw is not None:
            continue
        expected = expected_value(raw)
        actual = output.get(name)
        if expected is None:
            if not _absent(actual):
                problems.append(f"{name}: expected None, camioc gave {_show(actual)}")
            continue
        if case.frame == NO_BEAM_FRAME and _is_fit_field(name):
            continue
        if actual is None:
            problems.append(f"{name}: missing (expected {_show(expected)})")
            continue
        rtol = moments_rtol if name in MOMENT_FIELDS else _tolerance(name)
        reason = _differs(expected, actual, rtol)
        if reason is not None:
            problems.append(f"{name}: {reason}: expected {_show(expected)}, camioc gave {_show(actual)}")
    return problems
