"""How pipeline status reaches CA: bounded rate, one write per changed value, frame timestamps,
alarms, growing waveforms, ``Out:`` limits. Driven by a scripted pipeline service (no worker
processes: statuses are emitted faster than any pipeline would), served by the real CamiocIoc to
real clients (pyepics monitors, the C tools).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from ioc_support import FakeCameraService, parse_cainfo, wait_for

from camioc.core.api import DetectorState, PipelineEvents, PipelineStatus
from camioc.model.blocks import MAX_OUT_FIELDS, PROFILE_NELM
from camioc.model.pvnames import pipeline_pv

RATE = 10.0


class ScriptedPipelines:
    """The pipeline service methods the IOC uses; statuses are emitted by the test."""

    def __init__(self) -> None:
        self.statuses = {"pipe": PipelineStatus("pipe", camera_name="cam_a", saved=True,
                                                config={"camera_name": "cam_a", "name": "pipe"})}
        self.listeners: list[PipelineEvents] = []

    def ids(self) -> list[str]:
        return sorted(self.statuses)

    def pipeline_names(self) -> list[str]:
        return ["pipe"]

    def status(self, instance_id: str) -> PipelineStatus:
        return self.statuses[instance_id]

    def worker_health(self) -> dict[str, Any]:
        return {}  # no worker processes here

    def active_instances(self) -> dict[str, dict[str, Any]]:
        return {i: {} for i, s in self.statuses.items() if s.running}

    @property
    def running_names(self) -> list[str]:
        return [i for i, s in self.statuses.items() if s.running]

    async def stop_all(self) -> None: ...

    async def update_pipeline(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def set_image_publishing(self, instance_id: str, enabled: bool, min_period: float) -> None: ...

    def add_listener(self, listener: PipelineEvents) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: PipelineEvents) -> None:
        self.listeners.remove(listener)

    def emit(self, **changes: Any) -> PipelineStatus:
        status = self.statuses["pipe"] = replace(self.statuses["pipe"], **changes)
        for listener in self.listeners:
            listener.pipeline_status(status)
        return status


@pytest.fixture
async def scripted(pv_prefix, ca_repeater, beacon_sink):
    from camioc.ioc.server import CamiocIoc

    pipelines = ScriptedPipelines()
    ioc = CamiocIoc(pv_prefix, FakeCameraService({"cam_a": {}}), version="1", start_count=1, pipelines=pipelines,
                    result_publish_rate=RATE)
    await ioc.start()
    try:
        yield pipelines, ioc
    finally:
        await ioc.stop()


class Monitor:
    def __init__(self) -> None:
        self.events: list[tuple[Any, float, int]] = []
        self.lock = threading.Lock()

    def __call__(self, value=None, timestamp=None, severity=None, **_) -> None:
        with self.lock:
            self.events.append((value, timestamp, severity))


async def _monitor(epics_ca, name: str) -> tuple[Any, Monitor]:
    monitor = Monitor()
    pv = await asyncio.to_thread(epics_ca.PV, name, callback=monitor, auto_monitor=True, form="time")
    assert await asyncio.to_thread(pv.wait_for_connection, 5), name
    await asyncio.to_thread(epics_ca.ca.flush_io)
    await wait_for(lambda: monitor.events, message=f"first value of {name}")
    return pv, monitor


async def test_results_are_published_at_a_bounded_rate_only_when_changed(scripted, pv_prefix, epics_ca):
    pipelines, _ioc = scripted
    changing_pv, changing = await _monitor(epics_ca, pipeline_pv(pv_prefix, "pipe", "CentroidX_RBV"))
    constant_pv, constant = await _monitor(epics_ca, pipeline_pv(pv_prefix, "pipe", "CentroidY_RBV"))
    try:
        assert changing.events[-1][2] == 3, "INVALID before any data"
        pipelines.emit(running=True, state=DetectorState.Acquire)
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < 1.5:  # ~400 statuses/s, far above the publish rate
            count += 1
            pipelines.emit(results={"x_center_of_mass": float(count), "y_center_of_mass": 5.0},
                           timestamp=1_700_000_000.0 + count)
            await asyncio.sleep(0.0025)
        elapsed = time.monotonic() - started
        await wait_for(lambda: changing.events[-1][0] == float(count), message="the last value arrives")
    finally:
        for pv in (changing_pv, constant_pv):
            await asyncio.to_thread(pv.disconnect)
    updates = len(changing.events) - 1
    assert count > 5 * RATE * elapsed
    assert 2 <= updates <= RATE * elapsed + 2, (updates, count, elapsed)
    value, timestamp, severity = changing.events[-1]
    assert (timestamp, severity) == (1_700_000_000.0 + count, 0), "the frame's timestamp, no alarm"
    assert [event[0] for event in constant.events[1:]] == [5.0], "an unchanged value is written once"


async def test_alarms_follow_running_and_processing_errors(scripted, ca, pv_prefix):
    pipelines, _ioc = scripted
    pv = pipeline_pv(pv_prefix, "pipe", "Total_RBV")

    async def alarm() -> list[str]:
        return (await ca.caget("-a", pv)).stdout.split()[-2:]

    pipelines.emit(running=True, results={"intensity": 1234}, timestamp=time.time())
    await wait_for(lambda: _is(ca, pv, "1234"), message="value")
    assert (await ca.caget("-a", pv)).stdout.split()[-1] == "1234", "no alarm"
    pipelines.emit(error="Invalid background image file: x", results={"intensity": 1234, "width": 10})
    await wait_for(lambda: _last(alarm, ["UDF", "INVALID"]), message="INVALID on a processing error")
    assert await ca.get_text(pipeline_pv(pv_prefix, "pipe", "StatusMessage_RBV")) == "Invalid background image file: x"
    pipelines.emit(error="", results={"intensity": 99})
    await wait_for(lambda: _is(ca, pv, "99"), message="cleared")
    pipelines.emit(running=False, state=DetectorState.Idle)
    await wait_for(lambda: _last(alarm, ["UDF", "INVALID"]), message="INVALID when stopped")
    assert await ca.get(pv) == "99", "the last value stays"
    pipelines.emit(running=True)  # a new run: the old results are no data
    await wait_for(lambda: _is(ca, pipeline_pv(pv_prefix, "pipe", "EnableCallbacks_RBV"), "Enable"), message="run")
    assert await alarm() == ["UDF", "INVALID"]
    pipelines.emit(results={"intensity": 7})
    await wait_for(lambda: _is(ca, pv, "7"), message="new results")


async def test_waveforms_grow_and_out_readbacks_are_limited(scripted, ca, pv_prefix):
    pipelines, ioc = scripted
    profile = pipeline_pv(pv_prefix, "pipe", "ProfileX_RBV")
    assert parse_cainfo(await ca.cainfo(profile))["Element count"] == str(PROFILE_NELM)
    user = {f"user_{index}": float(index) for index in range(MAX_OUT_FIELDS + 6)}
    pipelines.emit(running=True, results={"x_center_of_mass": 1.0, **user},
                   arrays={"x_profile": np.arange(5000, dtype=np.int64), "x_axis": np.linspace(0, 1, 5000)})
    await wait_for(lambda: _is(ca, f"{profile}.NELM", "8192"), message="waveforms re-created larger")
    result = await ca.caget("-t", "-#", "3", "-f", "1", profile)
    assert result.stdout.split()[1:] == ["0.0", "1.0", "2.0"]
    await wait_for(lambda: _is(ca, pipeline_pv(pv_prefix, "pipe", "Out:user_63_RBV"), "63"), message="Out:")
    outs = [name for name in ioc.pv_names() if ":Out:" in name]
    assert len(outs) == MAX_OUT_FIELDS
    result = await ca.caget(pipeline_pv(pv_prefix, "pipe", f"Out:user_{MAX_OUT_FIELDS}_RBV"), timeout=0.5)
    assert "not found" in result.output


async def _is(ca, pv: str, expected: str) -> bool:
    return await ca.try_get(pv) == expected


async def _last(read, expected) -> bool:
    return await read() == expected
