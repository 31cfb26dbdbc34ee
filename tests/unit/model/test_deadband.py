"""MDEL/ADEL (``PVDef.mdel``): a noisy diagnostic is posted only when it moves by more than its deadband."""

from __future__ import annotations

import asyncio
from typing import Any

from camioc.model.device import Device
from camioc.model.records import NO_ALARM, NO_DATA, PVDef

RATE = PVDef("rate", "ArrayRate_RBV", "ai", "Frame rate", egu="Hz", prec=2, mdel=0.01)
CENTROID = PVDef("centroid", "CentroidX_RBV", "ai", "Centroid X", prec=3)


class Recorder:
    """A sink that keeps what reached it (as a transport would serve it)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []

    async def post(self, attr: str, value: Any, *, alarm, timestamp, force) -> bool:
        self.posted.append((attr, value))
        return True


def _run(posts: list[tuple[str, float, Any]]) -> list[tuple[str, Any]]:
    device, sink = Device((RATE, CENTROID)), Recorder()
    device.attach(sink)

    async def main() -> None:
        for attr, value, alarm in posts:
            await device.post(attr, value, alarm=alarm)

    asyncio.run(main())
    return sink.posted


def test_changes_within_the_deadband_are_not_posted():
    posted = _run([("rate", 10.0, NO_ALARM), ("rate", 10.004, NO_ALARM), ("rate", 10.009, NO_ALARM),
                   ("rate", 10.02, NO_ALARM), ("rate", 10.025, NO_ALARM)])
    assert posted == [("rate", 10.0), ("rate", 10.02)]


def test_an_alarm_change_is_posted_whatever_the_deadband():
    posted = _run([("rate", 10.0, NO_ALARM), ("rate", 10.0, NO_DATA)])
    assert posted == [("rate", 10.0), ("rate", 10.0)]


def test_measurements_have_no_deadband():
    posted = _run([("centroid", 1.0, NO_ALARM), ("centroid", 1.0001, NO_ALARM)])
    assert posted == [("centroid", 1.0), ("centroid", 1.0001)]
