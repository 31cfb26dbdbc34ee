"""EPICS source frame assembly without CA: the pyepics callbacks are called directly.

Covers reshaping, size checks, dtype handling and the areaDetector ArrayCounter/ArrayData pairing
in every arrival order (the integration tests run the same code against a real CA server).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from camioc.config.camera import CameraConfig
from camioc.sources import epics as epics_source
from camioc.sources.epics import EpicsSource

W, H = 6, 4


def source(convention="areadetector", **keys) -> EpicsSource:
    cfg = CameraConfig.from_dict(
        {"name": "cam", "source": "P", "source_type": "epics", "epics_convention": convention, **keys}
    )
    src = EpicsSource(cfg)
    src._on_width(value=W)
    src._on_height(value=H)
    return src


def flat(n: int, size: int = W * H) -> np.ndarray:
    return (np.arange(size) + 100 * n).astype(np.int16)


def image(src: EpicsSource, n: int, sec: int, size: int = W * H) -> None:
    src._on_image(value=flat(n, size), timestamp=sec + 0.5, posixseconds=sec, nanoseconds=500)


def counter(src: EpicsSource, n: int, sec: int) -> None:
    src._on_counter(value=n, posixseconds=sec, nanoseconds=500)


def pulse_ids(src: EpicsSource, count: int, timeout: float = 0.5, skip: int = 0) -> list[int | None]:
    frames = [src.read(timeout) for _ in range(count)]
    assert all(f is not None for f in frames)
    for f in frames[skip:]:  # the image carries its frame number: check it is paired with it
        assert f.pulse_id is None or f.image[0, 0] == 100 * f.pulse_id
    return [f.pulse_id for f in frames]


def test_camserver_reshape_truncate_and_drop():
    src = source("camserver")
    image(src, 1, 10)
    image(src, 2, 11, size=W * H + 5)  # longer: truncated
    image(src, 3, 12, size=W * H - 1)  # shorter: dropped
    frames = [src.read(0.1) for _ in range(3)]
    assert frames[2] is None
    assert [f.image.shape for f in frames[:2]] == [(H, W), (H, W)]
    np.testing.assert_array_equal(frames[0].image.ravel(), flat(1))
    assert frames[0].timestamp == 10.5 and frames[0].pulse_id is None
    assert src.frames_too_small == 1


def test_geometry_follows_size_monitors():
    src = source("camserver")
    src._on_width(value=3)
    src._on_height(value=8)
    assert src.geometry() == (3, 8)
    image(src, 1, 10)
    assert src.read(0.1).image.shape == (8, 3)


def test_dtype_reinterprets_or_casts():
    src = source("camserver", dtype="uint16")
    src._on_image(value=np.array([-1] * (W * H), np.int16), timestamp=1.0)
    frame = src.read(0.1)
    assert frame.image.dtype == np.uint16 and frame.image[0, 0] == 0xFFFF
    src = source("camserver", dtype="float32")
    src._on_image(value=np.full(W * H, 7, np.int16), timestamp=1.0)
    frame = src.read(0.1)
    assert frame.image.dtype == np.float32 and frame.image[0, 0] == 7.0


def test_queue_drops_oldest():
    src = source("camserver")
    for n in range(epics_source.QUEUE_SIZE + 3):
        image(src, n, 10 + n)
    frames = [src.read(0) for _ in range(epics_source.QUEUE_SIZE + 1)]
    assert frames[-1] is None
    assert frames[0].image[0, 0] == 100 * 3  # three oldest dropped
    assert src._queue.dropped == 3


def test_counter_before_image_same_timestamp():
    src = source()
    for n in range(1, 5):
        counter(src, n, 10 + n)
        image(src, n, 10 + n)
    assert pulse_ids(src, 4) == [1, 2, 3, 4]


def test_counter_after_image_same_timestamp():
    src = source()
    for n in range(1, 5):
        image(src, n, 10 + n)
        counter(src, n, 10 + n)
    assert pulse_ids(src, 4) == [1, 2, 3, 4]


def test_lost_image_monitor_does_not_shift_pairing():
    src = source()
    image(src, 1, 11)
    counter(src, 1, 11)
    counter(src, 2, 12)  # frame 2's image was collapsed away by CA flow control
    image(src, 3, 13)
    counter(src, 3, 13)
    assert pulse_ids(src, 2) == [1, 3]


def test_lost_counter_is_estimated_as_next_number():
    src = source()
    image(src, 1, 11)
    counter(src, 1, 11)
    image(src, 2, 12)  # its counter never comes
    image(src, 3, 13)
    counter(src, 3, 13)
    assert pulse_ids(src, 3) == [1, 2, 3]


def test_pending_frame_is_released_after_the_hold_time():
    src = source()
    counter(src, 1, 11)
    image(src, 1, 11)
    assert src.read(0.1).pulse_id == 1
    image(src, 2, 12)  # counter missing and no further image
    t0 = time.monotonic()
    frame = src.read(1.0)
    assert frame is not None and frame.pulse_id == 2
    assert time.monotonic() - t0 == pytest.approx(epics_source.PAIRING_HOLD, abs=0.05)


def test_unstamped_ioc_pairs_by_arrival():
    """Counters with their own timestamps: after UNSTAMPED_AFTER unmatched frames, a frame takes the
    latest counter (one late counter does not decide it)."""
    from camioc.sources.epics import PAIRING_HOLD, UNSTAMPED_AFTER

    src = source()
    ids = []
    for n in range(1, UNSTAMPED_AFTER + 4):
        src._on_counter(value=n, posixseconds=100 + n, nanoseconds=1)
        image(src, n, 10 + n)
        ids += pulse_ids(src, 1, timeout=PAIRING_HOLD + 0.5, skip=1 if n <= UNSTAMPED_AFTER else 0)
    assert ids[UNSTAMPED_AFTER:] == [UNSTAMPED_AFTER + 1, UNSTAMPED_AFTER + 2, UNSTAMPED_AFTER + 3]


def test_close_wakes_and_ends_reads():
    src = source()
    src.close()
    t0 = time.monotonic()
    assert src.read(1.0) is None
    assert time.monotonic() - t0 < 0.2
    src.close()
