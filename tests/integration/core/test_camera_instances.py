"""Camera instances end to end in one process: CameraManager -> worker process -> bsread stream.

Real parts throughout: the manager spawns real worker processes, the simulation source makes
frames, and psi-bsread's ``Source`` reads the stream, as a user's script would.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from camioc.config.store import ConfigStore
from camioc.core.api import DetectorState
from camioc.core.camera_manager import CameraManager
from camioc.errors import CameraOfflineError, ConfigError, InvalidNameError, NotFoundError
from tests.support.waiting import receive

SIM = {
    "source": "simulation",
    "source_type": "simulation",
    "size_x": 320,
    "size_y": 240,
    "dtype": "uint16",
    "image_type": "beam",
    "frame_rate": 50.0,
    "no_client_timeout": 0,
}


def _port_range() -> tuple[int, int]:
    import random

    start = random.randrange(46000, 52000, 100)
    return start, start + 100


@pytest.fixture
async def manager(tmp_path: Path):
    folder = tmp_path / "camera_config"
    folder.mkdir()
    (folder / "sim.json").write_text(json.dumps({"name": "sim", **SIM}))
    mgr = CameraManager(ConfigStore(folder), hostname="127.0.0.1", port_range=_port_range(),
                        background_dir=tmp_path / "background_config")
    try:
        yield mgr
    finally:
        await mgr.close()




async def _wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_stream_has_camserver_channels(manager: CameraManager) -> None:
    address = await manager.get_stream("sim")
    assert address.startswith("tcp://127.0.0.1:")
    assert await manager.get_stream("sim") == address  # second request reuses the instance
    messages = await asyncio.to_thread(receive, address, 3)
    data = messages[-1].data.data
    assert set(data) == {"image", "timestamp", "width", "height", "x_axis", "y_axis"}
    image = data["image"].value
    assert image.shape == (240, 320) and image.dtype == np.uint16
    assert int(data["width"].value) == 320 and int(data["height"].value) == 240
    assert data["x_axis"].value.dtype == np.float32 and data["x_axis"].value.shape == (320,)
    assert data["y_axis"].value.shape == (240,)
    pulse_ids = [m.data.pulse_id for m in messages]
    assert pulse_ids == sorted(pulse_ids) and len(set(pulse_ids)) == len(pulse_ids)
    info = manager.active_instances()["sim"]
    assert info["stream_address"] == address and info["camera_name"] == "sim"
    assert info["statistics"]["memory"] > 10e6  # the worker's resident memory, as cam_server reports it
    await _wait_for(lambda: manager.status("sim").frame_count > 0, what="status with frames")
    status = manager.status("sim")
    assert status.running and status.width == 320 and status.height == 240 and status.dtype == "uint16"


async def test_config_change_applies_to_running_instance(manager: CameraManager) -> None:
    address = await manager.get_stream("sim")
    await asyncio.to_thread(receive, address, 2)
    await manager.update_config("sim", {"roi": [10, 100, 20, 50]})

    def shape_changed() -> bool:
        image = receive(address, 1)[0].data.data["image"].value
        return image.shape == (50, 100)

    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(shape_changed):
        assert time.monotonic() < deadline, "ROI not applied to the running instance"
    assert manager.get_config("sim")["roi"] == [10, 100, 20, 50]


async def test_invalid_config_changes_nothing(manager: CameraManager) -> None:
    before = manager.get_config("sim")
    with pytest.raises(ConfigError):
        await manager.update_config("sim", {"rotate": "sideways"})
    with pytest.raises(ConfigError):
        await manager.set_config("other", {"source_type": "simulation"})  # no source
    with pytest.raises(InvalidNameError):
        await manager.set_config("../evil", SIM)
    assert manager.get_config("sim") == before
    assert manager.camera_names() == ["sim"]


async def test_no_client_timeout_stops_instance(manager: CameraManager) -> None:
    await manager.update_config("sim", {"no_client_timeout": 1.0})
    await manager.get_stream("sim")
    await _wait_for(lambda: "sim" not in manager.active_instances(), timeout=15, what="idle instance to stop")
    status = manager.status("sim")
    assert not status.running and "no clients" in status.message


async def test_offline_epics_camera_reports_and_does_not_disturb_others(manager: CameraManager) -> None:
    await manager.set_config("ghost", {"source": "CAMIOC:NOBODY:HOME", "source_type": "epics"})
    address = await manager.get_stream("sim")
    with pytest.raises(CameraOfflineError, match="Camera with prefix CAMIOC:NOBODY:HOME is offline"):
        await manager.get_stream("ghost")
    assert "ghost" not in manager.active_instances()
    assert manager.status("ghost").state == DetectorState.Error
    online, message = await manager.is_online("ghost")
    assert not online and "offline" in message
    # the simulation camera kept streaming throughout
    assert len(await asyncio.to_thread(receive, address, 2)) == 2


async def test_one_shot_reads_without_instance(manager: CameraManager) -> None:
    assert await manager.get_geometry("sim") == [320, 240]
    image = await manager.get_image("sim")
    assert image.shape == (240, 320)
    assert "sim" not in manager.active_instances()
    assert (await manager.is_online("sim"))[0]


async def test_unknown_camera(manager: CameraManager) -> None:
    with pytest.raises(NotFoundError):
        await manager.get_stream("nope")
    await manager.stop("nope")  # stopping an unknown instance is not an error (cam_server)


async def test_stop_frees_port_and_restart_reuses_it(manager: CameraManager) -> None:
    address = await manager.get_stream("sim")
    await manager.stop("sim")
    assert "sim" not in manager.active_instances()
    assert await manager.get_stream("sim") == address


async def test_held_instance_ignores_no_client_timeout(manager: CameraManager) -> None:
    """Acquire 1 on CA starts with hold=True: no bsread subscriber must not stop it."""
    await manager.update_config("sim", {"no_client_timeout": 1.0})
    await manager.get_stream("sim", hold=True)
    await asyncio.sleep(3.0)  # three no_client_timeouts without a subscriber
    assert "sim" in manager.active_instances()
    await manager.stop("sim")
    assert "sim" not in manager.active_instances()
