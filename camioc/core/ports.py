"""Stream port allocation (cam_server semantics: cycle through a range, skip ports in use)."""

from __future__ import annotations

import socket

from camioc.errors import InstanceError

ALL_PORTS_USED = "All ports are used. Stop some instances before opening a new stream."
#: How often an instance start is tried on a fresh port when its port was taken meanwhile.
START_ATTEMPTS = 3


def port_taken(error: BaseException) -> bool:
    """Whether a worker failed because its stream port was bound by someone else meanwhile.

    The allocator checks a port with a test bind, but another program can take it before the
    worker binds (a race no check can close); the worker's bind error then says so.
    """
    return "Address already in use" in str(error)


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse ``START:END`` or ``START-END`` (END exclusive, like cam_server's ranges)."""
    for separator in (":", "-", ","):
        if separator in text:
            start_text, end_text = text.split(separator, 1)
            break
    else:
        raise ValueError(f"invalid port range {text!r}: expected START:END")
    start, end = int(start_text), int(end_text)
    if not 0 < start < end <= 65536:
        raise ValueError(f"invalid port range {text!r}: need 0 < START < END <= 65536")
    return start, end


class PortAllocator:
    """Hands out stream ports from ``[start, end)``.

    Ports are cycled (the next search starts after the last port given out, as cam_server does),
    a port held by another instance is skipped, and so is a port some other program has bound
    (checked with a test bind). ``preferred`` lets a restarted instance get its old port back.
    """

    def __init__(self, port_range: tuple[int, int], host: str = "127.0.0.1") -> None:
        self._start, self._end = port_range
        self._host = host
        self._used: set[int] = set()
        self._next = self._start

    def allocate(self, preferred: int | None = None) -> int:
        if preferred is not None and preferred not in self._used and self._is_free(preferred):
            self._used.add(preferred)
            return preferred
        size = self._end - self._start
        for offset in range(size):
            port = self._start + (self._next - self._start + offset) % size
            if port in self._used or not self._is_free(port):
                continue
            self._used.add(port)
            self._next = port + 1 if port + 1 < self._end else self._start
            return port
        raise InstanceError(ALL_PORTS_USED)

    def reserve(self, port: int) -> None:
        """Claim a fixed port (config key ``port``); InstanceError if it is taken."""
        if port in self._used or not self._is_free(port):
            raise InstanceError(f"Port {port} is already in use.")
        self._used.add(port)

    def release(self, port: int) -> None:
        self._used.discard(port)

    def _is_free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self._host if self._host not in ("*", "") else "0.0.0.0", port))
            except OSError:
                return False
        return True


__all__ = ["ALL_PORTS_USED", "START_ATTEMPTS", "PortAllocator", "parse_port_range", "port_taken"]
