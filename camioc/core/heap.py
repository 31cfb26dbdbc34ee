"""Keep Python's full garbage collections short in the control process.

The control process holds a large, long-lived heap: every served PV is a caproto record with its
fields (tens of objects each), and a camera with four pipelines is about a million tracked
objects. CPython's oldest-generation collection walks all of them, and with 1 MP frames arriving
at 50 Hz it ran every ten seconds or so and stopped the event loop for 50-120 ms each time: the
tail of a ``caget`` (issue 11). That heap changes only when cameras or pipelines come and go.

:class:`HeapSettler` therefore *freezes* it (``gc.freeze``: moved to the permanent generation,
never walked again) shortly after start and after every burst of instance changes, once the
transports have built or dropped the PVs. After additions the young generations are collected
and the rest frozen: no pause. After a removal (or at start) the settle unfreezes and collects
everything once, so cyclic garbage left by a removed instance is freed then, not kept for ever;
that one pause costs what a single full collection costs anyway, once per removal instead of
every few seconds. Objects that become garbage without cycles are freed by reference counting,
frozen or not.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from camioc.core.api import CameraStatus, ImageSnapshot, PipelineStatus

log = logging.getLogger(__name__)

#: Seconds after the last instance change before the heap is settled: long enough for the CA and
#: PVA adapters to finish building an instance's PVs (they do it asynchronously after the event).
SETTLE_DELAY = 3.0


class HeapSettler:
    """A listener of the camera and pipeline managers that freezes the long-lived heap."""

    def __init__(self, delay: float = SETTLE_DELAY) -> None:
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._full = True  # the first settle (at start) collects everything
        #: settles done, full ones among them, and the objects frozen now (for logs and tests)
        self.settles = 0
        self.full_settles = 0
        self.frozen = 0

    def schedule(self, *, removal: bool = False) -> None:
        """Settle ``delay`` seconds from now (a later call moves it; ``removal``: objects were let
        go, collect everything then): call on the loop thread."""
        self._full = self._full or removal
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._delay, self.settle)

    def settle(self) -> None:
        """Freeze the heap; after a removal, first unfreeze and collect it all (one full pause)."""
        self._timer = None
        full, self._full = self._full, False
        started = time.perf_counter()
        if full:
            gc.unfreeze()
            collected = gc.collect()
            self.full_settles += 1
        else:
            collected = gc.collect(1)
        gc.freeze()
        self.settles += 1
        self.frozen = gc.get_freeze_count()
        log.debug("heap settled (%s): %d unreachable objects collected, %d frozen, in %.0f ms",
                  "full" if full else "young", collected, self.frozen, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Cancel a pending settle and give the frozen objects back to the collector."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gc.unfreeze()

    # the manager events after which the set of PVs has changed (names unused: any change counts)
    def camera_added(self, name: str) -> None:
        self.schedule()

    def camera_removed(self, name: str) -> None:
        self.schedule(removal=True)

    def instances_changed(self, name: str) -> None:
        self.schedule()  # a camera instance started or stopped: its PVs stay (they are the config's)

    def pipeline_added(self, instance_id: str) -> None:
        self.schedule()

    def pipeline_removed(self, instance_id: str) -> None:
        self.schedule(removal=True)

    # status and images change values, not the set of PVs
    def camera_status(self, status: CameraStatus) -> None:
        pass

    def camera_image(self, snapshot: ImageSnapshot) -> None:
        pass

    def pipeline_status(self, status: PipelineStatus) -> None:
        pass

    def pipeline_image(self, snapshot: ImageSnapshot) -> None:
        pass

__all__ = ["HeapSettler", "SETTLE_DELAY"]
