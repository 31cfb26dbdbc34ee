"""An in-memory CameraService for the REST unit tests."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from camioc.config.names import validate_name
from camioc.core.api import CameraEvents, CameraStatus
from camioc.errors import CameraOfflineError, ConfigError, NotFoundError

VERSION = "9.8.7-test"


class FakeCameras:
    """A small but real CameraService over dicts: configs, instances, images, backgrounds."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {
            "simulation": {"name": "simulation", "source": "sim", "source_type": "simulation", "alias": ["SIM", "sim2"], "group": "Test"},
            "cam_a": {"name": "cam_a", "source": "PREFIX:A", "source_type": "epics", "group": ["Test", "Other"]},
            "offline_cam": {"name": "offline_cam", "source": "OFF", "source_type": "epics"},
        }
        self.running: dict[str, str] = {}
        self.backgrounds: dict[str, np.ndarray] = {}
        self.image = (np.arange(12 * 16, dtype="<u2").reshape(12, 16) * 7).astype("<u2")
        self.calls: list[tuple[str, Any]] = []
        self.log = logging.getLogger("camioc.camera.simulation")

    # configuration
    def camera_names(self) -> list[str]:
        return sorted(self.configs)

    def aliases(self) -> dict[str, str]:
        result = {}
        for name, config in self.configs.items():
            alias = config.get("alias") or []
            for a in [alias] if isinstance(alias, str) else alias:
                result[a] = name
        return result

    def groups(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for name, config in sorted(self.configs.items()):
            group = config.get("group") or []
            for g in [group] if isinstance(group, str) else group:
                result.setdefault(g, []).append(name)
        return result

    def resolve(self, name_or_alias: str) -> str:
        if name_or_alias in self.configs:
            return name_or_alias
        try:
            return self.aliases()[name_or_alias]
        except KeyError:
            raise NotFoundError(f"Camera '{name_or_alias}' does not exist.") from None

    def get_config(self, name: str) -> dict[str, Any]:
        return {"mirror_x": False, "roi": None, **self.configs[self.resolve(name)]}

    async def set_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        validate_name(name, "camera name")
        if not config:
            raise ConfigError(f"Config object cannot be empty. Config: {config!r}")
        if "source" not in config:
            raise ConfigError("'source' not specified in configuration.")
        self.configs[name] = {**config, "name": name}
        return self.get_config(name)

    async def update_config(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolve(name)
        self.configs[name].update(changes)
        return self.get_config(name)

    async def delete_config(self, name: str) -> None:
        if name not in self.configs:
            raise NotFoundError(f"Config '{name}' does not exist.")
        self.running.pop(name, None)
        del self.configs[name]

    # instances
    async def get_stream(self, name: str) -> str:
        name = self.resolve(name)
        if name == "offline_cam":
            raise CameraOfflineError("Camera with prefix OFF is offline")
        self.log.info("starting %s", name)
        self.running.setdefault(name, f"tcp://127.0.0.1:{10100 + len(self.running)}")
        return self.running[name]

    async def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        self.running.pop(self.resolve(name), None)

    async def stop_all(self) -> None:
        self.calls.append(("stop_all", None))
        self.running.clear()

    async def delete_instance(self, name: str) -> None:
        self.calls.append(("delete_instance", name))
        name = self.resolve(name)
        if name not in self.running:
            raise NotFoundError(f"Instance '{name}' does not exist.")
        del self.running[name]

    def status(self, name: str) -> CameraStatus:
        return CameraStatus(name=self.resolve(name), running=name in self.running)

    def instance_info(self, name: str) -> dict[str, Any]:
        if name not in self.running:
            raise NotFoundError(f"Instance '{name}' does not exist.")
        return {"stream_address": self.running[name], "camera_name": name, "statistics": {"clients": 1}}

    def worker_health(self) -> dict[str, Any]:
        return {}  # no worker processes here

    def active_instances(self) -> dict[str, dict[str, Any]]:
        return {name: self.instance_info(name) for name in self.running}

    @property
    def running_names(self) -> list[str]:
        return list(self.running)

    # one-shot reads
    async def is_online(self, name: str) -> tuple[bool, str]:
        name = self.resolve(name)
        if name == "offline_cam":
            return False, "Camera with prefix OFF is offline"
        return True, ""

    async def get_geometry(self, name: str) -> list[int]:
        self.resolve(name)
        return [self.image.shape[1], self.image.shape[0]]

    async def get_image(self, name: str, raw: bool = False) -> np.ndarray:
        self.calls.append(("get_image", (name, raw)))
        if self.resolve(name) == "offline_cam":
            raise CameraOfflineError("Camera with prefix OFF is offline")
        return self.image

    async def set_background_image(self, name: str, image: np.ndarray) -> None:
        validate_name(name, "background name")
        self.backgrounds[name] = image

    # CA publishing
    def set_image_publishing(self, name: str, enabled: bool, min_period: float) -> None:
        pass

    def add_listener(self, listener: CameraEvents) -> None:
        pass

    def remove_listener(self, listener: CameraEvents) -> None:
        pass
