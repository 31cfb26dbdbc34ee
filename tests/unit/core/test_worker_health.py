"""One measurement of a worker per second, shared by the health PVs and the REST statistics."""

from __future__ import annotations

import time
from typing import Any, cast

from camioc.core.api import HEALTH_PERIOD
from camioc.core.instances import Instance
from camioc.core.worker import WorkerHandle


class CountingHandle:
    """A running worker whose ``usage()`` says how often it was measured."""

    def __init__(self) -> None:
        self.calls = 0
        self.alive = True

    def usage(self) -> dict[str, float]:
        self.calls += 1
        return {"cpu": 12.5 * self.calls, "memory": 50e6}


def _instance(handle: CountingHandle) -> Instance:
    instance = Instance("cam")
    instance.handle = cast(WorkerHandle, handle)
    instance.pid = 4321
    return instance


def _statistics(instance: Instance) -> dict[str, Any]:
    return instance.statistics(total_bytes=0, clients=0, rx=(0.0, 0), tx=(0.0, 0), header_changes=0, frame_shape="")


def test_health_and_statistics_share_one_measurement_per_period() -> None:
    handle = CountingHandle()
    instance = _instance(handle)
    now = time.monotonic()
    health = instance.health(now)
    assert health is not None and (health.pid, health.cpu, health.memory) == (4321, 12.5, 50_000_000)
    stats = _statistics(instance)
    assert (stats["cpu"], stats["memory"], stats["pid"]) == (12.5, 50e6, "4321")
    assert instance.health(now + HEALTH_PERIOD / 2) is not None
    assert handle.calls == 1  # within the period nobody measures again
    later = instance.health(now + HEALTH_PERIOD)
    assert later is not None and later.cpu == 25.0 and handle.calls == 2
    assert later.uptime > health.uptime


def test_no_health_without_a_running_worker() -> None:
    handle = CountingHandle()
    instance = _instance(handle)
    handle.alive = False
    assert instance.health() is None
    assert (_statistics(instance)["cpu"], _statistics(instance)["memory"]) == (0.0, 0.0)
    assert handle.calls == 0
