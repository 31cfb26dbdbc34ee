"""The camera output stream: cam_server's six camera channels over bsread.

cam_server clients (``CamClient`` users, pipelines, ``bs receive``) expect exactly these channels,
in this order and with these types (``shared/reference/camserver-compat.md`` §3.1):

=========  ===================  ====================
channel    type                 bsread shape
=========  ===================  ====================
width      int64                [1]
height     int64                [1]
timestamp  float64              [1]
image      the image's dtype    [width, height]
x_axis     float32              [width]
y_axis     float32              [height]
=========  ===================  ====================

followed by any ``extra`` channels. Because the scalar types are fixed and the axes follow the
image, the data header (and its hash) changes only when the image shape or dtype, or the set or
types of the extra channels, change — which is what receivers key their decoders on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import zmq

from camioc.streams.bsread import BsreadSender, ChannelSpec, HeaderPolicy

__all__ = ["CAMERA_CHANNELS", "CameraStreamPublisher"]

_log = logging.getLogger(__name__)

#: The camera channel names in wire order.
CAMERA_CHANNELS: Final = ("width", "height", "timestamp", "image", "x_axis", "y_axis")
_RESERVED: Final = frozenset(CAMERA_CHANNELS)


class CameraStreamPublisher:
    """Publishes camera frames as cam_server's camera bsread stream (PUB by default).

    ``block`` applies to PUSH only (PUB never blocks): True (default, as camioc's pipelines do
    for PUSH) waits for queue space, bounded by ``send_timeout`` seconds if given; False drops
    the frame when the queue is full. ``image_compression`` / ``scalar_compression`` map
    cam_server's camera config keys (``"bitshuffle_lz4"`` or None) to the image channel and to
    all other channels respectively.

    Zero-copy: the image is handed to libzmq without copying; do not modify it after
    :meth:`publish` (a camera source must deliver a fresh array per frame).
    """

    def __init__(
        self,
        port: int | None,
        host: str = "127.0.0.1",
        queue_size: int = 10,
        mode: str = "PUB",
        context: zmq.Context | None = None,
        *,
        block: bool = True,
        send_timeout: float | None = None,
        image_compression: str | None = None,
        scalar_compression: str | None = None,
        data_header_compression: str | None = None,
        conn_type: str = "bind",
        address: str | None = None,
    ) -> None:
        self._sender = BsreadSender(
            mode=mode,
            port=port,
            host=host,
            conn_type=conn_type,
            address=address,
            queue_size=queue_size,
            block=block,
            send_timeout=send_timeout,
            data_compression=scalar_compression,
            channel_compression={"image": image_compression},
            data_header_compression=data_header_compression,
            header_policy=HeaderPolicy("on_change"),
            context=context,
        )

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Bind (or connect) the stream socket."""
        self._sender.open()

    def close(self) -> None:
        """Close the stream socket (idempotent)."""
        self._sender.close()

    def __enter__(self) -> CameraStreamPublisher:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    @property
    def endpoint(self) -> str:
        """Stream endpoint, e.g. ``tcp://127.0.0.1:10100``."""
        return self._sender.endpoint

    @property
    def port(self) -> int:
        """Bound TCP port."""
        return self._sender.port

    @property
    def header_changes(self) -> int:
        """How many data headers were built (1 after the first frame while geometry is stable)."""
        return self._sender.header_changes

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """Channels of the current data header."""
        return self._sender.channels

    @property
    def messages_sent(self) -> int:
        """Frames handed to libzmq."""
        return self._sender.messages_sent

    @property
    def messages_dropped(self) -> int:
        """Frames dropped (PUSH with a full queue / send timeout)."""
        return self._sender.messages_dropped

    def client_count(self) -> int:
        """Connected subscribers."""
        return self._sender.client_count()

    def seconds_without_clients(self) -> float:
        """0.0 while a subscriber is connected, else seconds since the last one left (or open)."""
        return self._sender.seconds_without_clients()

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` subscribers are connected."""
        return self._sender.wait_for_clients(count, timeout)

    # ------------------------------------------------------------------ publishing
    def publish(
        self,
        image: np.ndarray,
        x_axis: np.ndarray,
        y_axis: np.ndarray,
        *,
        pulse_id: int,
        timestamp: float,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """Send one frame; returns False if it was dropped (PUSH, full queue).

        ``image`` is numpy ``(height, width)`` (or ``(height, width, channels)``); ``x_axis``
        and ``y_axis`` must have ``width`` and ``height`` elements and are sent as float32.
        ``timestamp`` is float seconds since the epoch, sent both as the global timestamp and as
        the ``timestamp`` channel.
        """
        if image.ndim not in (2, 3):
            raise ValueError(f"camera image must be 2-D (height, width), got shape {image.shape}")
        height, width = image.shape[0], image.shape[1]
        x = x_axis if _is_f32(x_axis) else np.asarray(x_axis, dtype=np.float32)
        y = y_axis if _is_f32(y_axis) else np.asarray(y_axis, dtype=np.float32)
        if x.shape != (width,) or y.shape != (height,):
            raise ValueError(
                f"axes of shapes {x.shape}/{y.shape} do not match image width {width} / height {height}"
            )
        data: dict[str, Any] = {
            "width": int(width),
            "height": int(height),
            "timestamp": float(timestamp),
            "image": image,
            "x_axis": x,
            "y_axis": y,
        }
        if extra:
            clash = _RESERVED.intersection(extra)
            if clash:
                raise ValueError(f"extra channels may not reuse camera channel names: {sorted(clash)}")
            data.update(extra)
        return self._sender.send(data, pulse_id=pulse_id, timestamp=float(timestamp))


def _is_f32(axis: Any) -> bool:
    return type(axis) is np.ndarray and axis.dtype == np.float32 and axis.ndim == 1
