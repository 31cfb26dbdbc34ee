"""ADCore's PV sets in the device model: kept settings, derived NDStats values, the driver's identity."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from camioc.model.adcore import EPICS_EPOCH, frame_time_values
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, PIPELINE_PVS
from camioc.model.camera import ImageDevice, frame_period, identity_values
from camioc.model.pipeline import with_derived
from camioc.model.records import spec_by_name


def test_existing_names_keep_their_rows_and_adcore_names_are_added():
    camera, image, pipeline = spec_by_name(CAMERA_PVS), spec_by_name(IMAGE_PVS), spec_by_name(PIPELINE_PVS)
    assert camera["ArrayCounter_RBV"].desc == "Frames sent"  # camioc's own row, not ADCore's
    assert camera["ImageMode"].enums == ("Single", "Multiple", "Continuous")
    assert camera["ImageMode"].value == "Continuous"
    assert image["EnableCallbacks"].desc == "Publish images on CA"
    assert pipeline["EnableCallbacks"].desc == "Start (1) / stop (0) the instance"
    assert pipeline["ComputeCentroid"].kept and pipeline["ComputeCentroid"].value == "Yes"
    assert not pipeline["ComputeCentroid_RBV"].kept
    assert pipeline["Net_RBV"].source == "intensity"


def test_a_kept_setting_is_accepted_and_shown_on_its_readback():
    posted: list[tuple[str, Any]] = []

    class Sink:
        async def post(self, attr: str, value: Any, **kwargs: Any) -> bool:
            posted.append((attr, value))
            return True

    device = ImageDevice(lambda enabled, period: None, enabled=True, min_period=0.5, port="cam:image1",
                         source_port="cam")
    device.attach(Sink())
    assert asyncio.run(device.put("queue_size", 5)) == 5
    assert device.values["queue_size_rbv"] == 5 and ("queue_size_rbv", 5) in posted
    with pytest.raises(ValueError, match="fixed"):
        asyncio.run(device.put("nd_array_port_set", "other"))
    assert device.values["nd_array_port_set"] == "cam"
    assert device.values["port_name"] == "cam:image1"


def test_driver_identity_and_frame_period():
    assert identity_values({"source_type": "simulation", "source": "simulation"}) == {
        "manufacturer": "camioc", "model": "simulation", "serial_number": ""}
    assert identity_values({"source_type": "epics", "source": "X:CAM"})["serial_number"] == "X:CAM"
    assert frame_period({"source_type": "simulation", "frame_rate": 20.0}, 5.0) == pytest.approx(0.05)
    assert frame_period({"source_type": "epics"}, 4.0) == pytest.approx(0.25)
    assert frame_period({"source_type": "epics"}, 0.0) == 0.0


def test_derived_ndstats_values():
    assert with_derived({"intensity": 600, "width": 3, "height": 2})["mean_value"] == pytest.approx(100.0)
    assert "mean_value" not in with_derived({"intensity": 600})
    assert with_derived({"mean_value": 7.0, "intensity": 600, "width": 3, "height": 2})["mean_value"] == 7.0
    values = frame_time_values(EPICS_EPOCH + 12.25)
    assert values == {"time_stamp": pytest.approx(12.25), "epics_ts_sec": 12, "epics_ts_nsec": 250_000_000}
