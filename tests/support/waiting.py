"""Waiting the way the tests must: poll a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bsread


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Call ``predicate`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def receive(address: str, count: int = 1, timeout: float = 20.0, mode: int = bsread.SUB) -> list[Any]:
    """``count`` bsread messages from ``tcp://host:port``, read with psi-bsread as a user would."""
    host, port = address.rsplit(":", 1)
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host.split("//")[1], port=int(port), mode=mode, receive_timeout=500) as source:
        while len(messages) < count:
            assert time.monotonic() < deadline, f"only {len(messages)} of {count} messages within {timeout} s"
            message = source.receive()
            if message is not None:
                messages.append(message)
    return messages
