"""The camera source contract: one raw frame, one source interface.

A *source* turns a camera (a simulation, an EPICS IOC, a bsread stream) into a sequence of raw
frames. It knows nothing about camera transforms (binning, mirror, rotate, ROI: see
``camioc.sources.transform``), streams or the IOC; the camera worker reads frames in a loop::

    source = create_source(config)
    with source:
        source.connect(timeout=3.0)          # CameraOfflineError if unreachable
        while running:
            frame = source.read(timeout=1.0)  # None on timeout
            if frame is not None:
                publish(transform_image(frame.image, config), frame.timestamp, frame.pulse_id)

Frames are not copied on the way: ``Frame.image`` may be a read-only array (a pre-generated
simulation frame, a zero-copy bsread buffer). Consumers must never modify it in place.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from camioc.config.camera import CameraConfig

__all__ = ["CameraSource", "Frame", "FrameQueue"]


@dataclass(slots=True)
class Frame:
    """One raw camera frame, before camera transforms.

    Attributes:
        image: 2-D array (height, width), dtype as delivered by the source or as declared by the
            camera config ``dtype``. May be read-only; never modify it in place.
        timestamp: seconds since the epoch, from the source (EPICS record time, bsread global
            timestamp, wall clock for the simulation).
        pulse_id: the source's pulse id (bsread pulse id, areaDetector ``ArrayCounter_RBV``,
            simulation with ``simulate_pulse_id``); None lets the publisher count.
        extra: extra channels of a bsread source (name -> value); empty for other sources.
    """

    image: np.ndarray
    timestamp: float
    pulse_id: int | None
    extra: dict[str, Any] = field(default_factory=dict)


class CameraSource(ABC):
    """A camera that delivers raw frames.

    Life cycle: construct (cheap, no I/O) -> ``connect()`` -> ``read()`` ... -> ``close()``.
    ``close()`` is idempotent; the source is also a context manager that closes on exit (it does
    not connect on entry). A source is used by one thread (the worker's read loop); ``close()``
    may be called from another thread to end a blocking ``read()``.
    """

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.name = config.name
        self.log = logging.getLogger(f"camioc.camera.{config.name}")

    @abstractmethod
    def connect(self, timeout: float = 3.0) -> None:
        """Connect to the camera; raise ``CameraOfflineError`` when it is unreachable."""

    @abstractmethod
    def read(self, timeout: float) -> Frame | None:
        """Return the next frame, blocking up to ``timeout`` seconds; None on timeout.

        Raises a ``CamiocError`` subclass for a frame the source cannot handle.
        """

    @abstractmethod
    def geometry(self) -> tuple[int, int]:
        """Raw ``(width, height)`` currently delivered (follows geometry changes)."""

    @abstractmethod
    def close(self) -> None:
        """Release every resource; idempotent."""

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, source={self.config.source!r})"


class FrameQueue:
    """A small bounded frame buffer between a producer thread and ``read()``.

    ``put()`` never blocks: when the queue is full the oldest frame is dropped (and counted),
    so a slow consumer sees the newest frames and a callback thread (pyepics) is never held up.
    """

    def __init__(self, maxlen: int = 4) -> None:
        self._frames: deque[Frame] = deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._closed:
                return
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        """Pop the oldest frame, waiting up to ``timeout``; None on timeout or when closed."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while not self._frames:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._frames.popleft()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a frame to be available, without taking it."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while not self._frames:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def clear(self) -> None:
        with self._cond:
            self._frames.clear()

    def close(self) -> None:
        """Wake up every waiter; later ``put()`` calls are ignored."""
        with self._cond:
            self._closed = True
            self._frames.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._frames)
