"""Image PVs: areaDetector order, correct data and sizes, types per dtype, and low CA latency."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import numpy as np
from ioc_support import parse_cainfo, wait_for

from camioc.model.records import image_format

IMAGE_SIGNALS = ("ArraySize0_RBV", "ArraySize1_RBV", "NDimensions_RBV", "DataType_RBV", "ColorMode_RBV",
                 "ArrayData", "UniqueId_RBV", "ArrayCounter_RBV")


def img(prefix: str, name: str, camera: str = "cam_a") -> str:
    return f"{prefix}{camera}:image1:{name}"


class EventLog:
    """Monitor events of several PVs in arrival order (one circuit: the server's posting order)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, pvname=None, value=None, **_) -> None:
        with self.lock:
            self.events.append((pvname.rsplit(":", 1)[1], value))

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.events]


async def _monitors(epics_ca, prefix: str, log: EventLog, camera: str = "cam_a"):
    pvs = []
    for signal in IMAGE_SIGNALS:
        pv = await asyncio.to_thread(epics_ca.PV, img(prefix, signal, camera), callback=log, auto_monitor=True,
                                     form="time")
        pvs.append(pv)
    for pv in pvs:
        assert await asyncio.to_thread(pv.wait_for_connection, 5), pv.pvname
    # pyepics reports a PV connected before its subscription is sent: flush, or the last
    # subscription may sit in libca's buffer and never deliver its first value.
    await asyncio.to_thread(epics_ca.ca.flush_io)
    return pvs


async def test_image_published_in_area_detector_order(ioc, service, pv_prefix, epics_ca):
    log = EventLog()
    pvs = await _monitors(epics_ca, pv_prefix, log)
    try:
        await wait_for(lambda: set(log.names()) == set(IMAGE_SIGNALS), message="initial monitor updates")
        start = len(log.events)
        image = (np.arange(40 * 30, dtype=np.uint32) * 50 % 65536).astype(np.uint16).reshape(30, 40)
        service.emit_image("cam_a", image, pulse_id=123456789012)
        await wait_for(lambda: log.names()[-1:] == ["ArrayCounter_RBV"] and len(log.events) > start,
                       message="counter update")
        order = [name for name in log.names()[start:]]
        assert order == ["ArraySize0_RBV", "ArraySize1_RBV", "DataType_RBV", "ArrayData", "UniqueId_RBV",
                         "ArrayCounter_RBV"], order
        values = dict(log.events[start:])
        assert (values["ArraySize0_RBV"], values["ArraySize1_RBV"]) == (40, 30)
        assert values["DataType_RBV"] == 3  # UInt16
        assert values["UniqueId_RBV"] == 123456789012
        assert values["ArrayCounter_RBV"] == 1
        data = np.asarray(values["ArrayData"])
        assert data.size == 1200
        assert np.array_equal(data.astype(np.int16).view(np.uint16).reshape(30, 40), image)

        # Same geometry next time: only the data, the id and the counter change.
        start = len(log.events)
        service.emit_image("cam_a", image[::-1].copy(), pulse_id=123456789013)
        await wait_for(lambda: log.names()[-1:] == ["ArrayCounter_RBV"] and len(log.events) > start + 1,
                       message="second image")
        assert log.names()[start:] == ["ArrayData", "UniqueId_RBV", "ArrayCounter_RBV"]
    finally:
        for pv in pvs:
            await asyncio.to_thread(pv.disconnect)


async def test_a_ca_client_reads_the_image_with_its_sizes(ioc, ca, service, pv_prefix, epics_ca):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 65535, size=(48, 64), dtype=np.uint16)
    service.emit_image("cam_b", image, pulse_id=7)
    await wait_for(lambda: _equals(ca, img(pv_prefix, "ArrayCounter_RBV", "cam_b"), "1"), message="image published")
    width = await asyncio.to_thread(epics_ca.caget, img(pv_prefix, "ArraySize0_RBV", "cam_b"))
    height = await asyncio.to_thread(epics_ca.caget, img(pv_prefix, "ArraySize1_RBV", "cam_b"))
    data = await asyncio.to_thread(epics_ca.caget, img(pv_prefix, "ArrayData", "cam_b"), count=width * height,
                                   timeout=5)
    assert (width, height) == (64, 48)
    assert np.array_equal(np.asarray(data).astype(np.int16).view(np.uint16).reshape(height, width), image)
    # The C caget sees the same values (first row), as a plain areaDetector client.
    result = await ca.caget("-t", "-#", "64", img(pv_prefix, "ArrayData", "cam_b"))
    first_row = [int(v) for v in result.stdout.split()[1:]]
    assert np.array_equal(np.array(first_row, dtype=np.int16).view(np.uint16), image[0])


async def _equals(ca, pv, expected) -> bool:
    return await ca.try_get(pv) == expected


IMAGE_TYPES = [("uint8", "DBF_CHAR", "UInt8"), ("float32", "DBF_FLOAT", "Float32"),
               ("float64", "DBF_DOUBLE", "Float64"), ("int32", "DBF_LONG", "Int32"), ("uint16", "DBF_SHORT", "UInt16")]


async def test_image_pv_type_follows_the_camera_dtype(ioc, ca, service, pv_prefix):
    """Another element type re-creates the image PVs (NELM and type are fixed per PV)."""
    for dtype, native, data_type in IMAGE_TYPES:
        image = (np.arange(12 * 10) % 100).astype(dtype).reshape(10, 12)
        service.emit_image("cam_b", image, pulse_id=1)
        await wait_for(lambda dt=data_type: _equals(ca, img(pv_prefix, "DataType_RBV", "cam_b"), dt),
                       message=f"DataType_RBV {data_type}")
        info = parse_cainfo(await ca.cainfo(img(pv_prefix, "ArrayData", "cam_b")))
        assert info["Native data type"] == native, dtype
        result = await ca.caget("-t", "-#", "12", img(pv_prefix, "ArrayData", "cam_b"))
        assert [float(v) for v in result.stdout.split()[1:]] == [float(v) for v in image[0]], dtype
        assert await ca.get(img(pv_prefix, "ArrayData.FTVL", "cam_b")) == image_format(dtype).ftvl


async def test_a_larger_sensor_grows_the_image_pv(ioc, ca, service, pv_prefix):
    service.emit_status("cam_b", running=True, sensor_width=4096, sensor_height=2048, width=4096, height=2048,
                        dtype="uint16")
    await wait_for(lambda: _equals(ca, img(pv_prefix, "ArrayData.NELM", "cam_b"), str(4096 * 2048)),
                   message="image PV re-created with the sensor size")
    assert await ca.get(f"{pv_prefix}cam_b:cam1:MaxSizeX_RBV") == "4096"
    assert await ca.get(img(pv_prefix, "ArrayData.NELM", "cam_a")) == str(2048 * 2048), "other camera untouched"


async def test_disabled_callbacks_publish_nothing(ioc, ca, service, pv_prefix):
    result = await ca.caput(img(pv_prefix, "EnableCallbacks"), "Disable", "-c")
    assert "Disable" in result.stdout
    service.emit_image("cam_a", np.ones((4, 4), np.uint16))
    service.emit_status("cam_a", frame_count=3)  # a later event, so the image would have been published by now
    await wait_for(lambda: _equals(ca, f"{pv_prefix}cam_a:cam1:ArrayCounter_RBV", "3"), message="status applied")
    assert await ca.get(img(pv_prefix, "ArrayCounter_RBV")) == "0"


async def test_ca_latency_stays_low_while_images_are_published(ioc, ca, service, pv_prefix, epics_ca):
    """1024 x 1024 uint16 images at ~20 Hz to a monitoring client; a caget meanwhile stays fast
    (compared with the same caget, process start included, measured without load in this run)."""
    received: list[float] = []

    def on_image(timestamp=None, **_):
        received.append(time.time() - timestamp)

    async def timed_cagets(count: int) -> list[float]:
        durations = []
        for _ in range(count):
            started = time.perf_counter()
            assert await ca.get(f"{pv_prefix}cam_a:cam1:BinX") == "1"
            durations.append(time.perf_counter() - started)
        return durations

    baseline = statistics.median(await timed_cagets(6))
    monitor = await asyncio.to_thread(epics_ca.PV, img(pv_prefix, "ArrayData"), callback=on_image,
                                      auto_monitor=True, form="time")
    assert await asyncio.to_thread(monitor.wait_for_connection, 5)
    await wait_for(lambda: received, message="initial monitor update")
    received.clear()
    frames = [np.full((1024, 1024), value, np.uint16) for value in range(4)]
    stop = asyncio.Event()

    async def produce() -> int:
        count = 0
        while not stop.is_set():
            service.emit_image("cam_a", frames[count % 4], pulse_id=count)
            count += 1
            await asyncio.sleep(0.05)
        return count

    producer = asyncio.create_task(produce())
    try:
        await wait_for(lambda: len(received) >= 3, timeout=5, message="images reach the monitor")
        loaded = await timed_cagets(12)
    finally:
        stop.set()
        published = await producer
        await asyncio.to_thread(monitor.disconnect)
    print(f"caget median {baseline * 1e3:.1f} ms idle, {statistics.median(loaded) * 1e3:.1f} ms "
          f"(max {max(loaded) * 1e3:.1f} ms) under load; image latency median "
          f"{statistics.median(received) * 1e3:.1f} ms over {len(received)} of {published} images")
    assert published >= 10
    assert statistics.median(loaded) < max(3 * baseline, baseline + 0.1), (baseline, loaded)
    assert max(loaded) < 1.0, loaded
    assert statistics.median(received) < 0.25, f"image latency {statistics.median(received):.3f} s"
