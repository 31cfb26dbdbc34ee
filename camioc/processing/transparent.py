"""cam_server's ``transparent`` function: the pre-processed frame, unanalysed.

Outputs the six camera-stream fields (``image, timestamp, width, height, x_axis, y_axis``); the
pipeline adds ``processing_parameters``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camioc.processing.preprocess import Frame, check_frame

__all__ = ["frame_outputs", "process_image"]


def process_image(
    image: np.ndarray,
    pulse_id: int,
    timestamp: float,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    parameters: Any = None,
    bsdata: Any = None,
) -> dict[str, Any]:
    """cam_server's ``process_image`` signature."""
    del pulse_id, parameters, bsdata  # part of the signature only
    img, xa, ya = check_frame(image, x_axis, y_axis)
    return frame_outputs(Frame(img, xa, ya), timestamp)


def frame_outputs(frame: Frame, timestamp: float) -> dict[str, Any]:
    """The camera fields of a pre-processed frame."""
    return {
        "x_axis": frame.x_axis,
        "y_axis": frame.y_axis,
        "image": frame.image,
        "width": np.int64(frame.image.shape[1]),
        "height": np.int64(frame.image.shape[0]),
        "timestamp": np.float64(timestamp),
    }
