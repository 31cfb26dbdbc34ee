"""What the camera and pipeline managers share: running instances of workers and their status.

A camera and a pipeline instance are managed alike: one worker process per instance, its stream
ports, a per-key lock that serialises start/stop/config of one instance while others proceed,
a status record replaced (never mutated) and sent to the listeners on every change, image
snapshots numbered per key, worker log records relayed under ``camioc.<kind>.<key>``, and the
``publishing`` switch the IOC sets. :class:`InstanceManager` holds that once;
:class:`~camioc.core.camera_manager.CameraManager` and
:class:`~camioc.core.pipeline_manager.PipelineManager` add their configs, wiring and status
fields through a handful of hooks (``_on_status``, ``_on_exited``, ``_instance_key``, ...).

Everything here runs on the control process's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from camioc.core.api import DetectorState, ImageSnapshot, rate_text
from camioc.core.events import Listeners
from camioc.core.ports import START_ATTEMPTS, PortAllocator, port_taken
from camioc.core.worker import WorkerHandle, log_worker_record
from camioc.errors import InstanceError

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC%z"
#: What the IOC has not set yet: snapshots on, at most two per second.
DEFAULT_PUBLISHING = (True, 0.5)


class Instance:
    """Control-side state of one running worker (a camera or a pipeline instance)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.handle: WorkerHandle | None = None
        self.ports: list[int] = []
        self.stream_address = ""
        self.last_start_time = datetime.now(UTC).astimezone().strftime(TIME_FORMAT)
        self.started_monotonic = time.monotonic()
        self.pid: int | None = None

    @property
    def alive(self) -> bool:
        return self.handle is not None and self.handle.alive

    def statistics(self, *, total_bytes: int, clients: int, rx: tuple[float, int], tx: tuple[float, int],
                   header_changes: int, frame_shape: str) -> dict[str, Any]:
        """The ``statistics`` of cam_server's instance info, in its key order. ``rx``/``tx`` are
        ``(rate, count)``."""
        elapsed = time.monotonic() - self.started_monotonic
        return {
            "total_bytes": total_bytes,
            "clients": clients,
            "throughput": float(total_bytes) / elapsed if elapsed > 0 else 0.0,
            "time": time.strftime("%H:%M:%S", time.gmtime(elapsed)),
            "rx": rate_text(*rx),
            "tx": rate_text(*tx),
            "pid": str(self.pid or ""),
            **(self.handle.usage() if self.handle is not None else {}),
            "header_changes": header_changes,
            "frame_shape": frame_shape,
        }


InstanceT = TypeVar("InstanceT", bound=Instance)
StatusT = TypeVar("StatusT")


def exit_state(handle: WorkerHandle) -> tuple[DetectorState, str]:
    """A stopped worker's state and message: its error, or "Stopped (<reason>)"."""
    if handle.stop_error:
        return DetectorState.Error, handle.stop_error
    return DetectorState.Idle, f"Stopped ({handle.stop_reason or f'exit code {handle.exitcode}'})"


class InstanceManager(Generic[InstanceT, StatusT]):
    """Instances, locks, status records, listeners and publishing switches of one kind of worker.

    Subclasses set :attr:`kind` (``"camera"``/``"pipeline"``: event and logger names) and
    implement :meth:`_new_status`, :meth:`_on_status` and :meth:`_on_exited`; the other hooks have
    defaults.
    """

    kind: ClassVar[str]

    def __init__(self, *, hostname: str, bind_host: str, port_range: tuple[int, int], start_timeout: float,
                 log_level: int) -> None:
        self._hostname = hostname
        self._bind_host = bind_host
        self._ports = PortAllocator(port_range, bind_host)
        self._start_timeout = start_timeout
        self._log_level = log_level
        self._instances: dict[str, InstanceT] = {}
        self._statuses: dict[str, StatusT] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners = Listeners()
        self._publishing: dict[str, tuple[bool, float]] = {}
        self._snapshot_counters: dict[str, int] = {}

    # ================================================================== hooks
    def _new_status(self, key: str) -> StatusT:
        """The status of a key that never had one."""
        raise NotImplementedError

    def _on_status(self, key: str, payload: dict[str, Any]) -> None:
        """A worker's ``status`` message (its ``state`` already a DetectorState)."""
        raise NotImplementedError

    def _on_exited(self, instance: InstanceT, handle: WorkerHandle) -> None:
        """After a worker's process has exited: the instance is gone, its ports are free."""
        raise NotImplementedError

    def _on_message(self, key: str, kind: str, payload: Any) -> None:
        """Worker messages of a kind only this manager knows (default: ignored)."""

    def _instance_key(self, name: str) -> str | None:
        """The key a client's name means (cameras resolve aliases); None: no such instance."""
        return name

    def _stop_guard(self, key: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """What a stop holds: nothing by default (a stop may end a worker that is starting)."""
        return contextlib.nullcontext()

    def _status_extras(self, key: str) -> dict[str, Any]:
        """Fields every status update of ``key`` sets (default: none)."""
        return {}

    def _published(self, key: str, status: StatusT) -> StatusT:
        """The status as listeners get it (default: as kept)."""
        return status

    # ================================================================== locks and listeners
    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def add_listener(self, listener: Any) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: Any) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: str, argument: Any) -> None:
        self._listeners.emit(event, argument)

    # ================================================================== status records
    def _status(self, key: str) -> StatusT:
        status = self._statuses.get(key)
        return status if status is not None else self._new_status(key)

    def _set_status(self, key: str, **changes: Any) -> None:
        """Replace the status of ``key`` with ``changes`` applied (unknown names are ignored: a
        worker may report more than the record holds) and tell the listeners."""
        current = self._status(key)
        names = {f.name for f in fields(current)}  # type: ignore[arg-type]
        allowed = {name: value for name, value in changes.items() if name in names}
        allowed.update(self._status_extras(key))
        self._statuses[key] = replace(current, **allowed)  # type: ignore[type-var]
        self._emit_status(key)

    def _emit_status(self, key: str) -> None:
        self._emit(f"{self.kind}_status", self._published(key, self._status(key)))

    # ================================================================== image publishing
    def _publishing_of(self, key: str) -> tuple[bool, float]:
        return self._publishing.get(key, DEFAULT_PUBLISHING)

    def set_image_publishing(self, name: str, enabled: bool, min_period: float, /) -> None:
        """Whether (and at most how often) the worker of ``name`` sends image snapshots."""
        if min_period < 0:
            raise ValueError(f"minimum period must be >= 0, got {min_period}")
        self._publishing[name] = (bool(enabled), float(min_period))
        instance = self._instances.get(name)
        if instance is not None and instance.handle is not None:
            instance.handle.send("publishing", {"enabled": bool(enabled), "period": float(min_period)})

    # ================================================================== workers
    def _worker(self, key: str, target: Callable[..., None], args: tuple[Any, ...]) -> WorkerHandle:
        """A handle whose messages and exit come back to this manager under ``key``."""
        return WorkerHandle(key, target, args,
                            on_message=lambda kind, payload: self._on_worker_message(key, kind, payload),
                            on_exit=lambda handle: self._on_worker_exit(key, handle))

    async def _launch(self, instance: InstanceT, handle: WorkerHandle,
                      on_failure: Callable[[InstanceError], None]) -> dict[str, Any]:
        """Register ``instance`` and start its worker; on failure forget it, free its ports, call
        ``on_failure`` (status, events) and raise."""
        instance.handle = handle
        self._instances[instance.key] = instance
        try:
            started = await handle.start(self._start_timeout)
        except InstanceError as exc:
            if self._instances.get(instance.key) is instance:
                del self._instances[instance.key]
            self._release_ports(instance)
            on_failure(exc)
            raise
        instance.stream_address = started["stream_address"]
        instance.pid = started.get("pid")
        return started

    async def _start_retrying(self, key: str, attempt: Callable[[int], Awaitable[str]], *, fixed_port: bool) -> str:
        """Run ``attempt(n)`` until it starts: a port another program took between our check and
        the worker's bind is retried on other ports (not a port the config fixes)."""
        for number in range(START_ATTEMPTS):
            try:
                return await attempt(number)
            except InstanceError as exc:
                if fixed_port or not port_taken(exc) or number == START_ATTEMPTS - 1:
                    raise
                log.warning("%s %s: a port was taken, retrying on other ports", self.kind, key)
        raise AssertionError("unreachable")

    def _release_ports(self, instance: Instance) -> None:
        for port in instance.ports:
            self._ports.release(port)

    def _on_worker_exit(self, key: str, handle: WorkerHandle) -> None:
        instance = self._instances.get(key)
        if instance is None or instance.handle is not handle:
            return  # an old worker of a key that was restarted since
        del self._instances[key]
        self._release_ports(instance)
        self._on_exited(instance, handle)

    def _on_worker_message(self, key: str, kind: str, payload: Any) -> None:
        if kind == "status":
            payload = dict(payload)
            payload["state"] = DetectorState(payload["state"])
            self._on_status(key, payload)
        elif kind == "image":
            self._emit(f"{self.kind}_image", self._snapshot(key, payload))
        elif kind == "log":
            log_worker_record(f"camioc.{self.kind}.{key}", payload)
        elif kind != "stopped":  # "stopped" is handled when the process has exited
            self._on_message(key, kind, payload)

    def _snapshot(self, key: str, payload: dict[str, Any]) -> ImageSnapshot:
        """An image message as the listeners get it: read-only, numbered per key."""
        counter = self._snapshot_counters.get(key, 0) + 1
        self._snapshot_counters[key] = counter
        image = payload["image"]
        image.flags.writeable = False
        return ImageSnapshot(key, image, int(payload["pulse_id"]), float(payload["timestamp"]), counter)

    # ================================================================== instance control
    @property
    def running_names(self) -> list[str]:
        """The keys of the running instances."""
        return list(self._instances)

    async def stop(self, name: str, /) -> None:
        """Stop the instance ``name`` names (nothing if none runs)."""
        key = self._instance_key(name)
        if key is None:
            return
        async with self._stop_guard(key):
            instance = self._instances.get(key)
            if instance is not None and instance.handle is not None:
                await instance.handle.stop()

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(key) for key in list(self._instances)))

    async def delete_instance(self, name: str, /) -> None:
        """cam_server's ``DELETE /instance/<name>``: stops it."""
        await self.stop(name)

    def instance_info(self, name: str, /) -> dict[str, Any]:
        raise NotImplementedError

    def active_instances(self) -> dict[str, dict[str, Any]]:
        """cam_server's ``/info``: the info of every running instance."""
        return {key: self.instance_info(key) for key in list(self._instances)}

    async def close(self) -> None:
        """Stop every instance (shutdown)."""
        await self.stop_all()


__all__ = ["DEFAULT_PUBLISHING", "TIME_FORMAT", "Instance", "InstanceManager", "exit_state"]
