"""Fixtures for the stream integration tests."""

from __future__ import annotations

import pytest

from tests.support.bsread_replay import load_dump


@pytest.fixture
def dump_messages(camserver_fixtures) -> list[list[bytes]]:
    """The recorded cam_server camera stream, one list of parts per message."""
    return load_dump(camserver_fixtures / "test_camera_dump")
