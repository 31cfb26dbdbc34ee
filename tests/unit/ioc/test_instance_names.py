"""Short, stable PV names of instances (camioc.model.instance_names)."""

from __future__ import annotations

import uuid

from camioc.model.blocks import OUT_NAME_LENGTH, PIPELINE_PVS, out_field_spec
from camioc.model.instance_names import (
    CAMERA_NAME_LENGTH,
    PIPELINE_NAME_LENGTH,
    PIPELINE_SUFFIX_LENGTH,
    camera_pv_name,
    out_name_length,
    pipeline_image_plugin,
    pipeline_pv_name,
    short_name,
)
from camioc.model.pvnames import DEFAULT_PREFIX, MAX_PV_NAME_LENGTH, pipeline_prefix


def test_names_that_fit_are_their_own_pv_names():
    assert pipeline_pv_name("simulation_sp1") == "simulation_sp1"
    assert camera_pv_name("SARES20-CAMS142-M5") == "SARES20-CAMS142-M5"
    assert pipeline_pv_name("x" * PIPELINE_NAME_LENGTH) == "x" * PIPELINE_NAME_LENGTH


def test_a_uuid_gets_a_short_name_that_is_the_same_in_every_run():
    instance_id = "8c6a5f0e-5b1c-4d3e-9f00-123456789abc"
    short = pipeline_pv_name(instance_id)
    assert short == "8c6a5f0e-5b1c-_e7756b9f"  # stable: a literal, not recomputed
    assert len(short) == PIPELINE_NAME_LENGTH
    others = {pipeline_pv_name(str(uuid.uuid4())) for _ in range(200)}
    assert len(others) == 200 and all(len(name) <= PIPELINE_NAME_LENGTH for name in others)


def test_the_budget_comes_from_the_tables():
    longest = max(len(spec.name) for spec in PIPELINE_PVS)
    assert PIPELINE_SUFFIX_LENGTH >= longest
    assert len(DEFAULT_PREFIX) + PIPELINE_NAME_LENGTH + 1 + PIPELINE_SUFFIX_LENGTH == MAX_PV_NAME_LENGTH
    assert CAMERA_NAME_LENGTH >= PIPELINE_NAME_LENGTH  # today's longest camera names keep theirs


def test_names_that_differ_only_after_the_cut_get_different_pv_names():
    a, b = "SARES20-CAMS142-M5-PROFILE-A", "SARES20-CAMS142-M5-PROFILE-B"
    assert short_name(a, 20) != short_name(b, 20)
    assert short_name(a, 20).startswith("SARES20-CAM")


def test_a_pipeline_named_like_a_camera_gets_image2():
    assert pipeline_image_plugin("simulation", ["simulation", "other"]) == "image2:"
    assert pipeline_image_plugin("simulation_sp", ["simulation"]) == "image1:"


def test_out_readbacks_are_cut_to_fit():
    prefix = pipeline_prefix(DEFAULT_PREFIX, pipeline_pv_name(str(uuid.uuid4())))
    length = out_name_length(prefix)
    spec = out_field_spec(0, "a_very_long_user_output_field_name_of_a_script", length=length)
    assert len(prefix + spec.name) <= MAX_PV_NAME_LENGTH
    assert out_name_length(pipeline_prefix(DEFAULT_PREFIX, "p")) == OUT_NAME_LENGTH
