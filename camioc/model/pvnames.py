"""How camioc's full PV names are built (shared by the IOC, generators, REST and tests).

``$(P)`` is the service prefix (``--prefix``, default ``CAMIOC:``, normally ending in ``:``).
Each block of :mod:`camioc.model.blocks` lives under one prefix:

- service: ``$(P)``                     e.g. ``CAMIOC:HEARTBEAT``
- camera:  ``$(P)<cam>:cam1:``          e.g. ``CAMIOC:simulation:cam1:Acquire``
- image:   ``$(P)<cam>:image1:``        e.g. ``CAMIOC:simulation:image1:ArrayData``
- pipeline: ``$(P)<id>:``               e.g. ``CAMIOC:simulation_sp1:CentroidX_RBV``
- its image: ``$(P)<id>:image1:``       e.g. ``CAMIOC:simulation_sp1:image1:ArrayData``

Camera and pipeline names share the ``$(P)<name>:`` level: a pipeline named like a camera would
serve the same ``image1:`` names; whichever comes second is then not served (an error is logged).
"""

from __future__ import annotations

#: Suffix of a camera's driver block (areaDetector ``R`` of the camera).
CAMERA_DRIVER = "cam1:"
#: Suffix of an image block (areaDetector NDStdArrays plugin ``R``).
IMAGE_PLUGIN = "image1:"
#: EPICS record names are at most 60 characters (dbCommon NAME is 61 bytes).
MAX_PV_NAME_LENGTH = 60


def service_prefix(prefix: str) -> str:
    return prefix


def camera_prefix(prefix: str, camera: str) -> str:
    """``$(P)<cam>:cam1:``."""
    return f"{prefix}{camera}:{CAMERA_DRIVER}"


def image_prefix(prefix: str, owner: str) -> str:
    """``$(P)<owner>:image1:`` (``owner`` is a camera name or a pipeline id)."""
    return f"{prefix}{owner}:{IMAGE_PLUGIN}"


def pipeline_prefix(prefix: str, pipeline: str) -> str:
    """``$(P)<id>:`` (``pipeline`` is a saved pipeline name or an instance id)."""
    return f"{prefix}{pipeline}:"


def service_pv(prefix: str, name: str) -> str:
    return f"{service_prefix(prefix)}{name}"


def camera_pv(prefix: str, camera: str, name: str) -> str:
    return f"{camera_prefix(prefix, camera)}{name}"


def image_pv(prefix: str, owner: str, name: str) -> str:
    return f"{image_prefix(prefix, owner)}{name}"


def pipeline_pv(prefix: str, pipeline: str, name: str) -> str:
    return f"{pipeline_prefix(prefix, pipeline)}{name}"


__all__ = [
    "CAMERA_DRIVER",
    "IMAGE_PLUGIN",
    "MAX_PV_NAME_LENGTH",
    "camera_prefix",
    "camera_pv",
    "image_prefix",
    "image_pv",
    "pipeline_prefix",
    "pipeline_pv",
    "service_prefix",
    "service_pv",
]
