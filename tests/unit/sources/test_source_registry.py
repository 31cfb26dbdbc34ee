"""Registry: one class per source type; building a source does no I/O."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from camioc.config.camera import CameraConfig
from camioc.errors import ConfigError
from camioc.sources import SOURCE_TYPES, CameraSource, create_source
from camioc.sources.bsread_source import BsreadSource
from camioc.sources.epics import EpicsSource
from camioc.sources.simulation import SimulationSource


@pytest.mark.parametrize(
    ("keys", "cls"),
    [
        ({"source_type": "simulation"}, SimulationSource),
        ({"source_type": "epics"}, EpicsSource),
        ({"source_type": "area_detector"}, EpicsSource),
        ({"source_type": "bsread", "source": "tcp://127.0.0.1:9999"}, BsreadSource),
    ],
)
def test_create_source(keys, cls):
    cfg = CameraConfig.from_dict({"name": "cam", "source": "PREFIX", **keys})
    source = create_source(cfg)
    assert type(source) is cls and isinstance(source, CameraSource)
    assert source.name == "cam"
    source.close()
    source.close()


def test_area_detector_alias_selects_the_areadetector_pvs():
    cfg = CameraConfig.from_dict({"name": "cam", "source": "P", "source_type": "area_detector"})
    source = create_source(cfg)
    assert source.names["image"] == "P:image1:ArrayData"
    assert source.names["counter"] == "P:image1:ArrayCounter_RBV"


def test_source_types():
    assert set(SOURCE_TYPES) == {"simulation", "epics", "bsread"}


def test_unknown_source_type():
    with pytest.raises(ConfigError, match="Unknown source_type 'hdf5'"):
        create_source(SimpleNamespace(source_type="hdf5", name="cam", source="x"))


def test_importing_sources_loads_neither_libca_nor_zmq():
    """pyepics and ZeroMQ are imported only when a source connects (control process stays lean)."""
    code = "import sys, camioc.sources; print('epics' in sys.modules, 'zmq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split() == ["False", "False"]
