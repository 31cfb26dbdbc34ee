"""EPICS camera source against a real CA server (caproto test IOC) and real libca (pyepics)."""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
import pytest

from camioc.config.camera import CameraConfig
from camioc.errors import CameraOfflineError
from camioc.sources import create_source
from camioc.sources.epics import EpicsSource
from tests.support.epics_camera_ioc import frame_number, pattern

CONVENTIONS = ["areadetector", "camserver"]


def epics_source(prefix: str, convention: str, **keys) -> EpicsSource:
    cfg = CameraConfig.from_dict(
        {"name": "cam", "source": prefix, "source_type": "epics", "epics_convention": convention, **keys}
    )
    source = create_source(cfg)
    assert isinstance(source, EpicsSource)
    return source


def read_frames(source, count: int, timeout: float = 3.0):
    frames = []
    for _ in range(count):
        frame = source.read(timeout)
        assert frame is not None, f"no frame within {timeout} s"
        frames.append(frame)
    return frames


def assert_test_pattern(image: np.ndarray) -> int:
    """The image is the IOC's pattern of some frame n, in its own shape; returns n mod 65536."""
    n = frame_number(image)
    height, width = image.shape
    np.testing.assert_array_equal(image.view(np.uint16), pattern(n, width, height))
    return n


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_reads_frames(camera_ioc, convention):
    prefix = camera_ioc(convention, width=64, height=48, rate=50)
    with epics_source(prefix, convention) as source:
        source.connect(timeout=5.0)
        assert source.geometry() == (64, 48)
        frames = read_frames(source, 10)
    numbers = []
    for frame in frames:
        assert frame.image.shape == (48, 64)
        assert frame.image.dtype == np.int16  # CA SHORT as delivered (no dtype configured)
        numbers.append(assert_test_pattern(frame.image))
        assert abs(frame.timestamp - time.time()) < 10
    assert all(b > a for a, b in pairwise(numbers))
    assert all(b.timestamp > a.timestamp for a, b in pairwise(frames))
    if convention == "areadetector":  # ArrayCounter_RBV is the pulse id, paired with its image
        assert [f.pulse_id % 65536 for f in frames] == numbers
    else:
        assert all(f.pulse_id is None for f in frames)


@pytest.mark.parametrize("order", [(), ("--counter-first",)])
def test_areadetector_uint16_and_counter_pairing(camera_ioc, order):
    prefix = camera_ioc("areadetector", *order, width=40, height=30, rate=100)
    with epics_source(prefix, "areadetector", dtype="uint16") as source:
        source.connect(timeout=5.0)
        frames = read_frames(source, 30)
    for frame in frames:
        assert frame.image.dtype == np.uint16
        np.testing.assert_array_equal(frame.image, pattern(frame.pulse_id, 40, 30))
    assert any(int(f.image.max()) > 0x7FFF for f in frames)  # bits reinterpreted, not clipped
    ids = [f.pulse_id for f in frames]
    assert all(b > a for a, b in pairwise(ids))


def test_areadetector_unstamped_counter_first(camera_ioc):
    """An IOC whose counters carry their own timestamps: paired by arrival after a few frames."""
    from camioc.sources.epics import UNSTAMPED_AFTER

    prefix = camera_ioc("areadetector", "--unstamped", "--counter-first", width=40, height=30, rate=50)
    with epics_source(prefix, "areadetector", dtype="uint16") as source:
        source.connect(timeout=5.0)
        frames = read_frames(source, UNSTAMPED_AFTER + 6)
    for frame in frames[UNSTAMPED_AFTER + 1:]:
        np.testing.assert_array_equal(frame.image, pattern(frame.pulse_id, 40, 30))


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_follows_geometry_change(camera_ioc, convention):
    import epics

    prefix = camera_ioc(convention, width=64, height=48, rate=50)
    names = (f"{prefix}:cam1:SizeX", f"{prefix}:cam1:SizeY") if convention == "areadetector" else (
        f"{prefix}:WIDTH", f"{prefix}:HEIGHT")
    with epics_source(prefix, convention) as source:
        source.connect(timeout=5.0)
        assert_test_pattern(read_frames(source, 1)[0].image)
        assert epics.caput(names[0], 80, wait=True, timeout=5) == 1
        assert epics.caput(names[1], 30, wait=True, timeout=5) == 1
        deadline = time.monotonic() + 5
        shapes = []
        while not shapes or shapes[-1] != (30, 80):
            assert time.monotonic() < deadline, f"geometry change not followed: {shapes}"
            frame = read_frames(source, 1)[0]
            assert_test_pattern(frame.image)  # every frame consistent with its own geometry
            shapes.append(frame.image.shape)
        assert source.geometry() == (80, 30)
        assert_test_pattern(read_frames(source, 1)[0].image)
    assert source.frames_too_small == 0


def test_camserver_not_initialized(camera_ioc):
    prefix = camera_ioc("camserver", "--init-status", "OFFLINE")
    with epics_source(prefix, "camserver") as source:
        with pytest.raises(CameraOfflineError) as info:
            source.connect(timeout=5.0)
    assert str(info.value) == f"Camera with prefix {prefix} is not initialized - Status OFFLINE"


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_offline_prefix(pv_prefix, convention):
    prefix = f"{pv_prefix}NOBODY"
    with epics_source(prefix, convention) as source:
        t0 = time.monotonic()
        with pytest.raises(CameraOfflineError) as info:
            source.connect(timeout=0.5)
        assert time.monotonic() - t0 < 2.0
        assert source.read(0.05) is None
    assert str(info.value) == f"Camera with prefix {prefix} is offline"


def test_large_image(camera_ioc):
    """1280x960 (> pyepics' 65536-element auto-monitor limit): monitored all the same."""
    prefix = camera_ioc("areadetector", width=1280, height=960, rate=10)
    with epics_source(prefix, "areadetector", dtype="uint16") as source:
        source.connect(timeout=5.0)
        frames = read_frames(source, 3)
    for frame in frames:
        assert frame.image.shape == (960, 1280)
        np.testing.assert_array_equal(frame.image, pattern(frame.pulse_id, 1280, 960))
