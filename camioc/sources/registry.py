"""One registry of camera source types: ``source_type`` -> ``CameraSource`` class."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from camioc.errors import ConfigError
from camioc.sources.base import CameraSource
from camioc.sources.bsread_source import BsreadSource
from camioc.sources.epics import EpicsSource
from camioc.sources.simulation import SimulationSource

if TYPE_CHECKING:
    from camioc.config.camera import CameraConfig

__all__ = ["SOURCE_TYPES", "create_source"]

#: ``source_type`` -> source class. Importing the classes is cheap: pyepics and ZeroMQ are
#: imported only when a source connects.
SOURCE_TYPES: Mapping[str, type[CameraSource]] = MappingProxyType(
    {
        "simulation": SimulationSource,
        "epics": EpicsSource,
        "bsread": BsreadSource,
    }
)


def create_source(config: CameraConfig) -> CameraSource:
    """Build (without connecting) the source of a camera config; ``ConfigError`` if unknown."""
    try:
        cls = SOURCE_TYPES[config.source_type]
    except KeyError:
        raise ConfigError(
            f"Unknown source_type {config.source_type!r}: must be one of {', '.join(SOURCE_TYPES)}"
        ) from None
    return cls(config)
