"""The device model: the walk over the config fields, codecs, sections and the generic put/post."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from camioc.config._fields import OptNumber
from camioc.config.pipeline import PipelineConfig
from camioc.config.pv import PV, Choice, Flag, Integer, Real, Text, Word, attr_of
from camioc.model.blocks import (
    BACKGROUND_EXTRAS,
    CAMERA_SETTINGS,
    PIPELINE_PVS,
    PIPELINE_SETTING_PVS,
    PIPELINE_SETTINGS,
)
from camioc.model.device import ConfiguredDevice, Device, checked_value
from camioc.model.records import NO_DATA, PVDef
from camioc.model.settings import DeviceSettings


class RecordingSink:
    """A transport stand-in that keeps what the device wrote."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Any]] = []

    async def post(self, attr, value, *, alarm, timestamp, force) -> bool:
        self.writes.append((attr, value))
        return True


def effective(**config) -> dict:
    return PipelineConfig.from_dict({"name": "p", "camera_name": "cam", **config}).to_dict()


def test_the_walk_finds_every_marked_field_in_field_order():
    assert [s.key for s in PIPELINE_SETTINGS.plain] == [
        "image_threshold", "image_background_enable", "image_background", "averaging", "max_frame_rate", "paused"]
    assert [s.key for s in PIPELINE_SETTINGS.sections] == [
        "image_region_of_interest", "image_good_region", "image_slices"]
    assert [s.attr for s in CAMERA_SETTINGS.settings] == [
        "reverse_x", "reverse_y", "rotate", "bin_x", "bin_y", "min_x", "min_y", "size_x", "size_y"]
    # every setpoint has its _RBV right after it, both in the served table
    names = [pv.name for pv in PIPELINE_SETTING_PVS]
    for setting in PIPELINE_SETTINGS.settings:
        assert names.index(setting.readback.name) == names.index(setting.setpoint.name) + 1
    assert set(BACKGROUND_EXTRAS) <= set(PIPELINE_PVS)


@pytest.mark.parametrize(("name", "attr"), [
    ("CentroidThreshold", "centroid_threshold"), ("ROI:MinX", "roi_min_x"), ("GoodRegion:GFScale", "good_region_gfscale"),
    ("BinX", "bin_x"), ("NumBackgroundImages", "num_background_images"),
])
def test_attr_names(name, attr):
    assert attr_of(name) == attr


@pytest.mark.parametrize(("codec", "config_value", "shown", "put", "written"), [
    (Real(zero_is_off=True), None, 0.0, 0.0, None),
    (Real(zero_is_off=True), 2.5, 2.5, 20.0, 20),
    (Real(), 0.3, 0.3, 0.25, 0.25),
    (Integer(zero_is_off=True), -3, -3, 0, None),
    (Integer(default=1), None, 1, 4, 4),
    (Flag(("No", "Yes")), True, "Yes", "No", False),
    (Choice({"Disable": False, "Enable": True, "Signed": "signed"}), 1, "Enable", "Signed", "signed"),
    (Choice({"Disable": False, "Enable": True, "Signed": "signed"}), None, "Disable", "Disable", False),
    (Word(("vertical", "horizontal")), "bogus", "vertical", "horizontal", "horizontal"),
    (Text(10), "a" * 20, "a" * 10, "  id  ", "id"),
    (Text(10), None, "", "   ", None),
])
def test_codecs(codec, config_value, shown, put, written):
    assert codec.to_pv(config_value) == shown
    written_value = codec.to_config(put)
    assert written_value == written and type(written_value) is type(written)


def test_sections_describe_the_config_value_of_their_setpoints():
    roi = PIPELINE_SETTINGS.sections[0]
    values = {"roi_min_x": 10, "roi_size_x": 100, "roi_min_y": 20, "roi_size_y": 0, "roi_enable": "Enable"}
    assert roi.describes(values) is None  # a size of 0: no ROI yet (pending values)
    values["roi_size_y"] = 50
    assert roi.describes(values) == [10, 100, 20, 50]
    assert roi.describes({**values, "roi_enable": "Disable"}) is None
    assert roi.in_force([10, 100, 20, 50]) == values
    assert roi.cleared() == {"roi_enable": "Disable"}
    slices = PIPELINE_SETTINGS.sections[2]
    assert slices.describes({"slices_number": 3, "slices_scale": 1.5, "slices_orientation": "horizontal"}) == {
        "number_of_slices": 3, "scale": 1.5, "orientation": "horizontal"}
    assert slices.cleared() == {"slices_number": 0}
    camera_roi = CAMERA_SETTINGS.sections[0]
    assert camera_roi.cleared() == {"size_x": 0, "size_y": 0}


def test_enum_puts_are_checked_and_stored_as_state_strings():
    spec = PVDef("mode", "Mode", "mbbo", "Mode", enums=("A", "B"))
    assert checked_value(spec, 1) == "B" and checked_value(spec, 1.0) == "B" and checked_value(spec, "A") == "A"
    with pytest.raises(ValueError, match="valid states: 0=A, 1=B"):
        checked_value(spec, 2)
    with pytest.raises(ValueError, match="not a finite number"):
        checked_value(PVDef("x", "X", "ao", "X"), float("nan"))


async def test_a_device_without_a_handler_refuses_the_put():
    device = Device((PVDef("x", "X", "ao", "X"),))
    with pytest.raises(PermissionError, match="X is not writable"):
        await device.put("x", 1.0)


async def test_the_generic_put_writes_config_and_shows_what_is_in_force():
    updates: list[dict] = []
    config = effective()

    async def update(changes):
        nonlocal config
        updates.append(changes)
        config = PipelineConfig.from_dict({**config, **changes}).to_dict()
        return config

    device = ConfiguredDevice(PIPELINE_PVS, PIPELINE_SETTINGS, update)
    sink = RecordingSink()
    device.attach(sink)
    await device.apply_config(config)
    assert await device.put("centroid_threshold", 20.0) == 20.0
    assert updates[-1] == {"image_threshold": 20}
    assert device.values["centroid_threshold_rbv"] == 20.0
    # a section is written whole, only once the setpoints describe one
    for attr, value in (("roi_min_x", 5), ("roi_size_x", 30), ("roi_min_y", 6)):
        await device.put(attr, value)
    assert len(updates) == 1
    await device.put("roi_enable", "Enable")
    assert len(updates) == 1  # still no height
    await device.put("roi_size_y", 40)
    assert updates[-1] == {"image_region_of_interest": [5, 30, 6, 40]}
    assert device.values["roi_enable_rbv"] == "Enable"
    # removed elsewhere: the setpoints stop describing it
    config = PipelineConfig.from_dict({**config, "image_region_of_interest": None}).to_dict()
    await device.apply_config(config)
    assert device.values["roi_enable"] == "Disable" and device.values["roi_size_y"] == 40
    assert ("roi_enable", "Disable") in sink.writes


async def test_a_refused_section_put_keeps_the_previous_setpoint():
    async def refuse(changes):
        raise ValueError("ROI outside the image")

    device = ConfiguredDevice(PIPELINE_PVS, PIPELINE_SETTINGS, refuse)
    for attr, value in (("roi_min_x", 5), ("roi_size_x", 30), ("roi_enable", "Enable")):
        await device.put(attr, value)
    with pytest.raises(ValueError, match="outside"):
        await device.put("roi_size_y", 40)
    assert device.values["roi_size_y"] == 0


async def test_a_new_setting_is_one_annotated_field():
    """What DESIGN/docs promise: a marked field is served (rows, conversion, put) with no other edit."""

    class Extended(PipelineConfig):
        image_scale: Annotated[OptNumber, PV(
            "ImageScale", "ao", "Pixel scale, 0 = off (image_scale)", "Pixel scale in force",
            Real(zero_is_off=True), prec=3, low=0.0, high=1e6)] = None

    settings = DeviceSettings.of(Extended)
    rows = {pv.name: pv for pv in settings.pvs()}
    assert rows["ImageScale"].writable and rows["ImageScale"].high == 1e6
    assert rows["ImageScale_RBV"].record == "ai" and not rows["ImageScale_RBV"].writable
    changes: list[dict] = []

    async def update(change):
        changes.append(change)
        return {"image_scale": change["image_scale"]}

    device = ConfiguredDevice(settings.pvs(), settings, update)
    await device.put("image_scale", 2.5)
    assert changes == [{"image_scale": 2.5}] and device.values["image_scale_rbv"] == 2.5
    await device.put("image_scale", 0.0)
    assert changes[-1] == {"image_scale": None} and device.values["image_scale_rbv"] == 0.0


async def test_posts_reach_every_sink_with_alarms():
    device = Device((PVDef("x", "X", "ai", "X"),))
    first, second = RecordingSink(), RecordingSink()
    device.attach(first)
    device.attach(second)
    await device.post("x", 1.5, alarm=NO_DATA)
    assert first.writes == second.writes == [("x", 1.5)]
