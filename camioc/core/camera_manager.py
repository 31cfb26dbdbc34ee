"""Camera configurations and camera instances: the camera half of camioc's domain.

:class:`CameraManager` implements :class:`camioc.core.api.CameraService`. It owns the camera
config store, starts one worker process per running camera (on demand: REST, caput, pipelines),
allocates stream ports, relays worker status and image snapshots to listeners (the IOC), and
answers one-shot questions (online?, geometry, one image) for cameras that are not running.

Concurrency: every public coroutine runs on the control process's event loop; a per-camera
``asyncio.Lock`` serialises start/stop/config of one camera while other cameras proceed. Blocking
work (probing an EPICS camera, reading one frame) runs in a thread with a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from camioc.config.camera import CameraConfig, camera_aliases, camera_groups
from camioc.config.names import validate_name
from camioc.config.store import ConfigStore
from camioc.core.api import CameraEvents, CameraStatus, DetectorState, ImageSnapshot, rate_text
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_worker import CameraWorkerOptions, run_camera_worker
from camioc.core.events import Listeners
from camioc.core.ports import START_ATTEMPTS, PortAllocator, port_taken
from camioc.core.worker import WorkerHandle, log_worker_record
from camioc.errors import CameraOfflineError, ConfigError, InstanceError, NotFoundError

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC%z"
PROBE_TIMEOUT = 3.0
START_TIMEOUT = 30.0


class _CameraInstance:
    """Control-side state of one running camera worker."""

    def __init__(self, name: str, config: CameraConfig, port: int) -> None:
        self.name = name
        self.config = config
        self.port = port
        self.handle: WorkerHandle | None = None
        self.stream_address = ""
        self.last_start_time = datetime.now(UTC).astimezone().strftime(TIME_FORMAT)
        self.started_monotonic = time.monotonic()
        self.status: dict[str, Any] = {}
        self.pid: int | None = None


class CameraManager:
    """The camera service: configs, instances, events (see :class:`camioc.core.api.CameraService`)."""

    def __init__(
        self,
        store: ConfigStore,
        *,
        hostname: str,
        bind_host: str = "127.0.0.1",
        port_range: tuple[int, int] = (10100, 10301),
        background_dir: Path | None = None,
        start_timeout: float = START_TIMEOUT,
        log_level: int = logging.INFO,
    ) -> None:
        self._store = store
        self._hostname = hostname
        self._bind_host = bind_host
        self._ports = PortAllocator(port_range, bind_host)
        self._background_dir = background_dir
        self._start_timeout = start_timeout
        self._log_level = log_level
        self._instances: dict[str, _CameraInstance] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners = Listeners()
        self._statuses: dict[str, CameraStatus] = {}
        self._publishing: dict[str, tuple[bool, float]] = {}
        self._last_ports: dict[str, int] = {}
        self._snapshot_counters: dict[str, int] = {}

    # ================================================================== configuration
    def camera_names(self) -> list[str]:
        return self._store.names()

    def _configs(self) -> list[CameraConfig]:
        configs = []
        for name in self._store.names():
            try:
                configs.append(self._load(name))
            except ConfigError as exc:
                log.warning("camera config %s is invalid: %s", name, exc)
        return configs

    def aliases(self) -> dict[str, str]:
        return camera_aliases(self._configs())

    def groups(self) -> dict[str, list[str]]:
        return camera_groups(self._configs())

    def resolve(self, name_or_alias: str) -> str:
        if self._store.exists(name_or_alias):
            return name_or_alias
        alias_target = self.aliases().get(name_or_alias)
        if alias_target is not None:
            return alias_target
        raise NotFoundError(f"Camera '{name_or_alias}' does not exist.")

    def _load(self, name: str) -> CameraConfig:
        raw = dict(self._store.load(name))
        raw["name"] = name
        return CameraConfig.from_dict(raw)

    def get_config(self, name: str) -> dict[str, Any]:
        """A camera's config as cam_server answers it: its expansion (cam_server's defaults and
        calibration sub-defaults), not camioc's runtime defaults (binning, protocol, ...)."""
        return self._load(self.resolve(name)).to_dict(runtime_defaults=False)

    async def set_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        validate_name(name, "camera name")
        if not isinstance(config, Mapping) or not config:
            raise ConfigError(f"Config object cannot be empty. Config: {config!r}")
        new = dict(config)
        new["name"] = name
        parsed = CameraConfig.from_dict(new)
        async with self._lock(name):
            is_new = not self._store.exists(name)
            self._store.save(name, parsed.to_dict(runtime_defaults=False))
            self._push_config(name, parsed)
        if is_new:
            self._emit("camera_added", name)
        self._emit_status(name)
        return parsed.to_dict(runtime_defaults=False)  # what was saved (cam_server answers that)

    async def update_config(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolve(name)
        async with self._lock(name):
            parsed = self._load(name).updated(changes)
            self._store.save(name, parsed.to_dict(runtime_defaults=False))
            self._push_config(name, parsed)
        self._emit_status(name)
        return parsed.to_dict()

    async def delete_config(self, name: str) -> None:
        if not self._store.exists(name):
            raise NotFoundError(f"Config '{name}' does not exist.")
        await self.stop(name)
        async with self._lock(name):
            self._store.delete(name)
        self._statuses.pop(name, None)
        self._emit("camera_removed", name)

    def _push_config(self, name: str, config: CameraConfig) -> None:
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None:
            instance.config = config
            instance.handle.send("config", config)

    # ================================================================== instances
    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def get_stream(self, name: str, *, hold: bool = False) -> str:
        name = self.resolve(name)
        async with self._lock(name):
            instance = self._instances.get(name)
            if instance is not None and instance.handle is not None and instance.handle.alive:
                if hold:
                    instance.handle.send("hold", True)
                return instance.stream_address
            return await self._start(name, hold)

    async def _start(self, name: str, hold: bool = False) -> str:
        config = self._load(name)
        for attempt in range(START_ATTEMPTS):
            if config.port:
                self._ports.reserve(int(config.port))
                port = int(config.port)
            else:
                port = self._ports.allocate(self._last_ports.get(name) if attempt == 0 else None)
            try:
                return await self._start_on_port(name, config, port, hold)
            except InstanceError as exc:
                # another program took the port between our check and the worker's bind: next port
                if config.port or not port_taken(exc) or attempt == START_ATTEMPTS - 1:
                    raise
                log.warning("camera %s: port %d was taken, retrying on another port", name, port)
        raise AssertionError("unreachable")

    async def _start_on_port(self, name: str, config: CameraConfig, port: int, hold: bool) -> str:
        instance = _CameraInstance(name, config, port)
        options = CameraWorkerOptions(
            port=port,
            bind_host=self._bind_host,
            hostname=self._hostname,
            connect_timeout=PROBE_TIMEOUT,
            snapshot_enabled=self._publishing.get(name, (True, 0.5))[0],
            snapshot_period=self._publishing.get(name, (True, 0.5))[1],
            background_dir=str(self._background_dir or ""),
            log_level=logging.DEBUG if config.debug else self._log_level,
            hold=hold,
        )
        handle = WorkerHandle(
            name,
            run_camera_worker,
            (config, options),
            on_message=lambda kind, payload: self._on_worker_message(name, kind, payload),
            on_exit=lambda h: self._on_worker_exit(name, h),
        )
        instance.handle = handle
        self._instances[name] = instance
        self._set_status(name, running=True, state=DetectorState.Initializing, message="Starting")
        log.info("starting camera %s on port %d", name, port)
        try:
            started = await handle.start(self._start_timeout)
        except InstanceError as exc:
            self._instances.pop(name, None)
            self._ports.release(port)
            self._set_status(name, running=False, state=DetectorState.Error, message=str(exc),
                             stream_address="", clients=0, frame_rate=0.0)
            if handle.stop_error_type == "CameraOfflineError":
                raise CameraOfflineError(str(exc)) from None
            raise
        instance.stream_address = started["stream_address"]
        instance.pid = started.get("pid")
        self._last_ports[name] = port
        self._set_status(name, stream_address=instance.stream_address, last_start_time=instance.last_start_time)
        self._emit("instances_changed", name)
        return instance.stream_address

    async def stop(self, name: str) -> None:
        try:
            name = self.resolve(name)
        except NotFoundError:
            return
        async with self._lock(name):
            instance = self._instances.get(name)
            if instance is not None and instance.handle is not None:
                await instance.handle.stop()

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(name) for name in list(self._instances)))

    async def delete_instance(self, name: str) -> None:
        await self.stop(name)

    def _on_worker_exit(self, name: str, handle: WorkerHandle) -> None:
        instance = self._instances.get(name)
        if instance is None or instance.handle is not handle:
            return
        del self._instances[name]
        self._ports.release(instance.port)
        error = handle.stop_error
        if error:
            self._set_status(name, running=False, state=DetectorState.Error, message=error,
                             stream_address="", clients=0, frame_rate=0.0)
        else:
            reason = handle.stop_reason or f"exit code {handle.exitcode}"
            self._set_status(name, running=False, state=DetectorState.Idle, message=f"Stopped ({reason})",
                             stream_address="", clients=0, frame_rate=0.0)
        log.info("camera %s stopped (%s)", name, error or handle.stop_reason)
        self._emit("instances_changed", name)

    def _on_worker_message(self, name: str, kind: str, payload: Any) -> None:
        if kind == "status":
            payload = dict(payload)
            payload["state"] = DetectorState(payload["state"])
            stats = {"total_bytes": payload.pop("total_bytes", 0),
                     "header_changes": payload.pop("header_changes", 0),
                     "background_error": payload.pop("background_error", "")}
            instance = self._instances.get(name)
            running = instance is not None
            self._set_status(name, running=running, statistics=stats, **payload)
        elif kind == "image":
            counter = self._snapshot_counters.get(name, 0) + 1
            self._snapshot_counters[name] = counter
            image = payload["image"]
            image.flags.writeable = False
            snapshot = ImageSnapshot(name, image, int(payload["pulse_id"]), float(payload["timestamp"]), counter)
            self._emit("camera_image", snapshot)
        elif kind == "log":
            log_worker_record(f"camioc.camera.{name}", payload)
        elif kind == "stopped":
            pass  # handled when the process has exited (_on_worker_exit)

    # ================================================================== status
    def status(self, name: str) -> CameraStatus:
        name = self.resolve(name)
        return self._statuses.get(name) or CameraStatus(name=name)

    def _set_status(self, name: str, **changes: Any) -> None:
        current = self._statuses.get(name) or CameraStatus(name=name)
        allowed = {k: v for k, v in changes.items() if k in CameraStatus.__dataclass_fields__}
        self._statuses[name] = replace(current, **allowed)
        self._emit("camera_status", self._statuses[name])

    def _emit_status(self, name: str) -> None:
        self._emit("camera_status", self._statuses.get(name) or CameraStatus(name=name))

    def instance_info(self, name: str) -> dict[str, Any]:
        name = self.resolve(name)
        instance = self._instances.get(name)
        if instance is None:
            raise NotFoundError(f"Instance '{name}' does not exist.")
        status = self._statuses.get(name) or CameraStatus(name=name)
        elapsed = time.monotonic() - instance.started_monotonic
        statistics = {
            "total_bytes": int(status.statistics.get("total_bytes", 0)),
            "clients": status.clients,
            "throughput": float(status.statistics.get("total_bytes", 0)) / elapsed if elapsed > 0 else 0.0,
            "time": time.strftime("%H:%M:%S", time.gmtime(elapsed)),
            "rx": rate_text(status.frame_rate, status.frame_count),
            "tx": rate_text(status.frame_rate, status.frame_count),
            "pid": str(instance.pid or ""),
            **(instance.handle.usage() if instance.handle is not None else {}),
            "header_changes": int(status.statistics.get("header_changes", 0)),
            "frame_shape": f"{status.width}x{status.height}x{np.dtype(status.dtype).itemsize if status.dtype else 0}",
        }
        return {
            "stream_address": instance.stream_address,
            "is_stream_active": instance.handle is not None and instance.handle.alive,
            "camera_geometry": [status.width, status.height],
            "camera_name": name,
            "last_start_time": instance.last_start_time,
            "statistics": statistics,
            "config": instance.config.to_dict(runtime_defaults=False),
        }

    def active_instances(self) -> dict[str, dict[str, Any]]:
        return {name: self.instance_info(name) for name in list(self._instances)}

    # ================================================================== one-shot reads
    async def is_online(self, name: str) -> tuple[bool, str]:
        name = self.resolve(name)
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None and instance.handle.alive:
            return True, "Camera is online (instance running)."
        config = self._load(name)
        try:
            await asyncio.to_thread(_probe_source, config)
        except CameraOfflineError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, str(exc) or type(exc).__name__
        return True, "Camera is online."

    async def get_geometry(self, name: str) -> list[int]:
        name = self.resolve(name)
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None and instance.handle.alive:
            return list(await instance.handle.request("geometry"))
        config = self._load(name)
        return list(await asyncio.to_thread(_read_geometry, config))

    async def get_image(self, name: str, raw: bool = False) -> np.ndarray:
        name = self.resolve(name)
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None and instance.handle.alive:
            deadline = time.monotonic() + PROBE_TIMEOUT
            while True:
                try:
                    return await instance.handle.request("image", raw)
                except LookupError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        config = self._load(name)
        return await asyncio.to_thread(_read_one_image, config, raw)

    async def set_background_image(self, name: str, image: np.ndarray) -> None:
        """Store a camera-level background (replacing one of the same name, as cam_server does)."""
        if self._background_dir is None:
            raise ConfigError("No background folder configured.")
        store = BackgroundStore(self._background_dir)
        await asyncio.to_thread(store.save, name, image, overwrite=True)

    # ================================================================== CA publishing & events
    def set_image_publishing(self, name: str, enabled: bool, min_period: float) -> None:
        if min_period < 0:
            raise ValueError(f"minimum period must be >= 0, got {min_period}")
        self._publishing[name] = (bool(enabled), float(min_period))
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None:
            instance.handle.send("publishing", {"enabled": bool(enabled), "period": float(min_period)})

    def add_listener(self, listener: CameraEvents) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: CameraEvents) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: str, argument: Any) -> None:
        self._listeners.emit(event, argument)

    @property
    def running_names(self) -> list[str]:
        return list(self._instances)

    async def close(self) -> None:
        """Stop every instance (shutdown)."""
        await self.stop_all()


# ====================================================================== blocking helpers (threads)
def _probe_source(config: CameraConfig) -> None:
    from camioc.sources.registry import create_source

    with create_source(config) as source:
        source.connect(timeout=PROBE_TIMEOUT)


def _read_geometry(config: CameraConfig) -> list[int]:
    from camioc.sources.registry import create_source
    from camioc.sources.transform import transformed_shape

    with create_source(config) as source:
        source.connect(timeout=PROBE_TIMEOUT)
        width, height = source.geometry()
        if not width or not height:
            frame = source.read(PROBE_TIMEOUT)
            if frame is None:
                raise InstanceError(f"Camera '{config.name}' delivered no image within {PROBE_TIMEOUT:g} s.")
            height, width = frame.image.shape[:2]
    return list(transformed_shape(width, height, config))


def _read_one_image(config: CameraConfig, raw: bool) -> np.ndarray:
    from camioc.sources.registry import create_source
    from camioc.sources.transform import transform_image

    with create_source(config) as source:
        source.connect(timeout=PROBE_TIMEOUT)
        frame = source.read(PROBE_TIMEOUT)
    if frame is None:
        raise InstanceError(f"Camera '{config.name}' delivered no image within {PROBE_TIMEOUT:g} s.")
    image = frame.image if raw else transform_image(frame.image, config)
    return np.ascontiguousarray(image)


__all__ = ["CameraManager"]
