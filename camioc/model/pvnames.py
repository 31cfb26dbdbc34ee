"""How camioc's full PV names are built (shared by the IOC, generators, REST and tests).

``$(P)`` is the service prefix (``--prefix``, default ``CAMIOC:``, normally ending in ``:``).
Each block of :mod:`camioc.model.blocks` lives under one prefix:

- service: ``$(P)``                     e.g. ``CAMIOC:HEARTBEAT``
- camera:  ``$(P)<cam>:cam1:``          e.g. ``CAMIOC:simulation:cam1:Acquire``
- image:   ``$(P)<cam>:image1:``        e.g. ``CAMIOC:simulation:image1:ArrayData``
- pipeline: ``$(P)<id>:``               e.g. ``CAMIOC:simulation_sp1:CentroidX_RBV``
- its image: ``$(P)<id>:image1:``       e.g. ``CAMIOC:simulation_sp1:image1:ArrayData``
- PV Access: every block's PVs, and ``<image prefix>Pva1:Image`` (NTNDArray)

``<cam>`` and ``<id>`` are the instance's *PV name* (:mod:`camioc.model.instance_names`): the
camera name or pipeline id itself when the longest PV name of its blocks fits in
:data:`MAX_PV_NAME_LENGTH` with the default prefix, else a stable short form (its head, ``_``
and 8 hex digits of its SHA-1), e.g. a private instance
``8c6a5f0e-5b1c-4d3e-9f00-123456789abc`` -> ``8c6a5f0e-5b1c-_e7756b9f``.

Camera and pipeline names share the ``$(P)<name>:`` level. A pipeline whose PV name is a configured
camera's (cam_server sites name a pipeline after its camera) keeps ``$(P)<name>:`` (no camera PV
is directly under it: they are under ``cam1:``) but its image block is ``$(P)<name>:image2:``
(:data:`PIPELINE_IMAGE_PLUGIN`), so both images are served. The rule is decided when the
pipeline's PVs are created: a camera configured later under the name of a running pipeline is
served once that pipeline's PVs are re-created (stop and start it); until then the clash is logged.
"""

from __future__ import annotations

#: Suffix of a camera's driver block (areaDetector ``R`` of the camera).
CAMERA_DRIVER = "cam1:"
#: Suffix of an image block (areaDetector NDStdArrays plugin ``R``).
IMAGE_PLUGIN = "image1:"
#: Image block of a pipeline named like a camera (the camera keeps ``image1:``).
PIPELINE_IMAGE_PLUGIN = "image2:"
#: The NTNDArray of an image block (areaDetector NDPluginPva ``Pva1:Image``).
PVA_IMAGE = "Pva1:Image"
#: The default ``$(P)`` (``--prefix``): PV names are budgeted for it (a longer prefix is warned about).
DEFAULT_PREFIX = "CAMIOC:"
#: EPICS record names are at most 60 characters (dbCommon NAME is 61 bytes).
MAX_PV_NAME_LENGTH = 60


def service_prefix(prefix: str) -> str:
    return prefix


def camera_prefix(prefix: str, camera: str) -> str:
    """``$(P)<cam>:cam1:``."""
    return f"{prefix}{camera}:{CAMERA_DRIVER}"


def image_prefix(prefix: str, owner: str, plugin: str = IMAGE_PLUGIN) -> str:
    """``$(P)<owner>:image1:`` (``owner`` is a camera's or a pipeline's PV name; ``plugin`` is
    :data:`PIPELINE_IMAGE_PLUGIN` for a pipeline named like a camera)."""
    return f"{prefix}{owner}:{plugin}"


def pipeline_prefix(prefix: str, pipeline: str) -> str:
    """``$(P)<id>:`` (``pipeline`` is a saved pipeline name or an instance id)."""
    return f"{prefix}{pipeline}:"


def service_pv(prefix: str, name: str) -> str:
    return f"{service_prefix(prefix)}{name}"


def camera_pv(prefix: str, camera: str, name: str) -> str:
    return f"{camera_prefix(prefix, camera)}{name}"


def image_pv(prefix: str, owner: str, name: str, plugin: str = IMAGE_PLUGIN) -> str:
    return f"{image_prefix(prefix, owner, plugin)}{name}"


def pipeline_pv(prefix: str, pipeline: str, name: str) -> str:
    return f"{pipeline_prefix(prefix, pipeline)}{name}"


__all__ = [
    "CAMERA_DRIVER",
    "DEFAULT_PREFIX",
    "IMAGE_PLUGIN",
    "MAX_PV_NAME_LENGTH",
    "PIPELINE_IMAGE_PLUGIN",
    "PVA_IMAGE",
    "camera_prefix",
    "camera_pv",
    "image_prefix",
    "image_pv",
    "pipeline_prefix",
    "pipeline_pv",
    "service_prefix",
    "service_pv",
]
