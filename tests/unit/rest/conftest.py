"""Fixtures: an in-memory CameraService and an aiohttp test client on ``create_camera_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from camioc.logbuffer import LogBuffer
from camioc.rest.camera_api import create_camera_app
from tests.unit.rest.fakes import VERSION, FakeCameras


@pytest.fixture
def cameras() -> FakeCameras:
    return FakeCameras()


@pytest.fixture
def log_buffer() -> Iterator[LogBuffer]:
    buffer = LogBuffer()
    logger = logging.getLogger("camioc")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(buffer)
    yield buffer
    logger.removeHandler(buffer)
    logger.setLevel(old_level)


@pytest.fixture
def scripts_dir(tmp_path: Path) -> Path:
    return tmp_path / "user_scripts"


@pytest.fixture
async def client(cameras: FakeCameras, log_buffer: LogBuffer, scripts_dir: Path) -> AsyncIterator[TestClient]:
    app = create_camera_app(cameras, version=VERSION, logs=log_buffer, scripts_dir=scripts_dir, host_stats=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
