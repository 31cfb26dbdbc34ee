"""Camera sources (simulation, EPICS, bsread) and the camera transforms.

See ``base`` for the contract, ``registry`` to build a source from a camera config and
``transform`` for binning/mirror/rotate/ROI and the x/y axes.
"""

from camioc.sources.base import CameraSource, Frame
from camioc.sources.registry import SOURCE_TYPES, create_source
from camioc.sources.transform import camera_axes, transform_image, transformed_shape

__all__ = [
    "SOURCE_TYPES",
    "CameraSource",
    "Frame",
    "camera_axes",
    "create_source",
    "transform_image",
    "transformed_shape",
]
