"""Peer counting for ZeroMQ sockets through libzmq's socket monitor.

A bsread stream has no application-level handshake, so "how many clients are connected" can only
be learned from the transport: libzmq reports every accepted/connected and every disconnected
peer on a monitor PAIR socket. cam_server uses the same signal to stop idle camera and pipeline
instances after ``no_client_timeout`` seconds; camioc's workers do the same with
:meth:`PeerMonitor.seconds_without_clients`.

The events are read on a small daemon thread (not lazily on the caller's thread) because the
*time* of a disconnect matters for the idle timeout and monitor events carry no timestamps. The
count is read under a lock, so :meth:`PeerMonitor.count` is cheap and safe from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = ["PeerMonitor"]

_log = logging.getLogger(__name__)

_EVENTS = (
    zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_MONITOR_STOPPED
)
_POLL_MS = 200  # how often the monitor thread re-checks its stop flag if no event arrives


class PeerMonitor:
    """Counts the peers of one ZMQ socket (ACCEPTED/CONNECTED minus DISCONNECTED events).

    Create it *before* the socket binds or connects so that no early event is missed, and
    :meth:`close` it *before* closing the socket. For a binding socket a peer is an accepted
    connection (a SUB or PULL client); for a connecting socket it is an established connection to
    the remote end.

    A peer is counted at the TCP level (ACCEPTED), a moment before the ZMTP handshake completes and,
    for SUB clients, before their subscription reaches a PUB socket: "counted" does not yet mean
    "receives the next message" (the usual ZeroMQ slow-joiner window).
    """

    def __init__(self, socket: zmq.Socket, *, name: str = "zmq") -> None:
        self._socket = socket
        self._monitor = socket.get_monitor_socket(_EVENTS)
        self._cond = threading.Condition()
        self._count = 0
        self._since_zero = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-peer-monitor", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ queries
    def count(self) -> int:
        """Number of peers connected now."""
        with self._cond:
            return self._count

    def seconds_without_clients(self) -> float:
        """0.0 while a peer is connected, else seconds since the last one left (or since start)."""
        with self._cond:
            if self._count > 0:
                return 0.0
            return time.monotonic() - self._since_zero

    def wait_for(self, predicate: Callable[[int], bool], timeout: float) -> bool:
        """Block until ``predicate(count)`` holds or ``timeout`` seconds pass; return whether it holds.

        Event-driven (a condition variable notified by the monitor thread), so tests and
        start-up code can wait for a subscriber without sleeping.
        """
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._count), timeout)

    # ------------------------------------------------------------------ lifecycle
    def close(self, timeout: float = 1.0) -> None:
        """Stop monitoring (idempotent). Must be called before the monitored socket is closed."""
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            if not self._socket.closed:
                self._socket.disable_monitor()
        except zmq.ZMQError as exc:  # the socket may already be gone; the thread still exits
            _log.debug("disable_monitor failed: %s", exc)
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("peer monitor thread did not stop within %.1f s", timeout)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        monitor = self._monitor
        try:
            while not self._stop.is_set() or monitor.poll(0):
                if not monitor.poll(_POLL_MS):
                    continue
                try:
                    event = recv_monitor_message(monitor)
                except zmq.ZMQError as exc:
                    _log.debug("peer monitor receive failed: %s", exc)
                    break
                kind = int(event["event"])
                if kind == zmq.EVENT_MONITOR_STOPPED:
                    break
                self._apply(kind)
        finally:
            monitor.close(linger=0)

    def _apply(self, kind: int) -> None:
        with self._cond:
            if kind in (zmq.EVENT_ACCEPTED, zmq.EVENT_CONNECTED):
                self._count += 1
            elif kind == zmq.EVENT_DISCONNECTED:
                # Clamp: a DISCONNECTED for a connection whose ACCEPTED predates the monitor must
                # not drive the count negative.
                self._count = max(0, self._count - 1)
                if self._count == 0:
                    self._since_zero = time.monotonic()
            else:
                return
            self._cond.notify_all()
