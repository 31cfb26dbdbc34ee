"""Listener fan-out shared by the camera and pipeline managers.

Listeners (the IOC) implement some of the event methods of ``CameraEvents``/``PipelineEvents``;
a missing method means "not interested". A failing listener is logged and never breaks the
manager or the other listeners: an adapter bug must not stop a camera.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Listeners:
    """An ordered set of listener objects and the one way to notify them."""

    def __init__(self) -> None:
        self._listeners: list[Any] = []

    def add(self, listener: Any) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: str, argument: Any) -> None:
        """Call ``listener.<event>(argument)`` on every listener that has it (loop thread)."""
        for listener in list(self._listeners):
            method = getattr(listener, event, None)
            if method is None:
                continue
            try:
                method(argument)
            except Exception:
                log.exception("listener %r failed on %s", listener, event)


__all__ = ["Listeners"]
