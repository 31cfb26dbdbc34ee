"""A camera whose source goes away shows Disconnected, "Waiting for source", not Acquire; the next
frame brings Acquire back. A real camera worker reads a replayed bsread camera stream that stops
and starts again on the same port."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from camioc.config.store import ConfigStore
from camioc.core.api import DetectorState
from camioc.core.camera_manager import CameraManager
from tests.support.bsread_replay import CAMERA_DUMP, BsreadReplayServer, load_dump
from tests.support.server import free_port

CAMERA = CAMERA_DUMP.channel.split(":")[0]


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_gone_source_shows_disconnected_waiting_for_source(tmp_path: Path, camserver_fixtures: Path) -> None:
    dump = load_dump(camserver_fixtures / "test_camera_dump")
    port = free_port()
    folder = tmp_path / "camera_config"
    folder.mkdir()
    (folder / f"{CAMERA}.json").write_text(json.dumps(
        {"name": CAMERA, "source": f"tcp://127.0.0.1:{port}", "source_type": "bsread", "no_client_timeout": 0}))
    start = free_port() // 100 * 100
    manager = CameraManager(ConfigStore(folder), hostname="127.0.0.1", port_range=(start, start + 100),
                            background_dir=tmp_path / "background_config")
    try:
        with BsreadReplayServer(dump, mode="PUSH", interval=0.05, port=port):
            await manager.get_stream(CAMERA)
            await _until(lambda: manager.status(CAMERA).state == DetectorState.Acquire, 15, "Acquire")
        # the source is gone
        await _until(lambda: manager.status(CAMERA).state == DetectorState.Disconnected, 15, "Disconnected")
        assert manager.status(CAMERA).message.startswith("Waiting for source (no frame for ")
        assert CAMERA in manager.running_names  # the worker waits, it does not stop
        with BsreadReplayServer(dump, mode="PUSH", interval=0.05, port=port):
            await _until(lambda: manager.status(CAMERA).state == DetectorState.Acquire, 15, "Acquire again")
    finally:
        await manager.close()
