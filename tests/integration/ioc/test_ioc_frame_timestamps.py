"""A camera's frame readbacks (``cam1:UniqueId_RBV``, ``ArrayCounter_RBV``, ...) carry the frame's
timestamp, not the server clock (issue 10; results and images already do)."""

from __future__ import annotations

import asyncio
import threading

from ioc_support import wait_for

FRAME_TIME = 1_600_000_000.25  # 2020: far from the server clock


class Stamps:
    def __init__(self) -> None:
        self.events: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, value=None, timestamp=None, **_) -> None:
        with self.lock:
            self.events.append((value, timestamp))


async def test_camera_frame_readbacks_carry_the_frame_timestamp(ioc, service, pv_prefix, epics_ca):
    monitors = {name: Stamps() for name in ("UniqueId_RBV", "ArrayCounter_RBV")}
    pvs = []
    for name, stamps in monitors.items():
        pv = await asyncio.to_thread(epics_ca.PV, f"{pv_prefix}cam_a:cam1:{name}", callback=stamps,
                                     auto_monitor=True, form="time")
        assert await asyncio.to_thread(pv.wait_for_connection, 5), name
        pvs.append(pv)
    try:
        service.emit_status("cam_a", running=True, pulse_id=4242, frame_count=17, timestamp=FRAME_TIME)
        await wait_for(lambda: monitors["UniqueId_RBV"].events[-1:] and monitors["UniqueId_RBV"].events[-1][0] == 4242,
                       message="pulse id over CA")
        await wait_for(lambda: monitors["ArrayCounter_RBV"].events[-1:]
                       and monitors["ArrayCounter_RBV"].events[-1][0] == 17, message="counter over CA")
        for name, stamps in monitors.items():
            assert abs(stamps.events[-1][1] - FRAME_TIME) < 1e-3, (name, stamps.events[-1])
    finally:
        for pv in pvs:
            await asyncio.to_thread(pv.disconnect)
