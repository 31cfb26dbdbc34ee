"""A bsread source owned by a test: camioc's BsreadSender on a free 127.0.0.1 port, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from camioc.streams.bsread import BsreadSender

Message = Callable[[int], dict[str, Any] | None]


class PacedSource:
    """A bsread source on a free 127.0.0.1 port sending ``make(pid)`` every ``interval`` s (None: skip
    that pulse id) from ``first_pid`` on, in a thread, until stopped."""

    def __init__(self, make: Message, mode: str = "PUSH", first_pid: int = 1000, interval: float = 0.02,
                 port: int | None = None, timestamp: Callable[[int], tuple[int, int]] | None = None,
                 pids: Iterator[int] | None = None) -> None:
        self.sender = BsreadSender(mode=mode, port=port, host="127.0.0.1", block=True, send_timeout=0.2)
        self.sender.open()
        self.address = self.sender.endpoint
        self.port = self.sender.port
        self._make = make
        self._pids = pids if pids is not None else iter(range(first_pid, 10**12))
        self._interval = interval
        self._timestamp = timestamp or (lambda pid: (1_700_000_000 + pid // 100, (pid % 100) * 10_000_000))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for pid in self._pids:
                if self._stop.wait(self._interval):
                    return
                data = self._make(pid)
                if data is not None:
                    self.sender.send(data, pulse_id=pid, timestamp=self._timestamp(pid))
        finally:
            self.sender.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
