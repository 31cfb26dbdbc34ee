"""cam_server's default pipeline function (``cam_server.pipeline.data_processing.processor``).

User functions often post-process the default results: they call
``processor.process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata)`` on the
(pre-processed) image they were given and add their own channels to its dict. This delegates to
camioc's default function (:func:`camioc.processing.default.process_image`), so the dict holds
the same fields and numbers as a camioc ``processing`` pipeline without a ``function``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from camioc.processing import default

__all__ = ["process_image"]

#: Runtime entries of ``parameters`` that are data, not configuration (the passive background
#: image): left out of the typed view and of ``processing_parameters``, as the pipeline does.
_DATA_KEYS = frozenset({"background_data"})


def process_image(  # noqa: PLR0913
    image: np.ndarray,
    pulse_id: int,
    timestamp: float,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    parameters: Mapping[str, Any] | None,
    bsdata: Any = None,
) -> dict[str, Any]:
    """The default function's ordered result dict for an already pre-processed image.

    ``parameters`` is the dict a user function receives (the pipeline config plus runtime
    fields): ``image_good_region``, ``image_slices`` and ``fw_threshold`` select the optional
    outputs, as in the pipeline. The dict also carries ``processing_parameters`` (the JSON of
    ``parameters``, right after ``height``, where cam_server's messages have it), so a user
    function may return it as it is.
    """
    config = {k: v for k, v in (parameters or {}).items() if k not in _DATA_KEYS}
    result = default.process_image(image, pulse_id, timestamp, x_axis, y_axis, config, bsdata)
    out: dict[str, Any] = {}
    for key, value in result.items():
        out[key] = value
        if key == "height":
            out["processing_parameters"] = json.dumps(config, default=_json_value)
    out.setdefault("processing_parameters", json.dumps(config, default=_json_value))
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
