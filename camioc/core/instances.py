"""What the camera and pipeline managers share: running instances of workers and their status.

A camera and a pipeline instance are managed alike: one worker process per instance, its stream
ports, a per-key lock that serialises start/stop/config of one instance while others proceed,
a status record replaced (never mutated) and sent to the listeners on every change, image
snapshots numbered per key, worker log records relayed under ``camioc.<kind>.<key>``, and the
``publishing`` switch the IOC sets, and the supervision of the workers (:class:`Supervision`:
a worker that dies stays visible with its reason, a silent one is marked stalled, one over its
memory limit is ended). :class:`InstanceManager` holds that once;
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
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from camioc.core.api import HEALTH_PERIOD, DetectorState, ImageSnapshot, WorkerHealth, rate_text
from camioc.core.events import Listeners
from camioc.core.ports import START_ATTEMPTS, PortAllocator, port_taken
from camioc.core.worker import WorkerHandle, log_worker_record
from camioc.errors import InstanceError

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC%z"
#: What the IOC has not set yet: snapshots on, at most two per second.
DEFAULT_PUBLISHING = (True, 0.5)
#: A worker reports its status at least every second while it works (core.worker.STATUS_PERIOD),
#: waiting for frames included; this much silence means it is stuck.
DEFAULT_STALL_TIMEOUT = 10.0
#: Workers run this much nicer than the control process (``--worker-nice``; 19 is the nicest).
DEFAULT_WORKER_NICE = 5
MAX_NICE = 19


@dataclass(frozen=True)
class Supervision:
    """How the control process watches its workers (``--stall-timeout``, ``--stall-action``,
    ``--worker-memory-limit``).

    - ``stall_timeout``: a running worker silent for this long (no status, no frame result: a user
      function in an endless loop, a processing thread that never returns) is marked stalled
      (state Error, "Stalled: ..."); 0 switches the watchdog off. It recovers by itself when the
      worker speaks again.
    - ``stop_stalled``: end a stalled worker instead of only marking it.
    - ``memory_limit``: bytes of resident memory a worker may use; one over it is ended with an
      error naming both figures. 0: no limit.
    - ``period``: how often the supervisor looks (seconds).
    - ``worker_nice``: how much nicer (lower CPU priority, 0-19) workers run than the control
      process, so that a caget is answered at once when processing takes every core.
    """

    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    stop_stalled: bool = False
    memory_limit: int = 0
    period: float = 0.5
    worker_nice: int = DEFAULT_WORKER_NICE

    def __post_init__(self) -> None:
        if self.stall_timeout < 0:
            raise ValueError(f"stall timeout must be >= 0 s, got {self.stall_timeout}")
        if self.memory_limit < 0:
            raise ValueError(f"worker memory limit must be >= 0 bytes, got {self.memory_limit}")
        if not 0 <= self.worker_nice <= MAX_NICE:
            raise ValueError(f"worker nice must be 0 to {MAX_NICE}, got {self.worker_nice}")
        if self.period <= 0:
            raise ValueError(f"supervision period must be > 0 s, got {self.period}")


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
        #: why its worker ended on its own or was ended by the supervisor (kept until deleted or
        #: restarted); empty while it runs or after a stop that was asked for or reported
        self.death = ""
        #: the stall the watchdog found (empty: the worker speaks)
        self.stalled = ""
        #: the newest error the worker reported (its status ``error`` or an Error state's message)
        self.last_error = ""
        #: the last measurement of the worker (:meth:`health`) and when it was made (monotonic)
        self._health: WorkerHealth | None = None
        self._health_time = -HEALTH_PERIOD

    @property
    def alive(self) -> bool:
        return self.handle is not None and self.handle.alive

    def health(self, now: float | None = None) -> WorkerHealth | None:
        """The worker's CPU, memory, uptime and pid, measured at most once per ``HEALTH_PERIOD``
        (the PVs and the REST statistics share the measurement: psutil's CPU percent is since its
        previous call, so two callers measuring on their own would halve each other's interval);
        None when no worker runs."""
        handle = self.handle
        if handle is None or not handle.alive or self.pid is None:
            self._health = None
            return None
        now = time.monotonic() if now is None else now
        if self._health is None or now - self._health_time >= HEALTH_PERIOD:
            usage = handle.usage()
            self._health = WorkerHealth(pid=int(self.pid), cpu=usage["cpu"], memory=int(usage["memory"]),
                                        uptime=now - self.started_monotonic)
            self._health_time = now
        return replace(self._health, uptime=now - self.started_monotonic)

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
            **self._usage(),
            "header_changes": header_changes,
            "frame_shape": frame_shape,
        }


    def _usage(self) -> dict[str, float]:
        """cam_server's ``cpu`` (% of one core) and ``memory`` (RSS bytes) from :meth:`health`."""
        if self.handle is None:
            return {}
        health = self.health()
        return {"cpu": 0.0, "memory": 0.0} if health is None else {"cpu": health.cpu, "memory": float(health.memory)}


InstanceT = TypeVar("InstanceT", bound=Instance)
StatusT = TypeVar("StatusT")


def failure_of(instance: Instance, handle: WorkerHandle) -> str:
    """Why an instance's worker ended against anyone's wish: the supervisor's reason, or how it
    died ("Worker died (killed by SIGKILL); last error: ..."); empty for an ordinary stop."""
    if handle.supervisor_error:
        return handle.supervisor_error
    death = handle.death
    if not death:
        return ""
    last = f"; last error: {instance.last_error}" if instance.last_error else ""
    return f"Worker died ({death}){last}"


def exit_state(handle: WorkerHandle, failure: str = "") -> tuple[DetectorState, str]:
    """A stopped worker's state and message: its failure (:func:`failure_of`), its error, or
    "Stopped (<reason>)"."""
    if failure:
        return DetectorState.Error, failure
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
                 log_level: int, supervision: Supervision | None = None) -> None:
        self._supervision = supervision if supervision is not None else Supervision()
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
        #: instances whose worker died or was ended by the supervisor: visible until deleted or restarted
        self._dead: dict[str, InstanceT] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None

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

    def _on_dead_cleared(self, instance: InstanceT) -> None:
        """A dead instance was deleted or stopped by a client (default: nothing more)."""

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
        self._dead.pop(instance.key, None)  # a restart ends what the last worker's death left
        self._instances[instance.key] = instance
        self._ensure_supervisor()
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
        handle.lower_priority(self._supervision.worker_nice)
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
        failure = failure_of(instance, handle) if handle.has_started else ""
        if failure:
            instance.death = failure
            self._dead[key] = instance
            log.error("%s %s: %s (pid %s)", self.kind, key, failure, instance.pid)
        self._on_exited(instance, handle)

    def _on_worker_message(self, key: str, kind: str, payload: Any) -> None:
        if kind == "status":
            payload = dict(payload)
            payload["state"] = DetectorState(payload["state"])
            instance = self._instances.get(key)
            if instance is not None:
                self._note_status(instance, payload)
            self._on_status(key, payload)
        elif kind == "image":
            self._emit(f"{self.kind}_image", self._snapshot(key, payload))
        elif kind == "log":
            log_worker_record(f"camioc.{self.kind}.{key}", payload)
        elif kind != "stopped":  # "stopped" is handled when the process has exited
            self._on_message(key, kind, payload)

    def _note_status(self, instance: InstanceT, payload: dict[str, Any]) -> None:
        """What supervision keeps of a status: the newest error; a stalled worker that speaks again."""
        error = str(payload.get("error") or "")
        if not error and payload["state"] == DetectorState.Error:
            error = str(payload.get("message") or "")
        if error:
            instance.last_error = error
        if instance.stalled:
            log.warning("%s %s: the worker responds again (was: %s)", self.kind, instance.key, instance.stalled)
            instance.stalled = ""

    # ================================================================== supervision
    def _spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` as a task this manager owns (cancelled by :meth:`close`)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_supervisor(self) -> None:
        supervision = self._supervision
        if self._supervisor is None and (supervision.stall_timeout > 0 or supervision.memory_limit > 0):
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        """Every ``period``: mark silent workers stalled, end those over their memory limit."""
        supervision = self._supervision
        while True:
            await asyncio.sleep(supervision.period)
            try:
                self._check_workers(supervision, time.monotonic())
            except Exception:  # supervision must go on whatever one check raised
                log.exception("%s supervision failed", self.kind)

    def _check_workers(self, supervision: Supervision, now: float) -> None:
        for key, instance in list(self._instances.items()):
            handle = instance.handle
            if handle is None or not handle.alive or not handle.has_started or handle.supervisor_error:
                continue
            if supervision.memory_limit > 0:
                rss = handle.rss()
                if rss > supervision.memory_limit:
                    self._end_worker(instance, handle, (
                        f"Stopped: worker memory {rss / 2**20:.0f} MiB exceeded the limit of "
                        f"{supervision.memory_limit / 2**20:.0f} MiB (--worker-memory-limit)"))
                    continue
            silent = now - handle.last_message_time
            if supervision.stall_timeout > 0 and silent > supervision.stall_timeout and not instance.stalled:
                instance.stalled = (f"Stalled: no frame processed and no status from the worker for "
                                    f"{silent:.0f} s (--stall-timeout {supervision.stall_timeout:g} s)")
                log.error("%s %s: %s", self.kind, key, instance.stalled)
                if supervision.stop_stalled:
                    self._end_worker(instance, handle, instance.stalled + "; stopped (--stall-action stop)")
                else:
                    self._set_status(key, state=DetectorState.Error, message=instance.stalled)

    def _end_worker(self, instance: InstanceT, handle: WorkerHandle, error: str) -> None:
        log.error("%s %s: %s", self.kind, instance.key, error)
        handle.supervisor_error = error  # set now: the next check leaves it alone
        self._spawn(handle.end(error))

    def _shown_instance(self, key: str) -> InstanceT | None:
        """The instance ``key`` names for clients that look: running, or dead and not deleted yet."""
        instance = self._instances.get(key)
        return instance if instance is not None else self._dead.get(key)

    def _dead_fields(self, key: str) -> dict[str, Any]:
        """What an instance's info adds while it is dead: its state and why (empty otherwise)."""
        instance = self._dead.get(key)
        return {} if instance is None else {"state": "Error", "error": instance.death}

    def _clear_dead(self, key: str) -> bool:
        """Forget a dead instance (a client deleted or stopped it); False if ``key`` is not dead."""
        instance = self._dead.pop(key, None)
        if instance is None:
            return False
        log.info("%s %s: dead instance removed", self.kind, key)
        self._on_dead_cleared(instance)
        return True

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

    def worker_health(self) -> dict[str, WorkerHealth]:
        """The health of every running instance's worker (:meth:`Instance.health`)."""
        now = time.monotonic()
        measured = {key: instance.health(now) for key, instance in list(self._instances.items())}
        return {key: health for key, health in measured.items() if health is not None}

    @property
    def dead_names(self) -> list[str]:
        """The keys of instances whose worker died (shown until deleted or restarted)."""
        return list(self._dead)

    async def stop(self, name: str, /) -> None:
        """Stop the instance ``name`` names (nothing if none runs); a dead one is forgotten."""
        key = self._instance_key(name)
        if key is None:
            return
        if self._clear_dead(key):
            return
        async with self._stop_guard(key):
            instance = self._instances.get(key)
            if instance is not None and instance.handle is not None:
                await instance.handle.stop()

    async def stop_all(self) -> None:
        """Stop every instance and forget every dead one."""
        for key in list(self._dead):
            self._clear_dead(key)
        await asyncio.gather(*(self.stop(key) for key in list(self._instances)))

    async def delete_instance(self, name: str, /) -> None:
        """cam_server's ``DELETE /instance/<name>``: stops it."""
        await self.stop(name)

    def instance_info(self, name: str, /) -> dict[str, Any]:
        raise NotImplementedError

    def active_instances(self) -> dict[str, dict[str, Any]]:
        """cam_server's ``/info``: the info of every running instance, and of every dead one (with
        ``is_stream_active`` false, ``state`` and ``error``) until it is deleted or restarted."""
        return {key: self.instance_info(key) for key in [*self._instances, *self._dead]}

    async def close(self) -> None:
        """Stop every instance and the supervision (shutdown)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        await self.stop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


__all__ = [
    "DEFAULT_PUBLISHING",
    "DEFAULT_STALL_TIMEOUT",
    "TIME_FORMAT",
    "Instance",
    "InstanceManager",
    "Supervision",
    "exit_state",
    "failure_of",
]
