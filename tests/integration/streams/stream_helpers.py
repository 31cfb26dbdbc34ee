"""Helpers for the stream tests: psi-bsread clients on loopback, deadline-bounded receiving."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bsread

DEADLINE = 10.0  # generous upper bound; a passing test returns as soon as its condition holds


@contextmanager
def psi_source(port: int, mode: str = "SUB", timeout_ms: int = 100, **kwargs: Any) -> Iterator[bsread.Source]:
    """A connected psi-bsread ``Source`` (the reference client) on 127.0.0.1."""
    source = bsread.Source(host="127.0.0.1", port=port, mode=bsread.SUB if mode == "SUB" else bsread.PULL,
                           receive_timeout=timeout_ms, **kwargs)
    source.connect()
    try:
        yield source
    finally:
        source.disconnect()


def receive_until(receive: Callable[[], Any], accept: Callable[[Any], bool],
                  before: Callable[[], None] | None = None, deadline: float = DEADLINE) -> Any:
    """Call ``before`` (e.g. send a probe) and ``receive`` until a message satisfies ``accept``.

    This replaces sleeping for a PUB/SUB subscription to propagate: the publisher keeps
    sending until the subscriber demonstrably receives.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if before is not None:
            before()
        message = receive()
        if message is not None and accept(message):
            return message
    raise AssertionError(f"no accepted message within {deadline} s")


def wait_until(condition: Callable[[], bool], deadline: float = DEADLINE, interval: float = 0.01) -> None:
    """Poll ``condition`` until it holds (bounded by ``deadline``)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {deadline} s")
        time.sleep(interval)
