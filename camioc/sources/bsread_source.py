"""bsread camera source: a camera that already streams bsread (e.g. SwissFEL/SLS cameras).

The stream address is, as in cam_server: config ``url`` if set; else ``source`` when it is an
address (``tcp://host:port``, anything with ``://``); else ``source`` is a camera PV prefix and the
address is read from the string PV ``<source>:BSREADCONFIG`` (pyepics, imported only then).

The source connects a ``BsreadReceiver`` (``mode`` PULL by default, SUB if configured), takes the
image from channel ``channel`` (default ``<camera name>:FPICTURE``; if the stream has no such
channel, a channel named ``image``), keeps the stream's pulse id and global timestamp, and passes
every other channel in ``Frame.extra``. Images are the receiver's zero-copy read-only arrays.

Online semantics: ZeroMQ connects lazily and never reports a missing peer, so ``connect(timeout)``
waits up to ``timeout`` for the first message. None (or an unreadable ``BSREADCONFIG``) ->
``CameraOfflineError("Camera with prefix <source> is offline")``. The first message is not lost:
it is the first frame ``read()`` returns. A camera that streams slower than one frame per
``timeout`` needs a longer connect timeout. After connecting, a silent stream just makes
``read()`` return None (ZeroMQ reconnects by itself when the camera comes back).

Bad data: a stream without the image channel (and without ``image``) raises ``ConfigError``
naming the channels it has; an image that is not 2-D (and cannot be shaped from ``width`` /
``height`` channels) raises ``ProcessingError``. Messages whose image value is empty (bsread sends
None for a missing value) are skipped.

``connections`` > 1 (cam_server's parallel connections): that many receivers connect to the
stream (PULL: the sender load-balances messages across them, so a slow decode on one does not
stall the stream); their messages are put back in pulse-id order by a
:class:`~camioc.streams.reorder.PidReorderBuffer` of ``buffer_size`` messages (a message that
arrives later than ``buffer_size`` newer ones, or a duplicate from SUB connections, is counted in
:attr:`BsreadSource.late_messages` and dropped). When the stream pauses, the buffered messages are
released after one read timeout.

(The module is not called ``bsread.py`` so that it never shadows the ``bsread`` package.)
"""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from camioc.errors import CameraOfflineError, ConfigError, ProcessingError
from camioc.sources.base import CameraSource, Frame

if TYPE_CHECKING:
    from camioc.config.camera import CameraConfig
    from camioc.streams.bsread import BsreadMessage, BsreadReceiver
    from camioc.streams.reorder import PidReorderBuffer

__all__ = ["BsreadSource", "default_image_channel"]

QUEUE_SIZE = 10


def default_image_channel(camera_name: str) -> str:
    """cam_server's image channel of a bsread camera: ``<camera name>:FPICTURE``."""
    return f"{camera_name}:FPICTURE"


class BsreadSource(CameraSource):
    """``source_type: bsread`` (see module doc)."""

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        if not config.source:
            raise ConfigError("bsread camera needs a stream address in 'source'")
        self.prefix = str(config.source)
        url = getattr(config, "url", None)
        self._fixed_address = str(url) if url else (self.prefix if "://" in self.prefix else None)
        self.address: str | None = self._fixed_address  # the stream address in use
        self.mode = str(getattr(config, "mode", None) or "PULL").upper()
        if self.mode not in ("PULL", "SUB"):
            raise ConfigError(f"Invalid bsread mode {self.mode!r}: must be PULL or SUB")
        configured = getattr(config, "channel", None)
        self._configured_channel: str | None = str(configured) if configured else None
        self.receive_timeout = float(getattr(config, "receive_timeout", None) or 1.0)
        self.channel: str | None = None  # the image channel in use (resolved on data)
        self._receiver: BsreadReceiver | None = None
        self._extra_receivers: list[BsreadReceiver] = []
        self._connections = max(1, int(getattr(config, "connections", 1) or 1))
        self._reorder: PidReorderBuffer[BsreadMessage] | None = None
        self._ready: collections.deque[BsreadMessage] = collections.deque()
        self._first: BsreadMessage | None = None
        self._width = int(getattr(config, "size_x", 0) or 0)
        self._height = int(getattr(config, "size_y", 0) or 0)
        self._closed = False

    def connect(self, timeout: float = 3.0) -> None:
        from camioc.streams.bsread import BsreadReceiver  # noqa: PLC0415 (keep zmq out of imports)
        from camioc.streams.reorder import PidReorderBuffer  # noqa: PLC0415

        if self._receiver is not None:
            return
        self._closed = False
        deadline = time.monotonic() + max(timeout, 0.0)
        self.address = self._fixed_address or self._read_bsreadconfig(deadline)
        receivers = [
            BsreadReceiver(
                self.address, mode=self.mode, conn_type="connect", queue_size=QUEUE_SIZE,
                receive_timeout=self.receive_timeout,
            )
            for _ in range(self._connections)
        ]
        try:
            for receiver in receivers:
                receiver.connect()
            first = None
            while first is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                first = self._receive_any(receivers, remaining)
        except BaseException:
            for receiver in receivers:
                receiver.close()
            raise
        if first is None:
            for receiver in receivers:
                receiver.close()
            self.log.warning("bsread camera %s: no message within %.1f s", self.address, timeout)
            raise CameraOfflineError(f"Camera with prefix {self.prefix} is offline")
        self._receiver, self._extra_receivers = receivers[0], receivers[1:]
        if self._connections > 1:
            self._reorder = PidReorderBuffer(int(getattr(self.config, "buffer_size", 10) or 1))
            self._ready.extend(self._reorder.push(int(first.pulse_id), first))
        else:
            self._first = first
        self._update_geometry(self._image_of(first))
        self.log.info(
            "Connected to bsread camera %s (%s x%d, channel %s, %dx%d)",
            self.address, self.mode, self._connections, self.channel, self._width, self._height,
        )

    @property
    def late_messages(self) -> int:
        """Messages dropped by the pulse-id re-ordering (late or duplicate); 0 with one connection."""
        return 0 if self._reorder is None else self._reorder.late

    @staticmethod
    def _receive_any(receivers: list[BsreadReceiver], timeout: float) -> BsreadMessage | None:
        """The next message from any of ``receivers`` within ``timeout`` seconds."""
        import zmq  # noqa: PLC0415

        if len(receivers) == 1:
            return receivers[0].receive(timeout)
        deadline = time.monotonic() + max(timeout, 0.0)
        poller = zmq.Poller()
        for receiver in receivers:
            poller.register(receiver.socket, zmq.POLLIN)
        while True:
            for receiver in receivers:
                message = receiver.receive(0)
                if message is not None:
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(max(1, int(remaining * 1000))):
                return None

    def _next_message(self, deadline: float) -> BsreadMessage | None:
        """The next message in pulse-id order (several connections) or as received (one)."""
        if self._reorder is None:
            message, self._first = self._first, None
            if message is not None:
                return message
            receiver = self._receiver
            remaining = deadline - time.monotonic()
            if receiver is None or remaining <= 0:
                return None
            return receiver.receive(remaining)
        receivers = [r for r in (self._receiver, *self._extra_receivers) if r is not None]
        while not self._ready:
            message = self._receive_any(receivers, 0)
            if message is None:
                remaining = deadline - time.monotonic()
                message = self._receive_any(receivers, remaining) if remaining > 0 else None
                if message is None:  # the stream paused: release what is buffered
                    return self._reorder.pop()
            self._ready.extend(self._reorder.push(int(message.pulse_id), message))
        return self._ready.popleft()

    def _read_bsreadconfig(self, deadline: float) -> str:
        import epics  # noqa: PLC0415 (lazy: load libca only for cameras that need it)

        name = f"{self.prefix}:BSREADCONFIG"
        pv = epics.PV(name, auto_monitor=False)
        try:
            value = None
            if pv.wait_for_connection(timeout=max(deadline - time.monotonic(), 0.01)):
                value = pv.get(as_string=True, timeout=max(deadline - time.monotonic(), 0.05))
        finally:
            pv.disconnect()
        if not value or not str(value).strip():
            self.log.warning("bsread camera %s: no stream address from %s", self.prefix, name)
            raise CameraOfflineError(f"Camera with prefix {self.prefix} is offline")
        return str(value).strip()

    def geometry(self) -> tuple[int, int]:
        return self._width, self._height

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._closed:
            message = self._next_message(deadline)
            if message is None:
                return None
            image = self._image_of(message)
            if image is None:
                continue
            self._update_geometry(image)
            extra = {name: value for name, value in message.data.items() if name != self.channel}
            return Frame(image=image, timestamp=message.timestamp_float, pulse_id=int(message.pulse_id),
                         extra=extra)
        return None

    def close(self) -> None:
        self._closed = True
        receivers = [self._receiver, *self._extra_receivers]
        self._receiver, self._extra_receivers = None, []
        self._first = None
        self._ready.clear()
        for receiver in receivers:
            if receiver is not None:
                receiver.close()

    # ----------------------------------------------------------------------------------------

    def _resolve_channel(self, data: dict[str, Any]) -> str:
        candidates = [self._configured_channel or default_image_channel(self.name)]
        if not self._configured_channel:
            candidates.append("image")
        for name in candidates:
            if name in data:
                return name
        raise ConfigError(
            f"Image channel {' or '.join(candidates)} not in bsread stream {self.address} "
            f"(channels: {', '.join(sorted(data)) or 'none'})"
        )

    def _image_of(self, message: BsreadMessage) -> np.ndarray | None:
        data = message.data
        if self.channel is None or self.channel not in data or message.format_changed:
            self.channel = self._resolve_channel(data)
        value = data[self.channel]
        if value is None:
            return None
        image = np.asarray(value)
        if image.size == 0:
            return None
        if image.ndim == 2:
            return image
        if image.ndim == 1:
            width, height = data.get("width"), data.get("height")
            if width is not None and height is not None and int(width) * int(height) == image.size:
                return image.reshape(int(height), int(width))
        raise ProcessingError(
            f"Image channel {self.channel} of bsread stream {self.address} is not 2-D "
            f"(shape {list(image.shape)})"
        )

    def _update_geometry(self, image: np.ndarray | None) -> None:
        if image is not None:
            self._height, self._width = image.shape
