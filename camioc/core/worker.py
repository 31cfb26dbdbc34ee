"""Worker-process plumbing shared by camera and pipeline instances.

Why processes: a camera or pipeline instance does CPU-heavy work (transforms, processing, user
functions) and talks to EPICS through libca; one process per instance isolates crashes and user
code, gives each heavy instance its own core, and keeps the control process's event loop free.

The control side (:class:`WorkerHandle`) and the worker side (:class:`WorkerLink`) talk over one
duplex ``multiprocessing.Pipe``. Messages are ``(kind, payload)`` tuples:

- worker -> control: ``("started", {...})``, ``("status", {...})``, ``("image", {...})``,
  ``("reply", (request_id, ok, value))``, ``("log", (level, logger, message))``,
  ``("stopped", {"reason": str, "error": str})``;
- control -> worker: ``("config", config)`` (the typed config; a pipeline worker also takes
  the effective dict), ``("request", (request_id, what, args))``, ``("publishing", {...})``,
  ``("hold", bool)``, ``("stop", None)``.

A reader thread on the control side does the blocking ``recv`` (image snapshots are megabytes;
unpickling them must not stall the loop) and hands the messages to the loop through a
:class:`~camioc.core.inbox.LatestWinsInbox`: state messages (status, image, results) that the
loop has not taken yet are replaced by newer ones, so a loop that lags never piles them up.
When the worker dies, the pipe reports EOF and the handle resolves its exit. When the control
process dies, the worker sees EOF on its end and stops: no orphans.

Both kinds of worker are an :class:`InstanceWorker` started by :func:`serve_worker`: the command
handling, the status cadence, snapshots, the no-client stop and the stopped message are written
once there; a camera or pipeline worker adds its loop, its status fields and its config handling.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from camioc.core.api import DetectorState
from camioc.core.inbox import LatestWinsInbox
from camioc.core.lifeline import end_with_parent, watch_parent
from camioc.errors import InstanceError

log = logging.getLogger(__name__)

# Workers are forked from a fork server (a clean, single-threaded process started once) that has
# preloaded and compiled everything (camioc.core.preload): instances start in ~0.1 s instead of the
# seconds a fresh interpreter needs, and nothing of the control process (threads, event loop,
# sockets) leaks into a worker, unlike a plain fork.
_MP_CONTEXT = multiprocessing.get_context("forkserver")
_MP_CONTEXT.set_forkserver_preload(["camioc.core.preload"])


def start_worker_server() -> None:
    """Start the worker fork server now (blocking, seconds): call it from a thread at start-up."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def stop_worker_server() -> None:
    """End the fork server and the resource tracker and wait for both (blocking, < 1 s): the
    last step of a shutdown, so that SIGTERM returns only when no camioc process is left.

    multiprocessing has no public call for this; its ``_stop`` methods are what its own tests
    use. Without them both processes notice the end of the control process on their own, but
    only up to a second later.
    """
    from multiprocessing import forkserver, resource_tracker

    for server in (forkserver._forkserver, resource_tracker._resource_tracker):  # type: ignore[attr-defined]
        stop = getattr(server, "_stop", None)
        if stop is None:
            continue
        try:
            stop()
        except (OSError, ChildProcessError, AssertionError) as exc:  # already gone
            log.debug("stopping %s: %s", type(server).__name__, exc)


MessageCallback = Callable[[str, Any], None]


class WorkerHandle:
    """Control-side handle of one worker process (start, talk to, stop).

    All public methods are called on the event-loop thread.
    """

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        on_message: MessageCallback,
        on_exit: Callable[[WorkerHandle], None],
    ) -> None:
        self.name = name
        self._target = target
        self._args = args
        self._on_message = on_message
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._started: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._requests: dict[int, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._inbox = LatestWinsInbox()
        self.stop_reason = ""
        self.stop_error = ""
        self.stop_error_type = ""
        #: the worker said why it stopped (its ``stopped`` message): it did not die
        self.reported_stop = False
        #: the control side asked it to stop (:meth:`stop`)
        self.stop_requested = False
        #: why the supervisor ended it (:meth:`end`: stalled, over its memory limit)
        self.supervisor_error = ""
        #: when the last message of the worker arrived (monotonic): its heartbeat
        self.last_message_time = time.monotonic()
        self._psutil: Any = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self, timeout: float) -> dict[str, Any]:
        """Spawn the worker and wait for its ``started`` message (or its failure)."""
        parent_conn, child_conn = _MP_CONTEXT.Pipe(duplex=True)
        self._conn = parent_conn
        self._process = _MP_CONTEXT.Process(
            target=self._target, args=(child_conn, *self._args), name=f"camioc-{self.name}", daemon=True
        )
        # in a thread: the first start may wait for the fork server to import and compile (seconds),
        # and the event loop must keep serving CA and REST meanwhile
        await asyncio.to_thread(self._process.start)
        child_conn.close()
        threading.Thread(target=self._read_loop, name=f"camioc-reader-{self.name}", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            await self.stop(timeout=2.0)
            raise InstanceError(f"'{self.name}' instance did not start within {timeout:g} s.") from None

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop; terminate it if it does not within ``timeout``."""
        if self._process is None:
            return
        self.stop_requested = True
        self.send("stop", None)
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except TimeoutError:
            if not self._process.is_alive():
                return
            log.warning("worker %s did not stop within %.1f s; terminating", self.name, timeout)
            self._process.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), 2.0)
            except TimeoutError:
                self._process.kill()
                await asyncio.wait_for(asyncio.shield(self._exited), 2.0)

    async def end(self, error: str, grace: float = 1.0) -> None:
        """End the worker now, without asking it (it may be stuck): SIGTERM, SIGKILL after
        ``grace`` seconds. ``error`` is why: the state and message its instance is left in."""
        process = self._process
        if process is None or self._exited.done():
            return
        self.supervisor_error = error
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), grace)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(asyncio.shield(self._exited), 5.0)

    @property
    def death(self) -> str:
        """Why the worker ended when nobody asked it to and it did not say why (``"killed by
        SIGKILL"``, ``"exit code 3"``); empty for a stop it reported or one that was asked for."""
        if not self._exited.done() or self.reported_stop or self.stop_requested or self.supervisor_error:
            return ""
        return exit_reason(self.exitcode)

    @property
    def alive(self) -> bool:
        return self._process is not None and not self._exited.done()

    @property
    def has_started(self) -> bool:
        """The worker sent its ``started`` message (it ran, whatever happened since)."""
        return self._started.done() and not self._started.cancelled() and self._started.exception() is None

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def wait_exited(self) -> None:
        await asyncio.shield(self._exited)

    def usage(self) -> dict[str, float]:
        """The worker's CPU (% of one core since the previous call) and resident memory (bytes),
        for cam_server's instance statistics; zeros when it is not running."""
        import psutil

        if self.pid is None or not self.alive:
            return {"cpu": 0.0, "memory": 0.0}
        try:
            if self._psutil is None or self._psutil.pid != self.pid:
                self._psutil = psutil.Process(self.pid)
            return {"cpu": float(self._psutil.cpu_percent(None)), "memory": float(self._psutil.memory_info().rss)}
        except psutil.Error:
            return {"cpu": 0.0, "memory": 0.0}

    def lower_priority(self, increment: int) -> None:
        """Make the worker ``increment`` nicer than the control process (every thread: Linux nice
        values are per thread, and a thread inherits its creator's). The control process then gets a
        core first when processing fills them all, so CA, PVA and REST stay responsive.

        The worker may still be starting threads: passes repeat until one finds every thread niced."""
        import psutil

        if increment <= 0 or self.pid is None or not self.alive:
            return
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + increment)
        for _ in range(20):
            try:
                threads = [thread.id for thread in psutil.Process(self.pid).threads()]
            except psutil.Error:
                return
            changed = False
            for tid in threads:
                try:
                    if os.getpriority(os.PRIO_PROCESS, tid) < target:
                        os.setpriority(os.PRIO_PROCESS, tid, target)
                        changed = True
                except OSError:  # the thread or the worker ended meanwhile
                    pass
            if not changed:
                return

    def rss(self) -> int:
        """The worker's resident memory in bytes (0 when it is not running)."""
        import psutil

        if self.pid is None or not self.alive:
            return 0
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    # ------------------------------------------------------------------ messages
    def send(self, kind: str, payload: Any) -> bool:
        """Send a message to the worker; False if it is gone."""
        conn = self._conn
        if conn is None or self._exited.done():
            return False
        try:
            with self._send_lock:
                conn.send((kind, payload))
        except (OSError, ValueError):
            return False
        return True

    async def request(self, what: str, args: Any = None, timeout: float = 5.0) -> Any:
        """Ask the worker something and wait for its reply (raises what the worker raised)."""
        request_id = next(self._request_ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._requests[request_id] = future
        try:
            if not self.send("request", (request_id, what, args)):
                raise InstanceError(f"'{self.name}' instance is not running.")
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise InstanceError(f"'{self.name}' instance did not answer within {timeout:g} s.") from None
        finally:
            self._requests.pop(request_id, None)

    def _read_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that cannot be unpickled: report, keep reading
                log.exception("worker %s sent an unreadable message", self.name)
                continue
            if not self._inbox.put(message):
                continue  # a drain is already scheduled and will take it
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # loop closed: the control process is shutting down
                return
        process = self._process
        if process is not None:
            process.join(timeout=5)
        try:
            self._loop.call_soon_threadsafe(self._finish)
        except RuntimeError:
            pass

    @property
    def replaced_messages(self) -> int:
        """State messages replaced by newer ones before the loop took them (how far it lagged)."""
        return self._inbox.replaced

    def _drain(self) -> None:
        for message in self._inbox.take():
            self._dispatch(message)

    def _dispatch(self, message: tuple[str, Any]) -> None:
        kind, payload = message
        self.last_message_time = time.monotonic()
        if kind == "started":
            if not self._started.done():
                self._started.set_result(payload)
            return
        if kind == "reply":
            request_id, ok, value = payload
            future = self._requests.get(request_id)
            if future is not None and not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value if isinstance(value, BaseException) else InstanceError(str(value)))
            return
        if kind == "stopped":
            self.reported_stop = True
            self.stop_reason = payload.get("reason", "")
            self.stop_error = payload.get("error", "")
            self.stop_error_type = payload.get("error_type", "")
        try:
            self._on_message(kind, payload)
        except Exception:
            log.exception("handling %s message of worker %s failed", kind, self.name)

    def _finish(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if not self._started.done():
            error = self.stop_error or f"'{self.name}' instance terminated (exit code {self.exitcode}). See logs."
            self._started.set_exception(InstanceError(error))
            self._started.exception()  # mark retrieved: start() may not be awaiting any more
        for future in self._requests.values():
            if not future.done():
                future.set_exception(InstanceError(f"'{self.name}' instance stopped."))
        if not self._exited.done():
            self._exited.set_result(None)
        try:
            self._on_exit(self)
        except Exception:
            log.exception("exit handler of worker %s failed", self.name)


def exit_reason(exitcode: int | None) -> str:
    """A process's end as people read it: ``"killed by SIGSEGV"`` for a signal, else the exit code."""
    if exitcode is None:
        return "exit code unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class WorkerLink:
    """Worker-side end of the pipe: thread-safe sends, non-blocking command polling."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.parent_gone = False

    def send(self, kind: str, payload: Any) -> None:
        try:
            with self._lock:
                self._conn.send((kind, payload))
        except (OSError, ValueError, BrokenPipeError):
            self.parent_gone = True

    def commands(self) -> list[tuple[str, Any]]:
        """Every command waiting now (never blocks). EOF (parent gone) becomes a ``stop``."""
        out: list[tuple[str, Any]] = []
        try:
            while self._conn.poll():
                out.append(self._conn.recv())
        except (EOFError, OSError):
            self.parent_gone = True
            out.append(("stop", None))
        return out

    def reply(self, request_id: int, ok: bool, value: Any) -> None:
        self.send("reply", (request_id, ok, value))


class ForwardingLogHandler(logging.Handler):
    """Sends a worker's log records (WARNING and up by default) to the control process's log."""

    def __init__(self, link: WorkerLink, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._link = link

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._link.send("log", (record.levelno, record.name, record.getMessage()))
        except Exception:
            self.handleError(record)


def log_worker_record(logger_name: str, payload: tuple[int, str, str]) -> None:
    """Log a record a worker forwarded (``("log", (level, logger, message))``) in the control process.

    The worker already decided that the record is worth logging (its own level, e.g. DEBUG with a
    config's ``debug``), so the control process's logger level does not filter it again: the record
    goes to the handlers (the REST log routes, the instance's log ring), which apply their own levels.
    """
    level, _worker_logger, message = payload
    logger = logging.getLogger(logger_name)
    logger.handle(logger.makeRecord(logger.name, int(level), "(worker)", 0, "%s", (message,), None))


def setup_worker_logging(link: WorkerLink, level: int, tag: str) -> None:
    """A worker's logging: stderr lines tagged with the instance, WARNING+ forwarded to the control
    process (where they reach the REST log routes and the instance's log ring); at DEBUG level (the
    config's ``debug``) everything is forwarded."""
    root = logging.getLogger()
    root.setLevel(level)
    stderr = logging.StreamHandler()
    stderr.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [{tag}] %(name)s: %(message)s"))
    root.addHandler(stderr)
    root.addHandler(ForwardingLogHandler(link, logging.DEBUG if level <= logging.DEBUG else logging.WARNING))


class RateMeter:
    """Frames per second over a sliding window of about one second."""

    def __init__(self, window: float = 1.0) -> None:
        self._window = window
        self._times: list[float] = []

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        cutoff = now - 2 * self._window
        if len(self._times) > 4096 or (self._times and self._times[0] < cutoff):
            self._times = [t for t in self._times if t >= cutoff]

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        recent = [t for t in self._times if t >= now - self._window]
        if len(recent) < 2:
            return float(len(recent)) / self._window if recent and now - recent[0] < self._window else 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0


#: A worker's status summary is sent at most this often unless something changed.
STATUS_PERIOD = 1.0


def die_with_parent() -> None:
    """End this worker when the fork server that made it ends (it ends with the control process):
    the kernel's parent-death signal, and the parent watch for systems without it."""
    end_with_parent()
    watch_parent()


def serve_worker(link_conn: multiprocessing.connection.Connection, *, tag: str, log_level: int,
                 main: Callable[[WorkerLink], int]) -> NoReturn:
    """The body of a worker process: logging, ``main(link)``, the failure report, the exit.

    ``main`` returns the process exit code. It never raises out of here: an exception is logged
    and reported to the control process as ``("stopped", {"reason": "error", ...})`` (exit code 1),
    so the manager shows the error instead of a bare "terminated". The process leaves with
    ``os._exit``: libca/zmq threads must not hang the interpreter teardown.
    """
    die_with_parent()
    link = WorkerLink(link_conn)
    setup_worker_logging(link, log_level, tag)
    exit_code = 0
    try:
        exit_code = main(link)
    except Exception as exc:  # task boundary: report the failure to the control process
        log.exception("%s worker failed", tag)
        link.send("stopped", {"reason": "error", "error": str(exc) or type(exc).__name__,
                              "error_type": type(exc).__name__, "exit_code": 1})
        exit_code = 1
    finally:
        link_conn.close()
    os._exit(exit_code)


class InstanceWorker:
    """What every instance worker (camera, pipeline) does the same way, in the worker process.

    - commands from the control process (:meth:`poll_commands`): ``stop``, ``hold``,
      ``publishing`` and ``request`` are answered here; ``config`` goes to :meth:`apply_config`,
      a request's answer comes from :meth:`answer`, any other kind to :meth:`other_command`;
    - the status summary (:meth:`report_status`): at most every :data:`STATUS_PERIOD` seconds,
      at once when forced (every state change); the fields common to both kinds plus
      :meth:`status_fields`;
    - image snapshots at the period the IOC asked for (:meth:`snapshot_due`, :meth:`send_snapshot`);
    - the ``no_client_timeout`` stop (:meth:`without_clients`) and the final ``stopped`` message
      (:meth:`finish`).
    """

    def __init__(self, link: WorkerLink, *, snapshot_enabled: bool, snapshot_period: float, hold: bool) -> None:
        self.link = link
        self.state = DetectorState.Initializing
        self.message = "Starting"
        self.running = True
        self.hold = hold  # ignore no_client_timeout (started by an explicit Acquire/EnableCallbacks)
        self.snapshot_enabled = snapshot_enabled
        self.snapshot_period = snapshot_period
        self.snapshot_counter = 0
        self.frame_count = 0
        self.rate = RateMeter()
        self.last_pulse_id = 0
        self.last_timestamp = 0.0
        self.stream_address = ""
        self.clients = 0
        self._last_status = 0.0
        self._last_snapshot = 0.0

    # ------------------------------------------------------------------ commands
    def poll_commands(self) -> list[tuple[str, Any]]:
        """Handle every command waiting now (never blocks); returns them, for the loop's own use."""
        commands = self.link.commands()
        for kind, payload in commands:
            self.handle_command(kind, payload)
        return commands

    def handle_command(self, kind: str, payload: Any) -> None:
        if kind == "stop":
            self.running = False
        elif kind == "config":
            self.apply_config(payload)
        elif kind == "hold":
            self.hold = bool(payload)
        elif kind == "publishing":
            self.snapshot_enabled = bool(payload.get("enabled", True))
            self.snapshot_period = max(0.0, float(payload.get("period", self.snapshot_period)))
        elif kind == "request":
            request_id, what, args = payload
            try:
                value = self.answer(what, args)
            except Exception as exc:  # the asker gets the exception, the worker goes on
                self.link.reply(request_id, False, exc)
            else:
                self.link.reply(request_id, True, value)
        else:
            self.other_command(kind, payload)

    def apply_config(self, config: Any) -> None:
        """A live config change (``("config", ...)``)."""
        raise NotImplementedError

    def answer(self, what: str, args: Any) -> Any:
        """The value of a request (``WorkerHandle.request``); raise to answer with an error."""
        raise LookupError(f"unknown request {what!r}")

    def other_command(self, kind: str, payload: Any) -> None:
        """A command only this kind of worker knows (default: ignored)."""
        del payload
        log.debug("ignored command %r", kind)

    # ------------------------------------------------------------------ reporting
    def set_state(self, state: DetectorState, message: str) -> None:
        """Enter a state and tell the control process at once."""
        self.state, self.message = state, message
        self.report_status(force=True)

    def report_status(self, force: bool = False, now: float | None = None, clients: int | None = None) -> None:
        """Send the status summary if forced or :data:`STATUS_PERIOD` has passed since the last."""
        now = time.monotonic() if now is None else now
        if not force and now - self._last_status < STATUS_PERIOD:
            return
        self._last_status = now
        if clients is not None:
            self.clients = clients
        status: dict[str, Any] = {
            "state": int(self.state), "message": self.message, "stream_address": self.stream_address,
            "frame_count": self.frame_count, "frame_rate": self.rate.rate(now), "clients": self.clients,
            "pulse_id": self.last_pulse_id, "timestamp": self.last_timestamp,
        }
        status.update(self.status_fields())
        self.link.send("status", status)

    def status_fields(self) -> dict[str, Any]:
        """This kind of worker's own status fields."""
        return {}

    def snapshot_due(self, now: float) -> bool:
        return self.snapshot_enabled and now - self._last_snapshot >= self.snapshot_period

    def send_snapshot(self, image: np.ndarray, now: float | None = None) -> None:
        """An image snapshot for the IOC (counted; pulse id and timestamp of the last frame)."""
        self._last_snapshot = time.monotonic() if now is None else now
        self.snapshot_counter += 1
        self.link.send("image", {"image": np.ascontiguousarray(image), "pulse_id": self.last_pulse_id,
                                 "timestamp": self.last_timestamp, "counter": self.snapshot_counter})

    # ------------------------------------------------------------------ stopping
    def without_clients(self, output: Any, timeout: float, started: float, now: float) -> bool:
        """``no_client_timeout``: True once the output has had no client for ``timeout`` seconds
        (and the worker has run that long); never with ``timeout`` 0, while held, or for an
        output that has no clients to count (a file)."""
        return (timeout > 0 and not self.hold and now - started > timeout
                and hasattr(output, "seconds_without_clients") and output.seconds_without_clients() > timeout)

    def finish(self, reason: str, *, state: DetectorState = DetectorState.Idle, **stopped: Any) -> None:
        """The last status (``Stopped (<reason>)``) and the ``stopped`` message."""
        self.set_state(state, f"Stopped ({reason})")
        self.link.send("stopped", {"reason": reason, **stopped})


__all__ = [
    "STATUS_PERIOD",
    "ForwardingLogHandler",
    "InstanceWorker",
    "RateMeter",
    "WorkerHandle",
    "WorkerLink",
    "exit_reason",
    "serve_worker",
    "setup_worker_logging",
    "start_worker_server",
    "stop_worker_server",
]
