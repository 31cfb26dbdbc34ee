"""Camera configurations and camera instances: the camera half of camioc's domain.

:class:`CameraManager` implements :class:`camioc.core.api.CameraService`. It owns the camera
config store, starts one worker process per running camera (on demand: REST, caput, pipelines),
allocates stream ports, relays worker status and image snapshots to listeners (the IOC), and
answers one-shot questions (online?, geometry, one image) for cameras that are not running.

Concurrency: every public coroutine runs on the control process's event loop; a per-camera
``asyncio.Lock`` serialises start/stop/config of one camera while other cameras proceed. Blocking
work (probing an EPICS camera, reading one frame) runs in a thread with a deadline. What a camera
shares with a pipeline instance (workers, locks, status records, snapshots, publishing) is
:class:`~camioc.core.instances.InstanceManager`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camioc.config.camera import CameraConfig, camera_aliases, camera_groups
from camioc.config.names import validate_name
from camioc.config.store import ConfigStore
from camioc.core.api import CameraEvents, CameraStatus, DetectorState
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_worker import CameraWorkerOptions, run_camera_worker
from camioc.core.instances import Instance, InstanceManager, Supervision, exit_state
from camioc.core.worker import WorkerHandle
from camioc.errors import CameraOfflineError, ConfigError, InstanceError, NotFoundError

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0
START_TIMEOUT = 30.0


class _CameraInstance(Instance):
    """Control-side state of one running camera worker."""

    def __init__(self, name: str, config: CameraConfig, port: int) -> None:
        super().__init__(name)
        self.config = config
        self.ports = [port]


class CameraManager(InstanceManager[_CameraInstance, CameraStatus]):
    """The camera service: configs, instances, events (see :class:`camioc.core.api.CameraService`)."""

    kind = "camera"

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
        supervision: Supervision | None = None,
    ) -> None:
        super().__init__(hostname=hostname, bind_host=bind_host, port_range=port_range,
                         start_timeout=start_timeout, log_level=log_level, supervision=supervision)
        self._store = store
        self._background_dir = background_dir
        self._last_ports: dict[str, int] = {}
        #: acquisitions of a given number of frames waiting to complete: camera -> [(number, future)]
        self._acquisitions: dict[str, list[tuple[int, asyncio.Future[CameraStatus]]]] = {}
        self._acquisition_number = 0
        #: cameras whose image mode publishes frames only on ``acquire`` (Single/Multiple)
        self._triggered: set[str] = set()

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

        async def attempt(number: int) -> str:
            if config.port:
                self._ports.reserve(int(config.port))
                port = int(config.port)
            else:  # the port of the last run first: clients that kept the address reconnect
                port = self._ports.allocate(self._last_ports.get(name) if number == 0 else None)
            return await self._start_on_port(name, config, port, hold)

        return await self._start_retrying(name, attempt, fixed_port=bool(config.port))

    async def _start_on_port(self, name: str, config: CameraConfig, port: int, hold: bool) -> str:
        instance = _CameraInstance(name, config, port)
        snapshot_enabled, snapshot_period = self._publishing_of(name)
        options = CameraWorkerOptions(
            port=port,
            bind_host=self._bind_host,
            hostname=self._hostname,
            connect_timeout=PROBE_TIMEOUT,
            snapshot_enabled=snapshot_enabled,
            snapshot_period=snapshot_period,
            background_dir=str(self._background_dir or ""),
            log_level=logging.DEBUG if config.debug else self._log_level,
            hold=hold,
            free_running=name not in self._triggered,
        )
        handle = self._worker(name, run_camera_worker, (config, options))
        self._set_status(name, running=True, state=DetectorState.Initializing, message="Starting")
        log.info("starting camera %s on port %d", name, port)

        def failed(exc: InstanceError) -> None:
            self._set_status(name, running=False, state=DetectorState.Error, message=str(exc),
                             stream_address="", clients=0, frame_rate=0.0)

        try:
            await self._launch(instance, handle, failed)
        except InstanceError as exc:
            if handle.stop_error_type == "CameraOfflineError":
                raise CameraOfflineError(str(exc)) from None
            raise
        self._last_ports[name] = port
        self._set_status(name, stream_address=instance.stream_address, last_start_time=instance.last_start_time)
        self._emit("instances_changed", name)
        return instance.stream_address

    def set_free_running(self, name: str, free: bool) -> None:
        """See :meth:`camioc.core.api.CameraService.set_free_running`."""
        name = self.resolve(name)
        if free:
            self._triggered.discard(name)
            return
        self._triggered.add(name)
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None and instance.handle.alive:
            self._acquisition_number += 1
            instance.handle.send("acquire", {"count": -1, "number": self._acquisition_number})

    async def acquire(self, name: str, count: int) -> CameraStatus:
        """See :meth:`camioc.core.api.CameraService.acquire`."""
        name = self.resolve(name)
        self.set_free_running(name, count == 0)
        await self.get_stream(name, hold=True)
        instance = self._instances.get(name)
        if instance is None or instance.handle is None or not instance.handle.alive:
            raise InstanceError(f"Camera '{name}' is not running.")
        self._acquisition_number += 1
        number = self._acquisition_number
        future: asyncio.Future[CameraStatus] | None = None
        if count > 0:
            future = asyncio.get_running_loop().create_future()
            self._acquisitions.setdefault(name, []).append((number, future))
        instance.handle.send("acquire", {"count": int(count), "number": number})
        if future is None:
            return self.status(name)
        try:
            return await future
        finally:
            waiting = self._acquisitions.get(name, [])
            if (number, future) in waiting:
                waiting.remove((number, future))

    def _acquisitions_done(self, name: str, status: CameraStatus) -> None:
        for number, future in list(self._acquisitions.get(name, ())):
            if number <= status.acquired and not future.done():
                future.set_result(status)

    def _acquisitions_failed(self, name: str, message: str) -> None:
        for _number, future in self._acquisitions.pop(name, ()):
            if not future.done():
                future.set_exception(InstanceError(message))

    def _instance_key(self, name: str) -> str | None:
        try:
            return self.resolve(name)
        except NotFoundError:
            return None

    def _stop_guard(self, key: str) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._lock(key)  # a stop waits for a start or config change of the same camera

    def _on_exited(self, instance: _CameraInstance, handle: WorkerHandle) -> None:
        state, message = exit_state(handle, instance.death)
        self._set_status(instance.key, running=False, state=state, message=message,
                         stream_address="", clients=0, frame_rate=0.0)
        self._acquisitions_failed(instance.key, f"Camera '{instance.key}' stopped before the acquisition completed.")
        log.info("camera %s stopped (%s)", instance.key, instance.death or handle.stop_error or handle.stop_reason)
        self._emit("instances_changed", instance.key)

    def _on_dead_cleared(self, instance: _CameraInstance) -> None:
        self._set_status(instance.key, state=DetectorState.Idle, message=f"Stopped ({instance.death})")

    def _on_status(self, key: str, payload: dict[str, Any]) -> None:
        stats = {"total_bytes": payload.pop("total_bytes", 0),
                 "header_changes": payload.pop("header_changes", 0),
                 "background_error": payload.pop("background_error", "")}
        self._set_status(key, running=key in self._instances, statistics=stats, **payload)
        if self._acquisitions.get(key):
            self._acquisitions_done(key, self.status(key))

    # ================================================================== status
    def _new_status(self, key: str) -> CameraStatus:
        return CameraStatus(name=key)

    def status(self, name: str) -> CameraStatus:
        return self._status(self.resolve(name))

    def instance_info(self, name: str, /) -> dict[str, Any]:
        name = self.resolve(name)
        instance = self._shown_instance(name)
        if instance is None:
            raise NotFoundError(f"Instance '{name}' does not exist.")
        status = self._status(name)
        itemsize = np.dtype(status.dtype).itemsize if status.dtype else 0
        statistics = instance.statistics(
            total_bytes=int(status.statistics.get("total_bytes", 0)),
            clients=status.clients,
            rx=(status.frame_rate, status.frame_count),
            tx=(status.frame_rate, status.frame_count),
            header_changes=int(status.statistics.get("header_changes", 0)),
            frame_shape=f"{status.width}x{status.height}x{itemsize}",
        )
        return {
            "stream_address": instance.stream_address,
            "is_stream_active": instance.handle is not None and instance.handle.alive,
            "camera_geometry": [status.width, status.height],
            "camera_name": name,
            "last_start_time": instance.last_start_time,
            "statistics": statistics,
            "config": instance.config.to_dict(runtime_defaults=False),
            **self._dead_fields(name),
        }

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

    # ================================================================== events
    def add_listener(self, listener: CameraEvents) -> None:
        super().add_listener(listener)

    def remove_listener(self, listener: CameraEvents) -> None:
        super().remove_listener(listener)


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
