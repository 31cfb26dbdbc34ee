"""PipelineManager behaviour the pipeline REST API relies on (no worker processes started).

Covers the manager fixes made with the REST API: groups of saved configs, alias resolution of
background queries, one instance per equal config for ``POST /instance/`` under concurrency, and
the immediate camera restart for pipelines whose camera stopped under them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camioc.config.pipeline import CAMSERVER_DEFAULT_CONFIGURATION
from camioc.config.store import ConfigStore
from camioc.core import pipeline_manager as pm
from camioc.core.backgrounds import BackgroundStore
from camioc.errors import NotFoundError


class FakeCameras:
    """The slice of CameraManager the PipelineManager uses."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.running_names: list[str] = []
        self.streams_given: list[str] = []

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Any) -> None:
        self.listeners.remove(listener)

    def resolve(self, name: str) -> str:
        if name in ("cam", "cam_2"):
            return name
        if name == "alias_of_cam":
            return "cam"
        raise NotFoundError(f"Camera '{name}' does not exist.")

    async def get_stream(self, name: str) -> str:
        self.streams_given.append(name)
        self.running_names.append(name)
        return f"tcp://127.0.0.1:1{len(self.streams_given):04d}"

    def stopped(self, name: str) -> None:
        self.running_names.remove(name)
        for listener in list(self.listeners):
            listener.instances_changed(name)


class FakeHandle:
    alive = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, kind: str, payload: Any) -> bool:
        self.sent.append((kind, payload))
        return True

    async def stop(self) -> None:
        self.alive = False


@pytest.fixture
def cameras() -> FakeCameras:
    return FakeCameras()


@pytest.fixture
def manager(tmp_path: Path, cameras: FakeCameras) -> pm.PipelineManager:
    return pm.PipelineManager(ConfigStore(tmp_path / "pipeline_config"), cameras,  # type: ignore[arg-type]
                              BackgroundStore(tmp_path / "background_config"), hostname="127.0.0.1")


async def test_groups_of_saved_configs(manager: pm.PipelineManager) -> None:
    await manager.save_config("p1", {"camera_name": "cam", "group": ["A", "B"]})
    await manager.save_config("p2", {"camera_name": "cam", "group": "A"})
    await manager.save_config("p3", {"camera_name": "cam"})
    assert manager.groups() == {"A": ["p1", "p2"], "B": ["p1"]}


async def test_background_queries_resolve_aliases(manager: pm.PipelineManager) -> None:
    image = np.ones((2, 2), np.uint16)
    for background_id in ("cam_20240101_000000_000001", "cam_2_20250101_000000_000000", "gone_20240101_000000_000000"):
        await manager.set_background(background_id, image)
    assert manager.latest_background("alias_of_cam") == "cam_20240101_000000_000001"
    assert manager.background_ids("cam") == ["cam_20240101_000000_000001"]
    assert manager.latest_background("gone") == "gone_20240101_000000_000000"  # camera deleted, backgrounds kept


async def test_equal_configs_share_one_read_only_instance(manager: pm.PipelineManager, monkeypatch) -> None:
    started: list[str] = []

    async def fake_start(instance_id: str, config: dict[str, Any], read_only: bool, *,
                         shown: dict[str, Any]) -> str:
        instance = pm._PipelineInstance(instance_id, config, read_only, shown)
        instance.handle = FakeHandle()  # type: ignore[assignment]
        manager._instances[instance_id] = instance
        started.append(instance_id)
        await asyncio.sleep(0.05)  # a start takes a while; equal requests must wait, not duplicate
        instance.stream_address = f"tcp://127.0.0.1:{11100 + len(started)}"
        return instance.stream_address

    monkeypatch.setattr(manager, "_start", fake_start)
    config = {"camera_name": "cam", "image_threshold": 3}
    results = await asyncio.gather(*(manager.get_instance_stream_from_config(dict(config)) for _ in range(3)))
    assert len(started) == 1
    assert {(r[0], r[1]) for r in results} == {(started[0], "tcp://127.0.0.1:11101")}
    assert manager._instances[started[0]].read_only is True
    # the answer is cam_server's expansion of what the client sent (no injected read_only/name)
    assert results[0][2] == {**CAMSERVER_DEFAULT_CONFIGURATION, **config}
    other = await manager.get_instance_stream_from_config({"camera_name": "cam", "image_threshold": 4})
    assert other[0] != started[0] and len(started) == 2


async def test_camera_stopped_under_a_pipeline_is_restarted_once(
        manager: pm.PipelineManager, cameras: FakeCameras, monkeypatch) -> None:
    instance = pm._PipelineInstance("p", {"camera_name": "cam"}, False)
    handle = FakeHandle()
    instance.handle = handle  # type: ignore[assignment]
    instance.camera_input = "cam"
    manager._instances["p"] = instance
    other = pm._PipelineInstance("q", {"camera_name": "cam_2"}, False)
    other.handle = FakeHandle()  # type: ignore[assignment]
    other.camera_input = "cam_2"
    manager._instances["q"] = other
    cameras.running_names[:] = ["cam", "cam_2"]

    cameras.stopped("cam")
    await asyncio.sleep(0)
    await asyncio.gather(*manager._tasks)
    assert cameras.streams_given == ["cam"]
    assert handle.sent == [("camera_stream", "tcp://127.0.0.1:10001")]
    assert other.handle.sent == []  # type: ignore[attr-defined]

    cameras.stopped("cam")  # stops again right away: left to the worker's camera_timeout
    await asyncio.gather(*manager._tasks)
    assert cameras.streams_given == ["cam"]

    monkeypatch.setattr(pm, "CAMERA_RESTART_HOLDOFF", 0.0)
    cameras.running_names.append("cam")
    cameras.stopped("cam")
    await asyncio.gather(*manager._tasks)
    assert cameras.streams_given == ["cam", "cam"]

    await manager.close()
    assert cameras.listeners == []
