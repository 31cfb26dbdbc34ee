"""DeviceGroup.post: what a post costs the event loop (issue 11: caget latency under load)."""

from __future__ import annotations

import asyncio

import pytest

from camioc.ioc import groups
from camioc.ioc.groups import WRITES_PER_SLICE, group_class
from camioc.model.device import Device
from camioc.model.records import NO_ALARM, AlarmSeverity, AlarmStatus, PVDef

SPECS = (
    PVDef("centroid", "CentroidX_RBV", "ai", "Centroid x", prec=3),
    PVDef("sigma", "SigmaX_RBV", "ai", "Sigma x", prec=3),
)
INVALID = (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)


async def _group():
    cls = group_class("PostingGroup", SPECS)
    group = cls("TEST:", Device(SPECS))
    await group.initialise()
    return group


def _count_alarm_field_writes(group, attr: str) -> list[int]:
    """Wrap the STAT field's write of ``attr``: the returned list grows by one per write."""
    field = group.channels[attr].field_inst.alarm_status
    calls: list[int] = []
    original = field.write

    async def counting(*args, **kwargs):
        calls.append(1)
        return await original(*args, **kwargs)

    field.write = counting
    return calls


async def test_unchanged_alarm_does_not_rewrite_the_alarm_fields():
    group = await _group()
    stat_writes = _count_alarm_field_writes(group, "centroid")
    await group.device.post("centroid", 1.0, alarm=NO_ALARM)
    baseline = len(stat_writes)
    for value in (2.0, 3.0, 4.0):
        await group.device.post("centroid", value, alarm=NO_ALARM)
    assert len(stat_writes) == baseline, "a value change with the same alarm rewrote STAT"
    assert group.channels["centroid"].value == pytest.approx(4.0)


async def test_changed_alarm_still_reaches_the_record_fields():
    group = await _group()
    await group.device.post("centroid", 1.0, alarm=NO_ALARM)
    await group.device.post("centroid", 1.0, alarm=INVALID)
    channel = group.channels["centroid"]
    assert channel.severity == AlarmSeverity.INVALID_ALARM
    assert channel.field_inst.current_alarm_severity.value in (AlarmSeverity.INVALID_ALARM, "INVALID")
    await group.device.post("centroid", 2.0, alarm=NO_ALARM)
    assert channel.severity == AlarmSeverity.NO_ALARM
    assert channel.field_inst.alarm_status.value in (AlarmStatus.NO_ALARM, "NO_ALARM")


async def test_a_long_series_of_posts_lets_other_tasks_run():
    group = await _group()
    ran_between: list[int] = []
    posted = 0

    async def other_task():
        while True:
            ran_between.append(posted)
            await asyncio.sleep(0)

    groups._writes_since_yield = 0
    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    ran_between.clear()
    try:
        for index in range(4 * WRITES_PER_SLICE):
            await group.device.post("sigma", float(index + 1), alarm=NO_ALARM)
            posted += 1
    finally:
        other.cancel()
    # without the loop being shared the other task would not run until the series is done
    assert [count for count in ran_between if 0 < count < 4 * WRITES_PER_SLICE], ran_between
