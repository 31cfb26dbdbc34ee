"""The log rings and RestSite start/stop."""

from __future__ import annotations

import asyncio
import logging
import threading

import aiohttp
import pytest

from camioc.logbuffer import LogBuffer, install_log_buffer, instance_key
from camioc.rest.camera_api import create_camera_app
from camioc.rest.server import RestSite
from tests.unit.rest.fakes import VERSION, FakeCameras


def make_logger(name: str, buffer: LogBuffer) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers = [buffer]
    return logger


def test_rings_are_bounded_and_split_per_instance() -> None:
    buffer = LogBuffer(capacity=5, instance_capacity=3)
    camera = make_logger("camioc.camera.cam.1", buffer)
    pipeline = make_logger("camioc.pipeline.cam.1", buffer)
    other = make_logger("camioc.core.test", buffer)
    for i in range(4):
        camera.info("camera %d", i)
    pipeline.warning("pipeline")
    other.error("other")
    rows = buffer.records()
    assert len(rows) == 5
    assert [row[3] for row in rows] == ["camera 1", "camera 2", "camera 3", "pipeline", "other"]
    assert rows[-1][1:] == ["camioc.core.test", "ERROR", "other"]
    assert [row[3] for row in buffer.instance_records("camera", "cam.1")] == ["camera 1", "camera 2", "camera 3"]
    assert [row[3] for row in buffer.instance_records("pipeline", "cam.1")] == ["pipeline"]
    assert buffer.instance_records("camera", "unknown") == []
    assert buffer.instance_names("camera") == ["cam.1"]
    text = LogBuffer.as_text(buffer.instance_records("pipeline", "cam.1"))
    assert text.endswith(" - camioc.pipeline.cam.1 - WARNING - pipeline") and "\n" not in text


def test_exceptions_are_kept_with_traceback() -> None:
    buffer = LogBuffer()
    logger = make_logger("camioc.camera.exc", buffer)
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed %s", "here")
    message = buffer.records()[0][3]
    assert message.startswith("failed here\nTraceback") and "ValueError: bad" in message


def test_number_of_instances_is_bounded() -> None:
    buffer = LogBuffer(max_instances=3)
    for i in range(5):
        make_logger(f"camioc.pipeline.p{i}", buffer).info("x")
    make_logger("camioc.pipeline.p2", buffer).info("again")  # p2 becomes most recent
    make_logger("camioc.pipeline.p5", buffer).info("x")
    assert buffer.instance_names("pipeline") == ["p4", "p2", "p5"]


def test_instance_key() -> None:
    assert instance_key("camioc.camera.simulation") == ("camera", "simulation")
    assert instance_key("camioc.pipeline.sim_sp1") == ("pipeline", "sim_sp1")
    assert instance_key("camioc.camera.") is None
    assert instance_key("camioc.core.camera_manager") is None


def test_install_is_idempotent() -> None:
    logger = logging.getLogger("camioc.test_install_root")
    try:
        first = install_log_buffer("camioc.test_install_root")
        assert install_log_buffer("camioc.test_install_root") is first
        assert sum(isinstance(h, LogBuffer) for h in logger.handlers) == 1
    finally:
        logger.handlers.clear()


def test_concurrent_emit() -> None:
    buffer = LogBuffer(capacity=500, instance_capacity=100)
    logger = make_logger("camioc.camera.threads", buffer)

    def work() -> None:
        for i in range(200):
            logger.info("%d", i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(buffer.records()) == 500 and len(buffer.instance_records("camera", "threads")) == 100


async def test_rest_site_on_free_port(tmp_path) -> None:
    app = create_camera_app(FakeCameras(), version=VERSION, logs=LogBuffer(), scripts_dir=tmp_path, host_stats=False)
    site = RestSite(app, "127.0.0.1", 0)
    await site.start()
    try:
        assert site.port > 0 and site.url == f"http://127.0.0.1:{site.port}"
        with pytest.raises(RuntimeError, match="already started"):
            await site.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{site.url}/api/v1/cam/version") as response:
                assert (await response.json())["version"] == VERSION
    finally:
        await site.stop()
    await site.stop()  # idempotent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await asyncio.wait_for(session.get(f"{site.url}/api/v1/cam/version"), 5)


async def test_rest_site_port_in_use(tmp_path) -> None:
    app1 = create_camera_app(FakeCameras(), version=VERSION, logs=LogBuffer(), scripts_dir=tmp_path, host_stats=False)
    app2 = create_camera_app(FakeCameras(), version=VERSION, logs=LogBuffer(), scripts_dir=tmp_path, host_stats=False)
    first = RestSite(app1, "127.0.0.1", 0)
    await first.start()
    try:
        second = RestSite(app2, "127.0.0.1", first.port)
        with pytest.raises(OSError):
            await second.start()
        assert not second.running
    finally:
        await first.stop()
