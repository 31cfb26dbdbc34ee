"""Typed camera and pipeline configuration (cam_server's keys, defaults and messages), the config
file store and name validation.

``config/`` imports neither caproto nor aiohttp; every other layer reads configs through the typed
models built here once, at load time.
"""

from camioc.config.camera import (
    CAMERA_SOURCE_TYPES,
    CameraCalibration,
    CameraConfig,
    camera_aliases,
    camera_groups,
)
from camioc.config.names import validate_name
from camioc.config.pipeline import (
    PIPELINE_TYPES,
    ImageGoodRegion,
    ImageSlices,
    PipelineConfig,
    Rotation,
    merge_update,
    pipeline_groups,
)
from camioc.config.store import ConfigLayout, ConfigStore

__all__ = [
    "CAMERA_SOURCE_TYPES",
    "PIPELINE_TYPES",
    "CameraCalibration",
    "CameraConfig",
    "ConfigLayout",
    "ConfigStore",
    "ImageGoodRegion",
    "ImageSlices",
    "PipelineConfig",
    "Rotation",
    "camera_aliases",
    "camera_groups",
    "merge_update",
    "pipeline_groups",
    "validate_name",
]
