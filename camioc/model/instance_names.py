"""Short, stable PV names of instances: every served PV name fits in 60 characters (issue 10).

An instance's PV name is the ``<cam>`` / ``<id>`` of :mod:`camioc.model.pvnames`. The REST id of
an instance stays what cam_server's clients expect (a saved pipeline's name, a private instance's
UUID); only the PV names use the short form. The budget is computed from the tables of
:mod:`camioc.model.blocks` (the longest suffix of any block an instance serves) and the default
prefix, not hard-coded, so a new, longer PV shortens names instead of overflowing them. It does
not depend on ``--prefix``, so a PV name stays the same when only the prefix changes (a longer
prefix than the default is warned about when names get too long).

A name that fits is its own PV name (every existing PV name stays); a longer one keeps its head
and gets ``_`` and the first 8 hex digits of its SHA-1: the same name gives the same PV name in
every run, on every host. Saved pipeline and camera names that are too long are shortened by the
same rule (not refused: cam_server configs carry such names and clients address them by REST).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from camioc.model.blocks import (
    CAMERA_PVS,
    CAMERA_SETTINGS,
    IMAGE_PVS,
    OUT_NAME_LENGTH,
    OUT_PREFIX,
    PIPELINE_ARRAY_PVS,
    PIPELINE_PVS,
    PIPELINE_SETTINGS,
)
from camioc.model.pvnames import (
    CAMERA_DRIVER,
    DEFAULT_PREFIX,
    IMAGE_PLUGIN,
    MAX_PV_NAME_LENGTH,
    PIPELINE_IMAGE_PLUGIN,
    PVA_IMAGE,
)
from camioc.model.records import PVDef

#: Hex digits of the SHA-1 a shortened name ends with.
HASH_LENGTH = 8
#: ``Out:<field>_RBV`` around the field's name part.
OUT_WRAPPING = len(OUT_PREFIX) + len("_RBV")
#: The shortest field name part an ``Out:`` readback gets, whatever the prefix.
MIN_OUT_NAME_LENGTH = 8


def _longest(specs: Iterable[PVDef]) -> int:
    return max(len(spec.name) for spec in specs)


def _image_suffix(plugin: str) -> int:
    return len(plugin) + max(_longest(IMAGE_PVS), len(PVA_IMAGE))


#: The longest PV name after ``$(P)<cam>:`` (driver block with its settings, or the image block).
CAMERA_SUFFIX_LENGTH = max(len(CAMERA_DRIVER) + _longest((*CAMERA_PVS, *CAMERA_SETTINGS.pvs())),
                           _image_suffix(IMAGE_PLUGIN))
#: The longest PV name after ``$(P)<id>:`` (results, settings, waveforms, or the image block under
#: ``image2:``, the longer of the two). ``Out:`` readbacks are cut to fit (:func:`out_name_length`).
PIPELINE_SUFFIX_LENGTH = max(_longest((*PIPELINE_PVS, *PIPELINE_ARRAY_PVS, *PIPELINE_SETTINGS.pvs())),
                             _image_suffix(IMAGE_PLUGIN), _image_suffix(PIPELINE_IMAGE_PLUGIN))
#: Characters a camera's / a pipeline's PV name may have with the default prefix.
CAMERA_NAME_LENGTH = MAX_PV_NAME_LENGTH - len(DEFAULT_PREFIX) - 1 - CAMERA_SUFFIX_LENGTH
PIPELINE_NAME_LENGTH = MAX_PV_NAME_LENGTH - len(DEFAULT_PREFIX) - 1 - PIPELINE_SUFFIX_LENGTH


def short_name(name: str, length: int) -> str:
    """``name`` if it has at most ``length`` characters, else its head + ``_`` + 8 hex of its SHA-1."""
    if len(name) <= length:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    return f"{name[:length - HASH_LENGTH - 1]}_{digest}"


def camera_pv_name(camera: str) -> str:
    """The ``<cam>`` of a camera's PVs."""
    return short_name(camera, CAMERA_NAME_LENGTH)


def pipeline_pv_name(instance_id: str) -> str:
    """The ``<id>`` of a pipeline instance's PVs (saved pipeline name or private instance UUID)."""
    return short_name(instance_id, PIPELINE_NAME_LENGTH)


def pipeline_image_plugin(pv_name: str, camera_pv_names: Iterable[str]) -> str:
    """``image1:``, or ``image2:`` when a camera has the same PV name (the camera keeps ``image1:``)."""
    return PIPELINE_IMAGE_PLUGIN if pv_name in set(camera_pv_names) else IMAGE_PLUGIN


def out_name_length(pipeline_prefix: str) -> int:
    """How long the field part of ``<pipeline_prefix>Out:<field>_RBV`` may be: what is left of
    :data:`MAX_PV_NAME_LENGTH`, at most :data:`~camioc.model.blocks.OUT_NAME_LENGTH`."""
    left = MAX_PV_NAME_LENGTH - len(pipeline_prefix) - OUT_WRAPPING
    return max(MIN_OUT_NAME_LENGTH, min(OUT_NAME_LENGTH, left))


__all__ = [
    "CAMERA_NAME_LENGTH",
    "CAMERA_SUFFIX_LENGTH",
    "HASH_LENGTH",
    "PIPELINE_NAME_LENGTH",
    "PIPELINE_SUFFIX_LENGTH",
    "camera_pv_name",
    "out_name_length",
    "pipeline_image_plugin",
    "pipeline_pv_name",
    "short_name",
]
