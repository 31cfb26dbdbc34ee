"""EPICS camera source (pyepics, monitor driven): cam_server and areaDetector conventions.

PVs (``source`` is the PV prefix; ``epics_convention`` chooses the set):

=================  =====================================  ==================================
role               ``camserver``                           ``areadetector``
=================  =====================================  ==================================
online check       ``<p>:INIT`` must read "INIT"           (the size PVs must connect)
width / height     ``<p>:WIDTH`` / ``<p>:HEIGHT``          ``<p>:cam1:ArraySize0_RBV`` / ``1_RBV``
image (flat)       ``<p>:FPICTURE``                        ``<p>:image1:ArrayData``
pulse id           none (the publisher counts)             ``<p>:image1:ArrayCounter_RBV``
=================  =====================================  ==================================

Everything is CA monitors, no polling. Images arrive on a pyepics (libca) thread; the callback
reshapes the flat array to the geometry last received on the width/height monitors (an IOC posts
sizes before data, and CA keeps the order of one server's monitors), applies ``dtype`` and hands
the frame to ``read()`` through a small drop-oldest queue: the CA thread never blocks. A frame
with fewer than width*height elements is dropped with a (rate-limited) warning; a longer one is
truncated. ``dtype``: same item size -> the bits are reinterpreted (``.view``: areaDetector sends
UInt16 as CA SHORT, so ``dtype: uint16`` restores it), else the values are cast. The timestamp is
the CA monitor (record) timestamp.

areaDetector pulse id pairing: ``ArrayCounter_RBV`` and ``ArrayData`` are separate monitors that
may arrive in either order, and CA flow control may collapse either of them. areaDetector records
stamp both with the NDArray's time, so a frame is paired with the counter update carrying exactly
the same CA timestamp, whichever comes first (a frame waits at most ``PAIRING_HOLD`` s, or until
the next frame, for its counter; if it never comes the frame gets the previous pulse id + 1). An
IOC whose frames find no counter with their timestamp is treated as unstamped: from then on a
frame takes the latest counter value (cam_server's behaviour; off by one if that IOC posts the
counter after the data). That verdict needs ``UNSTAMPED_AFTER`` unmatched frames in a row, so a
counter delayed on a loaded machine does not mislabel a stamped IOC.

Large images need a libca that accepts them: ``EPICS_CA_AUTO_ARRAY_BYTES=YES`` (the default) or
``EPICS_CA_MAX_ARRAY_BYTES`` larger than the biggest image. pyepics is imported only on
``connect()``, so importing this module does not load libca.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from camioc.errors import CameraOfflineError, ConfigError
from camioc.sources.base import CameraSource, Frame, FrameQueue

if TYPE_CHECKING:
    from camioc.config.camera import CameraConfig

__all__ = ["EpicsSource", "pv_names"]

CONVENTIONS = ("camserver", "areadetector")
PAIRING_HOLD = 0.5
#: Frames in a row whose counter never came (with no exact match in between) before an IOC is
#: treated as unstamped: one late counter on a loaded machine must not decide it for good.
UNSTAMPED_AFTER = 3
QUEUE_SIZE = 4
_WARN_INTERVAL = 5.0


def pv_names(prefix: str, convention: str) -> dict[str, str | None]:
    """The PV names an EPICS camera source uses (roles: init, width, height, image, counter)."""
    if convention == "camserver":
        return {
            "init": f"{prefix}:INIT",
            "width": f"{prefix}:WIDTH",
            "height": f"{prefix}:HEIGHT",
            "image": f"{prefix}:FPICTURE",
            "counter": None,
        }
    if convention == "areadetector":
        return {
            "init": None,
            "width": f"{prefix}:cam1:ArraySize0_RBV",
            "height": f"{prefix}:cam1:ArraySize1_RBV",
            "image": f"{prefix}:image1:ArrayData",
            "counter": f"{prefix}:image1:ArrayCounter_RBV",
        }
    raise ConfigError(f"Invalid epics_convention {convention!r}: must be one of {', '.join(CONVENTIONS)}")


@dataclass(slots=True)
class _Pending:
    frame: Frame
    stamp: tuple[int, int]
    deadline: float


class EpicsSource(CameraSource):
    """``source_type: epics`` (see module doc)."""

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        if not config.source:
            raise ConfigError("EPICS camera needs a PV prefix in 'source'")
        self.prefix = str(config.source)
        self.convention = getattr(config, "epics_convention", None) or "camserver"
        self.names = pv_names(self.prefix, self.convention)
        dtype = getattr(config, "dtype", None)
        try:
            self._dtype = np.dtype(dtype) if dtype else None
        except TypeError as exc:
            raise ConfigError(f"Invalid dtype {dtype!r}") from exc
        self._queue = FrameQueue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._pvs: list[Any] = []
        self._width = 0
        self._height = 0
        # areaDetector pulse id pairing
        self._counters: deque[tuple[tuple[int, int], int]] = deque(maxlen=16)
        self._latest_counter: int | None = None
        self._last_pulse_id: int | None = None
        self._pending: _Pending | None = None
        self._stamped: bool | None = None
        self._unmatched = 0
        # statistics
        self.frames_received = 0
        self.frames_too_small = 0
        self._last_warning = 0.0
        self._closed = False

    # ----------------------------------------------------------------------------------------
    # life cycle
    # ----------------------------------------------------------------------------------------

    def connect(self, timeout: float = 3.0) -> None:
        import epics  # noqa: PLC0415  (lazy: load libca only in processes that use EPICS)

        # pyepics' atexit clean-up (clear every channel) can block forever at interpreter exit when
        # channels were made from worker threads, as the control process's probes are; the OS frees
        # CA sockets at exit anyway. Only effective before libca's first use in the process.
        epics.ca.AUTO_CLEANUP = False

        if self._pvs:
            return
        self._closed = False
        self._queue = FrameQueue(QUEUE_SIZE)
        with self._lock:
            self._counters.clear()
            self._pending = None
            self._stamped = None
            self._unmatched = 0
            self._latest_counter = self._last_pulse_id = None
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            if self.names["init"]:
                self._check_initialized(epics, self.names["init"], deadline)
            width_pv = self._create(epics, self.names["width"], self._on_width)
            height_pv = self._create(epics, self.names["height"], self._on_height)
            counter_pv = None
            if self.names["counter"]:
                counter_pv = self._create(epics, self.names["counter"], self._on_counter)
            for pv in (width_pv, height_pv, counter_pv):
                if pv is not None:
                    self._wait_connected(pv, deadline)
            for pv, attr in ((width_pv, "_width"), (height_pv, "_height")):
                value = pv.get(timeout=max(deadline - time.monotonic(), 0.05), use_monitor=True)
                if value is None:
                    raise self._offline(f"no value from {pv.pvname}")
                with self._lock:
                    setattr(self, attr, int(value))
            image_pv = self._create(epics, self.names["image"], self._on_image)
            self._wait_connected(image_pv, deadline)
        except BaseException:
            self._disconnect_all()
            raise
        self.log.info(
            "Connected to EPICS camera %s (%s convention, %dx%d)",
            self.prefix, self.convention, self._width, self._height,
        )

    def _create(self, epics: Any, name: str | None, callback: Any) -> Any:
        assert name is not None
        pv = epics.PV(name, form="time", auto_monitor=True, callback=callback)
        self._pvs.append(pv)
        return pv

    def _wait_connected(self, pv: Any, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if not pv.wait_for_connection(timeout=max(remaining, 0.01)):
            raise self._offline(f"{pv.pvname} did not connect")

    def _offline(self, reason: str) -> CameraOfflineError:
        self.log.warning("EPICS camera %s is offline: %s", self.prefix, reason)
        return CameraOfflineError(f"Camera with prefix {self.prefix} is offline")

    def _check_initialized(self, epics: Any, name: str, deadline: float) -> None:
        pv = epics.PV(name, auto_monitor=False)
        try:
            if not pv.wait_for_connection(timeout=max(deadline - time.monotonic(), 0.01)):
                raise self._offline(f"{name} did not connect")
            status = pv.get(as_string=True, timeout=max(deadline - time.monotonic(), 0.05))
            if status is None:
                raise self._offline(f"no value from {name}")
            if str(status).strip() != "INIT":
                raise CameraOfflineError(
                    f"Camera with prefix {self.prefix} is not initialized - Status {status}"
                )
        finally:
            pv.disconnect()

    def close(self) -> None:
        self._closed = True
        self._disconnect_all()
        self._queue.close()

    def _disconnect_all(self) -> None:
        pvs, self._pvs = self._pvs, []
        for pv in pvs:
            try:
                pv.clear_callbacks()
                pv.disconnect()
            except Exception:  # a broken channel must not stop the others from closing
                self.log.exception("Error disconnecting %s", getattr(pv, "pvname", pv))

    @property
    def connected(self) -> bool:
        """True when every monitored PV is connected (pyepics reconnects by itself)."""
        pvs = self._pvs
        return bool(pvs) and all(pv.connected for pv in pvs)

    # ----------------------------------------------------------------------------------------
    # reading
    # ----------------------------------------------------------------------------------------

    def geometry(self) -> tuple[int, int]:
        with self._lock:
            return self._width, self._height

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            wait = deadline - now
            with self._lock:
                pending = self._pending
                if pending is not None:
                    if pending.deadline <= now:
                        self._flush_pending()
                    else:
                        wait = min(wait, pending.deadline - now)
            frame = self._queue.get(max(wait, 0.0))
            if frame is not None or self._closed or time.monotonic() >= deadline:
                return frame

    # ----------------------------------------------------------------------------------------
    # CA callbacks (pyepics threads): quick, never block
    # ----------------------------------------------------------------------------------------

    def _on_width(self, value: Any = None, **_: Any) -> None:
        self._set_size("_width", value)

    def _on_height(self, value: Any = None, **_: Any) -> None:
        self._set_size("_height", value)

    def _set_size(self, attr: str, value: Any) -> None:
        if value is None:
            return
        value = int(value)
        with self._lock:
            old = getattr(self, attr)
            setattr(self, attr, value)
        if old and old != value:
            self.log.info("Camera %s %s changed: %d -> %d", self.prefix, attr[1:], old, value)

    def _on_image(self, value: Any = None, timestamp: float | None = None, posixseconds: int = 0,
                  nanoseconds: int = 0, **_: Any) -> None:
        if value is None or self._closed:
            return
        data = np.asarray(value)
        with self._lock:
            width, height = self._width, self._height
        size = width * height
        if size <= 0 or data.size < size:
            self._warn_too_small(data.size, width, height)
            return
        if data.size > size:
            data = data.reshape(-1)[:size]
        image = data.reshape(height, width)
        if self._dtype is not None and image.dtype != self._dtype:
            if image.dtype.itemsize == self._dtype.itemsize:
                image = image.view(self._dtype)
            else:
                image = image.astype(self._dtype)
        frame = Frame(image=image, timestamp=float(timestamp if timestamp is not None else time.time()),
                      pulse_id=None)
        self.frames_received += 1
        if self.names["counter"] is None:
            self._queue.put(frame)
        else:
            self._pair_image(frame, (int(posixseconds), int(nanoseconds)))

    def _warn_too_small(self, n: int, width: int, height: int) -> None:
        self.frames_too_small += 1
        now = time.monotonic()
        if now - self._last_warning >= _WARN_INTERVAL:
            self._last_warning = now
            self.log.warning(
                "Image array too small: %d elements for %dx%d, frame dropped [%s] (%d so far)",
                n, width, height, self.prefix, self.frames_too_small,
            )

    def _on_counter(self, value: Any = None, posixseconds: int = 0, nanoseconds: int = 0,
                    **_: Any) -> None:
        if value is None:
            return
        counter = int(value)
        stamp = (int(posixseconds), int(nanoseconds))
        with self._lock:
            self._latest_counter = counter
            self._counters.append((stamp, counter))
            pending = self._pending
            if pending is not None and pending.stamp == stamp:
                self._pending = None
                self._stamped = True
                self._unmatched = 0
                self._emit(pending.frame, counter)

    # The pairing helpers below run with self._lock held.

    def _pair_image(self, frame: Frame, stamp: tuple[int, int]) -> None:
        with self._lock:
            if self._pending is not None:
                self._flush_pending()
            counter = next((c for s, c in reversed(self._counters) if s == stamp), None)
            if counter is not None:
                self._stamped = True
                self._unmatched = 0
                self._emit(frame, counter)
            elif self._stamped is False:
                self._emit(frame, self._latest_counter)
            else:
                self._pending = _Pending(frame, stamp, time.monotonic() + PAIRING_HOLD)

    def _flush_pending(self) -> None:
        """Emit the frame waiting for its counter, which did not come."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if self._stamped is None:
            self._unmatched += 1
            if self._unmatched >= UNSTAMPED_AFTER:
                self._stamped = False
                self.log.info("Camera %s: counter and image timestamps differ; pairing by arrival", self.prefix)
        if self._stamped and self._last_pulse_id is not None:
            # A stamped IOC lost this frame's counter update: the next number is the best guess
            # (and never repeats the previous frame's pulse id).
            self._emit(pending.frame, self._last_pulse_id + 1)
        else:
            self._emit(pending.frame, self._latest_counter)

    def _emit(self, frame: Frame, counter: int | None) -> None:
        frame.pulse_id = counter
        if counter is not None:
            self._last_pulse_id = counter
        self._queue.put(frame)
