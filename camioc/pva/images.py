"""``Pva1:Image``: an image block's frames as an NTNDArray, posted off the event loop.

What a client gets is what areaDetector's NDPluginPva serves: the pixels in their native type
(``uint16`` stays ``ushortValue``), ``dimension`` = (x, y), ``uniqueId`` = the pulse id (NTNDArray's
field is 32 bits: the full pulse id is the ``PulseId`` attribute), ``timeStamp`` and
``dataTimeStamp`` = the frame's time, and the calibrated axes as the ``x_axis``/``y_axis`` attributes
when the frame has them.

Cost: making the NTNDArray copies the pixels (p4p flattens the array) and the post hands them to
pvxs; for a 2048 x 2048 uint16 frame that is several milliseconds (benchmarks/pva_rate.py). So the
loop only drops the frame into a one-frame slot; one worker thread wraps and posts the latest
frame. A frame that arrives while a post is in progress replaces the waiting one (intermediate
frames are skipped, never queued); pvxs itself keeps a short per-subscriber queue and squashes
updates for a subscriber slower than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np
from p4p.nt import NTNDArray
from p4p.server.asyncio import SharedPV

from camioc.model.camera import ImageFrame
from camioc.model.pvnames import PVA_IMAGE

log = logging.getLogger(__name__)

#: The PV name of the NTNDArray, relative to the image block's prefix (areaDetector's name).
IMAGE_PV = PVA_IMAGE
_UNIQUE_ID_MODULUS = 2**31


def ndarray_value(nt: NTNDArray, frame: ImageFrame) -> Any:
    """The NTNDArray ``Value`` of a frame (copies the pixels once)."""
    attributes: dict[str, Any] = {"PulseId": int(frame.pulse_id)}
    for name, axis in frame.attributes.items():
        attributes[name] = np.asarray(axis, dtype=np.float64)
    stamp = frame.timestamp if frame.timestamp > 0 else time.time()
    value = nt.wrap(frame.image, attrib=attributes, timestamp=stamp)
    value["uniqueId"] = int(frame.pulse_id) % _UNIQUE_ID_MODULUS
    seconds, fraction = divmod(stamp, 1.0)
    value["dataTimeStamp"] = {"secondsPastEpoch": int(seconds), "nanoseconds": int(fraction * 1e9)}
    return value


def _as_is(value: Any) -> Any:
    return value


class ImagePublisher:
    """The ``Pva1:Image`` PV of one image block; a :class:`~camioc.model.camera.FrameSink`."""

    def __init__(self, executor: Executor, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.nt = NTNDArray()
        # posts are made Values already (ndarray_value): the PV wraps nothing itself
        self.pv = SharedPV(wrap=_as_is, unwrap=_as_is, initial=self.nt.wrap(np.zeros((0, 0), dtype=np.uint16),
                                                                             timestamp=time.time()))
        self._executor = executor
        self._loop = loop or asyncio.get_running_loop()
        self._pending: ImageFrame | None = None
        self._busy = False
        self._closed = False
        #: frames posted / skipped because a newer one came while a post was in progress
        self.posted = 0
        self.skipped = 0

    def post_frame(self, frame: ImageFrame) -> None:
        """Take the latest frame (on the loop; returns at once)."""
        if self._closed:
            return
        if self._pending is not None:
            self.skipped += 1
        self._pending = frame
        if not self._busy:
            self._next()

    def _next(self) -> None:
        frame, self._pending = self._pending, None
        if frame is None or self._closed:
            self._busy = False
            return
        self._busy = True
        future = self._loop.run_in_executor(self._executor, self._post, frame)
        future.add_done_callback(self._posted)

    def _post(self, frame: ImageFrame) -> None:
        # in the worker thread: the copy and pvxs' post release the loop
        self.pv.post(ndarray_value(self.nt, frame))

    def _posted(self, future: asyncio.Future) -> None:
        if future.cancelled():
            self._busy = False
            return
        error = future.exception()
        if error is not None:
            log.warning("%s: image not posted: %s", IMAGE_PV, error)
        else:
            self.posted += 1
        self._next()

    def close(self) -> None:
        self._closed = True
        self._pending = None
        self.pv.close()


__all__ = ["IMAGE_PV", "ImagePublisher", "ndarray_value"]
