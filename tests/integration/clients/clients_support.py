"""Helpers of the stock-client tests: a bsread stream read beside a client."""

from __future__ import annotations

import threading
import time
from typing import Any

import bsread


class StreamRecorder:
    """Every message of a bsread stream, by pulse id, read in a thread while a client runs
    (``(data, received)``: the channel values and the monotonic time it arrived)."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.host, self.port = host.split("//")[1], int(port)
        self.by_pulse: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StreamRecorder:
        self._thread.start()
        assert self._connected.wait(10), "bsread source did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with bsread.Source(host=self.host, port=self.port, mode=bsread.SUB, receive_timeout=200) as source:
            self._connected.set()
            while not self._stop.is_set():
                message = source.receive()
                if message is None:
                    continue
                values = {name: channel.value for name, channel in message.data.data.items()}
                with self.lock:
                    self.by_pulse[int(message.data.pulse_id)] = values

    def get(self, pulse_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """The message of ``pulse_id`` (waits for it: the client may read before the stream arrives)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if pulse_id in self.by_pulse:
                    return self.by_pulse[pulse_id]
            assert time.monotonic() < deadline, f"pulse id {pulse_id} not on the stream ({len(self.by_pulse)} read)"
            time.sleep(0.02)
