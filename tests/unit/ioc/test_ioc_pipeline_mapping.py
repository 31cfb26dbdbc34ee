"""How pipeline configs and outputs map to PV values (pure functions of camioc.model.pipeline)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camioc.config.pipeline import PipelineConfig
from camioc.model.blocks import MAX_OUT_FIELDS, PIPELINE_SETTING_PVS, PROFILE_NELM
from camioc.model.pipeline import (
    BACKGROUND_CONFIG,
    OutFields,
    background_mode,
    config_json,
    config_number,
    grown_capacity,
    needed_array_length,
    result_number,
    settings_in_force,
)


def effective(**config) -> dict:
    return PipelineConfig.from_dict({"name": "p_sp1", "camera_name": "cam", **config}).to_dict()


def test_defaults_read_as_off():
    values = settings_in_force(effective())
    assert values == {
        "centroid_threshold": 0.0, "roi_min_x": 0, "roi_size_x": 0, "roi_min_y": 0, "roi_size_y": 0,
        "roi_enable": "Disable", "enable_background": "Disable", "background_id": "",
        "good_region_enable": "Disable", "good_region_threshold": 0.0, "good_region_gfscale": 0.0,
        "slices_number": 0, "slices_scale": 0.0, "slices_orientation": "vertical", "averaging": 0,
        "max_array_rate": 0.0, "pause": "No",
    }
    writable = {spec.attr for spec in PIPELINE_SETTING_PVS if spec.writable}
    local = {"save_background", "num_background_images"}  # not config keys
    assert set(values) == writable - local


def test_settings_in_force():
    values = settings_in_force(effective(
        image_threshold=20, image_region_of_interest=[10, 100, 20, 50], image_background_enable="signed",
        image_background="cam_20260101_000000_000000", image_good_region={"threshold": 0.5},
        image_slices={"number_of_slices": 5, "orientation": "horizontal"}, averaging=-3, max_frame_rate=2.5,
        pause=True))
    assert values["centroid_threshold"] == 20.0
    assert [values[k] for k in ("roi_min_x", "roi_size_x", "roi_min_y", "roi_size_y", "roi_enable")] == \
        [10, 100, 20, 50, "Enable"]
    assert (values["enable_background"], values["background_id"]) == ("Signed", "cam_20260101_000000_000000")
    assert (values["good_region_enable"], values["good_region_threshold"], values["good_region_gfscale"]) == \
        ("Enable", 0.5, 1.8)
    assert (values["slices_number"], values["slices_scale"], values["slices_orientation"]) == (5, 2.0, "horizontal")
    assert (values["averaging"], values["max_array_rate"], values["pause"]) == (-3, 2.5, "Yes")


@pytest.mark.parametrize("mode", list(BACKGROUND_CONFIG))
def test_background_modes_round_trip(mode):
    config = effective(image_background_enable=BACKGROUND_CONFIG[mode])
    assert background_mode(config["image_background_enable"]) == mode


def test_config_numbers_are_json_integers_when_integral():
    assert config_number(20.0) == 20 and isinstance(config_number(20.0), int)
    assert config_number(0.25) == 0.25


def test_config_json_is_compact_and_bounded():
    text = config_json({"b": 1, "a": (1, 2)})
    assert text == '{"a":[1,2],"b":1}'
    long = config_json({"x": "y" * 100}, limit=40)
    assert len(long) == 40 and long.endswith("...")


@pytest.mark.parametrize(("value", "expected"), [
    (1, 1.0), (np.float32(2.5), 2.5), (np.int64(7), 7.0), (True, 1.0), (None, None), ("text", None),
    (math.nan, None), (math.inf, None), (np.array([1, 2]), None),
])
def test_result_numbers(value, expected):
    assert result_number(value) == expected


def test_waveform_capacity_grows_in_powers_of_two():
    assert needed_array_length({"x_profile": np.zeros(1280), "y_profile": np.zeros(960), "other": np.zeros(9999)}) \
        == 1280
    assert grown_capacity(PROFILE_NELM, 1280) == PROFILE_NELM
    assert grown_capacity(PROFILE_NELM, 5000) == 8192
    assert grown_capacity(8192, 8193) == 16384


def test_out_fields_limits_and_collisions():
    outs = OutFields()
    results = {"x_center_of_mass": 1.0, "my.value": 1.0, "my_value": 2.0, "label": "ok", "array": np.zeros(3),
               "timestamp": 5.0, "flag": True}
    specs, refused = outs.new_specs(results)
    assert [(spec.source, spec.name, spec.record) for spec in specs] == [
        ("my.value", "Out:my_value_RBV", "ai"), ("label", "Out:label_RBV", "stringin"), ("flag", "Out:flag_RBV", "ai")]
    assert refused == ["my_value"], "its sanitised name is taken"
    outs.add(object(), specs)
    assert outs.new_specs(results) == ([], [])
    many = {f"field_{index}": float(index) for index in range(100)}
    specs, refused = outs.new_specs(many)
    assert len(specs) == MAX_OUT_FIELDS - 3 and len(refused) == 100 - (MAX_OUT_FIELDS - 3)
    assert len({spec.attr for spec in specs}) == len(specs)
