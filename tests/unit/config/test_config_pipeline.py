"""Pipeline configuration: cam_server's files, defaults, messages, runtime defaults, merging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camioc.config.pipeline import (
    CAMSERVER_DEFAULT_CONFIGURATION,
    PIPELINE_TYPES,
    UNSUPPORTED_KEYS,
    ImageGoodRegion,
    ImageSlices,
    PipelineConfig,
    Rotation,
    client_config,
    expand_config,
    merge_update,
    pipeline_groups,
    verify_attributes,
)
from camioc.errors import ConfigError

NOT_CONFIGS = {"servers.json", "permanent_instances.json"}
CAMERA = {"camera_name": "simulation"}


def fixture_files(camserver_fixtures: Path) -> list[Path]:
    files = sorted(p for p in (camserver_fixtures / "pipeline_config").glob("*.json") if p.name not in NOT_CONFIGS)
    assert len(files) >= 12
    return files


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def message_of(mapping: Any) -> str:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(mapping)
    return str(info.value)


# ------------------------------------------------------------------------------------------------
# cam_server's own files


def test_every_camserver_pipeline_file_loads_and_round_trips(camserver_fixtures: Path) -> None:
    for path in fixture_files(camserver_fixtures):
        raw = load(path)
        config = PipelineConfig.from_dict(raw)
        stored, effective = config.to_dict(runtime_defaults=False), config.to_dict()
        for form in (stored, effective):
            json.dumps(form)
            assert list(form)[: len(raw)] == list(raw), f"{path.name}: key order changed"
            for key, value in raw.items():
                if value is not None and key != "group":
                    assert form[key] == value, f"{path.name}: {key} changed"
            assert PipelineConfig.from_dict(form) == config, f"{path.name}: does not round-trip"
        assert raw == load(path), "from_dict must not modify its input"
        if config.pipeline_type == "processing":  # the stored form is cam_server's expanded config
            assert stored == {**expand_config(raw), **{k: stored[k] for k in ("group",) if k in raw}}


def test_fixture_typed_values(camserver_fixtures: Path) -> None:
    folder = camserver_fixtures / "pipeline_config"
    four = PipelineConfig.from_dict(load(folder / "pipeline_example_4.json"))
    assert four.camera_name == "simulation" and four.name == ""
    assert four.image_threshold == 0.5
    assert four.image_region_of_interest == (0, 100, 0, 100)
    assert four.image_good_region == ImageGoodRegion(threshold=0.9, gfscale=3)
    assert four.image_slices == ImageSlices(number_of_slices=1, scale=1.0, orientation="vertical")

    sp2 = PipelineConfig.from_dict(load(folder / "simulation2_sp.json"))
    assert sp2.function == "transparent"
    assert sp2.include == ("image", "width", "height", "processing_parameters", "x_axis", "y_axis", "value")
    assert sp2.exclude == ()
    assert (sp2.processing_threads, sp2.mode, sp2.block, sp2.group) == (4, "PUB", False, ("simulation", "sp"))
    assert sp2.extras == {"_max_frame_rate": 1.1}

    sp = PipelineConfig.from_dict(load(folder / "simulation_sp.json"))
    assert sp.image_background_enable is True
    assert sp.image_background == "simulation_20240320_144334_156830"
    assert (sp.no_client_timeout, sp.debug, sp.notify_on_error) == (0, True, True)
    assert sp.extras["pv_fit_x"] == "TESTIOC:TESTCALCOUT:Input"
    assert sp.extras["_create_header"] == "once" and sp.create_header == "on_change"

    sim = PipelineConfig.from_dict(load(folder / "simulation.json"))
    assert (sim.image_threshold, sim.max_frame_rate, sim.notify_on_error) == (1.0, 10.1, False)

    stream = PipelineConfig.from_dict(load(folder / "stream_example.json"))
    assert (stream.pipeline_type, stream.camera_name, stream.input_mode) == ("stream", None, "PULL")
    assert stream.bsread_address == "tcp://localhost:9999" and stream.bsread_channels == ()
    assert (stream.abort_on_timeout, stream.stream_timeout) == (True, 20)
    assert stream.extras["thread_buffer_size"] == 20
    assert "image_threshold" not in stream.to_dict(), "processing defaults only apply to processing pipelines"


def test_pipeline_groups_of_the_camserver_fixtures(camserver_fixtures: Path) -> None:
    configs = [PipelineConfig.from_dict(load(p), name=p.stem) for p in fixture_files(camserver_fixtures)]
    assert pipeline_groups(configs) == {
        "simulation": ["simulation", "simulation2_sp", "simulation_sp"],
        "sp": ["simulation2_sp", "simulation_sp"],
    }
    configs = [
        PipelineConfig.from_dict({**CAMERA, "name": "a", "group": "g"}),
        PipelineConfig.from_dict({**CAMERA, "name": "b", "group": ["g", "h"]}),
    ]
    assert pipeline_groups(configs) == {"g": ["a", "b"], "h": ["b"]}


# ------------------------------------------------------------------------------------------------
# defaults


def test_camserver_defaults_in_the_stored_form() -> None:
    config = PipelineConfig.from_dict(CAMERA)
    assert config.to_dict(runtime_defaults=False) == {**CAMERA, **CAMSERVER_DEFAULT_CONFIGURATION}


def test_runtime_defaults_in_the_effective_form() -> None:
    effective = PipelineConfig.from_dict({**CAMERA, "name": "p"}).to_dict()
    expected = {
        "no_client_timeout": 10,
        "queue_size": 10,
        "mode": "PUB",
        "block": False,
        "data_compression": None,
        "data_header_compression": None,
        "paused": False,
        "pause": False,
        "notify_on_error": False,
        "abort_on_error": True,
        "abort_on_timeout": False,
        "create_header": "on_change",
        "allow_type_changes": True,
        "allow_shape_changes": True,
    }
    assert {k: effective[k] for k in expected} == expected
    assert type(effective["no_client_timeout"]) is int


def test_sub_defaults_are_filled_when_the_sections_are_set() -> None:
    config = PipelineConfig.from_dict(
        {**CAMERA, "image_good_region": {}, "image_slices": {"orientation": "horizontal"}}
    )
    shown = config.to_dict()
    assert shown["image_good_region"] == {"threshold": 0.3, "gfscale": 1.8}
    assert shown["image_slices"] == {"orientation": "horizontal", "number_of_slices": 1, "scale": 2.0}
    assert config.image_slices == ImageSlices(orientation="horizontal")
    assert type(shown["image_slices"]["scale"]) is float
    unknown = PipelineConfig.from_dict({**CAMERA, "image_good_region": {"threshold": None, "_x": 2}})
    assert unknown.to_dict()["image_good_region"] == {"threshold": 0.3, "_x": 2, "gfscale": 1.8}


def test_none_never_overwrites_a_default() -> None:
    config = PipelineConfig.from_dict(
        {**CAMERA, "image_background_enable": None, "pipeline_type": None, "queue_size": None, "mode": None}
    )
    shown = config.to_dict()
    assert (shown["image_background_enable"], shown["pipeline_type"], shown["queue_size"], shown["mode"]) == (
        False,
        "processing",
        10,
        "PUB",
    )
    assert PipelineConfig.from_dict({**CAMERA, "pipeline_type": ""}).pipeline_type == "processing"


@pytest.mark.parametrize(
    ("mapping", "mode", "block"),
    [
        ({}, "PUB", False),
        ({"mode": "PUSH"}, "PUSH", True),
        ({"mode": "push"}, "PUSH", True),
        ({"mode": "PUB", "block": True}, "PUB", True),
        ({"mode": "PUSH", "block": False}, "PUSH", False),
        ({"pipeline_type": "fanout"}, "PUSH", True),
        ({"pipeline_type": "fanout", "mode": "PUB"}, "PUB", False),
        ({"mode": "FILE", "file": "/tmp/out.h5"}, "FILE", True),
    ],
)
def test_mode_and_block_defaults(mapping: dict[str, Any], mode: str, block: bool) -> None:
    config = PipelineConfig.from_dict({**CAMERA, **mapping})
    assert (config.mode, config.block) == (mode, block)
    assert (config.to_dict()["mode"], config.to_dict()["block"]) == (mode, block)


def test_file_mode_shows_the_writer_defaults() -> None:
    effective = PipelineConfig.from_dict({**CAMERA, "mode": "FILE", "file": "/data/x.h5"}).to_dict()
    assert {k: effective[k] for k in ("file", "layout", "localtime", "change")} == {
        "file": "/data/x.h5",
        "layout": "DEFAULT",
        "localtime": True,
        "change": False,
    }
    assert "layout" not in PipelineConfig.from_dict(CAMERA).to_dict()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("simulation_sp", True), ("simulation_sp1", True), ("simulation_sp12", True), ("simulation", False),
     ("sp_camera", False), ("", False)],
)
def test_notify_on_error_defaults_for_screen_panel_names(name: str, expected: bool) -> None:
    assert PipelineConfig.from_dict({**CAMERA, "name": name}).notify_on_error is expected
    assert PipelineConfig.from_dict({**CAMERA, "name": name, "notify_on_error": False}).notify_on_error is False


@pytest.mark.parametrize(
    ("given", "paused"),
    [({"pause": True}, True), ({"paused": True}, True), ({"paused": False, "pause": True}, False),
     ({"paused": True, "pause": False}, True), ({}, False)],
)
def test_paused_and_pause_are_one_setting_the_readme_name_wins(given: dict[str, Any], paused: bool) -> None:
    config = PipelineConfig.from_dict({**CAMERA, **given})
    assert config.paused is paused and config.pause is paused
    effective, stored = config.to_dict(), config.to_dict(runtime_defaults=False)
    assert effective["paused"] is paused and effective["pause"] is paused
    for key in given:
        assert stored[key] is paused


def test_compression_and_create_header_accept_camservers_booleans() -> None:
    config = PipelineConfig.from_dict({**CAMERA, "data_compression": True, "data_header_compression": False,
                                       "create_header": True})
    assert (config.data_compression, config.data_header_compression, config.create_header) == (
        "bitshuffle_lz4", None, "always")
    assert PipelineConfig.from_dict({**CAMERA, "create_header": False}).create_header == "once"
    # the sender cannot send plain lz4 (bsread implementations disagree on its size prefix): refused
    with pytest.raises(ConfigError, match="'lz4' is not supported"):
        PipelineConfig.from_dict({**CAMERA, "data_compression": "lz4"})


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_KEYS))
def test_cam_server_options_camioc_does_not_implement_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        PipelineConfig.from_dict({**CAMERA, key: 4 if key in ("modulo", "send_buffer_size") else True})
    assert f"'{key}' is a cam_server pipeline option that camioc does not support" in str(error.value)
    # off values and commented-out options load (cam_server's own files have "multiprocessing": false)
    PipelineConfig.from_dict({**CAMERA, key: False})
    PipelineConfig.from_dict({**CAMERA, key: None, f"_{key}": True})


def test_rotation_forms() -> None:
    assert PipelineConfig.from_dict({**CAMERA, "rotation": 12.5}).rotation == Rotation(angle=12.5)
    rotation = PipelineConfig.from_dict({**CAMERA, "rotation": {"angle": 90, "order": 0, "mode": "ortho"}}).rotation
    assert rotation == Rotation(angle=90.0, order=0, mode="ortho")
    assert PipelineConfig.from_dict({**CAMERA, "rotation": {"angle": 5, "mode": "0.0"}}).rotation == Rotation(
        angle=5.0, mode="0.0"
    )
    assert PipelineConfig.from_dict({**CAMERA, "rotation": {"angle": 5, "mode": 3}}).rotation == Rotation(
        angle=5.0, mode="3.0"
    )
    assert PipelineConfig.from_dict({**CAMERA, "rotation": 30}).to_dict()["rotation"] == {
        "angle": 30.0, "order": 1, "mode": "constant"}


def test_numpy_values_and_empty_roi() -> None:
    config = PipelineConfig.from_dict({**CAMERA, "image_region_of_interest": np.array([1, 2, 3, 4]),
                                       "image_threshold": np.float32(2.5)})
    assert config.image_region_of_interest == (1, 2, 3, 4) and config.image_threshold == 2.5
    json.dumps(config.to_dict())
    assert PipelineConfig.from_dict({**CAMERA, "image_region_of_interest": []}).image_region_of_interest is None


def test_background_enable_values() -> None:
    for value in (False, True, "signed", "passive"):
        assert PipelineConfig.from_dict({**CAMERA, "image_background_enable": value}).image_background_enable == value


def test_other_pipeline_types_need_no_camera() -> None:
    for pipeline_type in ("stream", "custom", "script", "fanout", "fanin"):
        config = PipelineConfig.from_dict({"pipeline_type": pipeline_type, "name": "x"})
        assert config.pipeline_type == pipeline_type and config.camera_name is None
    assert PIPELINE_TYPES == ("processing", "store", "stream", "custom", "script", "fanout", "fanin")


# ------------------------------------------------------------------------------------------------
# cam_server's messages


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "Config object cannot be empty.\nConfig: {}"),
        (None, "Config object cannot be empty.\nConfig: None"),
        ({"invalid": "config"}, "Camera name not specified in configuration."),
        ({"camera_name": None}, "Camera name not specified in configuration."),
        ({"camera_name": ""}, "Camera name not specified in configuration."),
        ({"pipeline_type": "store"}, "Camera name not specified in configuration."),
        (
            {"camera_name": "simulation", "pipeline_type": "invalid"},
            "pipeline_type 'invalid' not present in mapping. Available: "
            "['processing', 'store', 'stream', 'custom', 'script', 'fanout', 'fanin'].",
        ),
        (
            {"pipeline_type": "invalid"},
            "pipeline_type 'invalid' not present in mapping. Available: "
            "['processing', 'store', 'stream', 'custom', 'script', 'fanout', 'fanin'].",
        ),
        ({**CAMERA, "image_slices": {"number_of_slices": 1.2}}, "number_of_slices must be an integer."),
        ({**CAMERA, "image_slices": {"number_of_slices": "3"}}, "number_of_slices must be an integer."),
        (
            {**CAMERA, "image_slices": {"orientation": "invalid"}},
            "Invalid slice orientation 'invalid'. Slices orientation can be 'vertical' or 'horizontal'.",
        ),
        ({**CAMERA, "mode": "FILE"}, "File name not defined"),
        ({**CAMERA, "mode": "file", "file": ""}, "File name not defined"),
        ({"pipeline_type": "stream", "mode": "FILE"}, "File name not defined"),
    ],
)
def test_camserver_messages_exactly(mapping: Any, message: str) -> None:
    assert message_of(mapping) == message


def test_mandatory_attributes_message_exactly() -> None:
    # cam_server's expansion fills every mandatory attribute before this check runs, so
    # from_dict never reaches it (neither did cam_server); the check keeps cam_server's wording.
    with pytest.raises(ConfigError) as info:
        verify_attributes("image_slices", {"scale": 2.0}, ["number_of_slices", "scale", "orientation"])
    assert str(info.value) == (
        "The following mandatory attributes were not found in the image_slices: ['number_of_slices', 'orientation']"
    )
    verify_attributes("configuration", expand_config(CAMERA), CAMSERVER_DEFAULT_CONFIGURATION)


# ------------------------------------------------------------------------------------------------
# bad values


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("image_threshold", "high", "must be a number"),
        ("image_threshold", True, "must be a number"),
        ("image_region_of_interest", [0, 10, 0], "must be a list of 4 integers"),
        ("image_region_of_interest", [0, 10.5, 0, 10], "must be a list of 4 integers"),
        ("image_region_of_interest", [0, 0, 0, 10], "sizes >= 1"),
        ("image_background_enable", "yes", "must be true, false, 'signed' or 'passive'"),
        ("image_background_enable", 1, "must be true, false, 'signed' or 'passive'"),
        ("image_background", "../../etc/passwd", "not a valid background name"),
        ("image_good_region", True, "must be an object {threshold, gfscale} or null"),
        ("image_slices", [1], "must be an object {number_of_slices, scale, orientation} or null"),
        ("averaging", 2.5, "must be an integer"),
        ("image_averaging", -1, "must be an integer >= 0"),
        ("max_frame_rate", 0, "must be a number > 0"),
        ("max_frame_rate", "1", "must be a number"),
        ("downsampling", 0, "must be an integer >= 1"),
        ("downsampling", 1.5, "must be an integer"),
        ("pid_range", [1], "must be a list of 2 integers"),
        ("pid_range", "1-10", "must be a list of 2 integers"),
        ("create_header", "sometimes", "must be one of 'once', 'always', 'on_change'"),
        ("mode", "PAIR", "must be one of 'PUB', 'PUSH', 'FILE'"),
        ("input_mode", "PUB", "must be one of 'SUB', 'PULL'"),
        ("include", [1, 2], "must be a string or a list of strings"),
        ("exclude", {"a": 1}, "must be a string or a list of strings"),
        ("rotation", "abc", "must be a number (angle in degrees), an object {angle, order, mode} or null"),
        ("rotation", {"angle": 45, "mode": "ortho"}, "multiple of 90"),
        ("queue_size", 0, "must be an integer >= 1"),
        ("no_client_timeout", "never", "must be a number"),
        ("block", "no", "must be true or false"),
        ("pause", 1, "must be true or false"),
        ("paused", "yes", "must be true or false"),
        ("data_compression", "gzip", "false or 'bitshuffle_lz4'"),
        ("binning_x", 0, "must be an integer >= 1"),
        ("mirror_y", 0, "must be true or false"),
        ("port", 0, "must be an integer from 1 to 65535"),
        ("camera_name", "../cam", "not a valid camera name"),
        ("name", "a/b", "not a valid pipeline name"),
        ("fw_threshold", -0.5, "must be a number > 0"),
        ("records", 0, "must be an integer >= 1"),
        ("function", 5, "must be a string"),
        ("group", [None], "must be a string or a list of strings"),
        ("layout", "TREE", "must be one of 'DEFAULT', 'FLAT', 'BSH5'"),
    ],
)
def test_bad_values_are_refused_naming_key_and_value(key: str, value: Any, reason: str) -> None:
    message = message_of({**CAMERA, key: value, **({"file": "x.h5"} if key == "layout" else {})})
    assert message.startswith(f"Invalid value for '{key}': {json.dumps(value)} (")
    assert reason in message


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ({"image_good_region": {"threshold": "a"}}, "image_good_region.threshold", "must be a number"),
        ({"image_good_region": {"gfscale": [1]}}, "image_good_region.gfscale", "must be a number"),
        ({"image_slices": {"scale": "x"}}, "image_slices.scale", "must be a number"),
        ({"image_slices": {"number_of_slices": 0}}, "image_slices.number_of_slices", "must be an integer >= 1"),
        ({"rotation": {"angle": 5, "order": 7}}, "rotation.order", "must be an integer from 0 to 5"),
        ({"rotation": {"angle": 5, "mode": "bogus"}}, "rotation.mode", "must be one of 'constant'"),
    ],
)
def test_bad_sub_section_values_name_the_sub_key(section: dict[str, Any], key: str, reason: str) -> None:
    message = message_of({**CAMERA, **section})
    assert message.startswith(f"Invalid value for '{key}': ")
    assert reason in message


def test_slices_checks_of_other_types_use_the_generic_message() -> None:
    message = message_of({"pipeline_type": "stream", "image_slices": {"orientation": "diagonal"}})
    assert message.startswith("Invalid value for 'image_slices.orientation': \"diagonal\"")


def test_non_json_values_and_non_mappings_are_refused() -> None:
    assert message_of({**CAMERA, "custom": {1, 2}}).startswith("Invalid value for 'custom'")
    assert "must be a JSON object" in message_of([("camera_name", "x")])


# ------------------------------------------------------------------------------------------------
# merge_update and updated


def test_merge_update_merges_sections_and_replaces_everything_else() -> None:
    current = PipelineConfig.from_dict(
        {**CAMERA, "image_good_region": {"threshold": 0.1, "gfscale": 3}, "include": ["a", "b"],
         "image_slices": {"number_of_slices": 3}}
    ).to_dict(runtime_defaults=False)
    snapshot = json.loads(json.dumps(current))
    changes = {
        "image_good_region": {"gfscale": 2.5},
        "image_slices": {"orientation": "horizontal"},
        "include": ["c"],
        "image_threshold": 5,
    }
    merged = merge_update(current, changes)
    assert merged["image_good_region"] == {"threshold": 0.1, "gfscale": 2.5}
    assert merged["image_slices"] == {"number_of_slices": 3, "scale": 2.0, "orientation": "horizontal"}
    assert merged["include"] == ["c"]
    assert merged["image_threshold"] == 5
    assert current == snapshot, "merge_update must not modify its input"


def test_merge_update_enables_and_clears_sections() -> None:
    current = PipelineConfig.from_dict(CAMERA).to_dict(runtime_defaults=False)
    merged = merge_update(current, {"image_slices": {"number_of_slices": 5}})
    assert merged["image_slices"] == {"number_of_slices": 5, "scale": 2.0, "orientation": "vertical"}
    assert merge_update(merged, {"image_slices": None})["image_slices"] is None
    assert merge_update(merged, {"image_threshold": 3, "image_region_of_interest": None})[
        "image_region_of_interest"] is None


@pytest.mark.parametrize("empty", [{}, None])
def test_merge_update_refuses_empty_changes(empty: Any) -> None:
    with pytest.raises(ConfigError) as info:
        merge_update(CAMERA, empty)
    assert str(info.value) == "Config updates cannot be empty."


def test_merge_update_validates_the_result() -> None:
    current = PipelineConfig.from_dict(CAMERA).to_dict()
    with pytest.raises(ConfigError, match=r"^number_of_slices must be an integer\.$"):
        merge_update(current, {"image_slices": {"number_of_slices": 2.5}})
    with pytest.raises(ConfigError, match=r"^Invalid value for 'max_frame_rate': -1 "):
        merge_update(current, {"max_frame_rate": -1})
    with pytest.raises(ConfigError, match=r"^Camera name not specified in configuration\.$"):
        merge_update(current, {"camera_name": None})


def test_merge_update_keeps_paused_and_pause_consistent() -> None:
    current = PipelineConfig.from_dict({**CAMERA, "pause": True}).to_dict()
    merged = merge_update(current, {"paused": False})
    assert merged["paused"] is False and merged["pause"] is False
    merged = merge_update(merged, {"pause": True})
    assert merged["paused"] is True and merged["pause"] is True
    assert PipelineConfig.from_dict(merged).paused is True


def test_merge_update_does_not_freeze_derived_defaults() -> None:
    effective = PipelineConfig.from_dict({**CAMERA, "name": "cam_sp"}).to_dict()
    assert effective["block"] is False and effective["notify_on_error"] is True
    assert PipelineConfig.from_dict(merge_update(effective, {"mode": "PUSH"})).block is True
    assert PipelineConfig.from_dict(merge_update(effective, {"mode": "PUSH", "block": False})).block is False
    assert PipelineConfig.from_dict(merge_update(effective, {"name": "cam"})).notify_on_error is False
    explicit = PipelineConfig.from_dict({**CAMERA, "block": True}).to_dict()
    assert PipelineConfig.from_dict(merge_update(explicit, {"image_threshold": 1})).block is True


def test_updated_returns_a_new_config() -> None:
    original = PipelineConfig.from_dict({**CAMERA, "name": "p", "_comment": "kept"})
    changed = original.updated({"image_threshold": 2, "image_good_region": {"threshold": 0.5}})
    assert changed.image_threshold == 2 and original.image_threshold is None
    assert changed.image_good_region == ImageGoodRegion(threshold=0.5)
    assert changed.extras == {"_comment": "kept"} and changed.name == "p"
    with pytest.raises(ConfigError):
        original.updated({"image_threshold": "x"})


def test_json_schema_lists_the_typed_keys() -> None:
    schema = PipelineConfig.json_schema()
    assert {"camera_name", "pipeline_type", "image_slices", "image_good_region", "paused", "block"} <= set(
        schema["properties"]
    )
    json.dumps(schema)


def test_equal_configs_hash_equal() -> None:
    a = PipelineConfig.from_dict({**CAMERA, "group": "g"})
    b = PipelineConfig.from_dict({**CAMERA, "group": ["g"]})
    assert a == b and hash(a) == hash(b)
    assert a != PipelineConfig.from_dict({**CAMERA, "group": "g", "_x": 1})


# ------------------------------------------------------------------------------------------------ client view
def test_client_config_is_camservers_expansion_only() -> None:
    # cam_server's client test: get_instance_config == DEFAULT_CONFIGURATION updated with the user's keys
    user = {"camera_name": "simulation", "background_image": "b_20200101_000000_000000"}
    assert client_config(user) == {**CAMSERVER_DEFAULT_CONFIGURATION, **user}
    shown = client_config({**CAMERA, "image_good_region": {"threshold": None}, "image_slices": {},
                           "image_threshold": None, "mode": "pub", "_note": 1})
    assert shown["image_good_region"] == {"threshold": 0.3, "gfscale": 1.8}  # None: the default stays
    assert shown["image_slices"] == {"number_of_slices": 1, "scale": 2.0, "orientation": "vertical"}
    assert shown["image_threshold"] is None and shown["mode"] == "pub" and shown["_note"] == 1
    # none of the runtime defaults camioc's worker uses, no instance name
    effective = PipelineConfig.from_dict({**CAMERA, "name": "p"}).to_dict()
    assert set(effective) - set(client_config(CAMERA)) >= {
        "name", "queue_size", "mode", "block", "paused", "pause", "notify_on_error", "abort_on_error",
        "no_client_timeout", "data_compression", "create_header"}
    # other pipeline types: exactly the user's keys (DEFAULT_CONFIGURATION is for processing)
    store = {"camera_name": "simulation", "pipeline_type": "store", "buffer_size": None}
    assert client_config(store) == store and client_config(store) is not store


def test_file_mode_layouts_and_attributes() -> None:
    file_mode = {**CAMERA, "mode": "FILE", "file": "/tmp/x.h5"}
    for layout in ("default", "FLAT", "bsh5", "BSREAD", "bsread_compact"):
        assert PipelineConfig.from_dict({**file_mode, "layout": layout}).layout == layout.upper()
    with pytest.raises(ConfigError, match="Invalid value for 'layout': \"nested\""):
        PipelineConfig.from_dict({**file_mode, "layout": "nested"})
    assert PipelineConfig.from_dict({**file_mode, "attributes": {"a": "x", "n": [1, 2]}}).extras["attributes"]
    assert PipelineConfig.from_dict({**file_mode, "attributes": '{"a": 1}'})
    for bad, reason in (({"pid": 1}, "written by the writer itself"), ([1], "must be an object"),
                        ({"a/b": 1}, "not a valid HDF5 name"), ({"a": {"b": 1}}, "a string, a number")):
        with pytest.raises(ConfigError, match=f"Invalid value for 'attributes'.*{reason}"):
            PipelineConfig.from_dict({**file_mode, "attributes": bad})
    with pytest.raises(ConfigError, match="Invalid value for 'buffer_size': -1"):
        PipelineConfig.from_dict({**CAMERA, "buffer_size": -1})


def test_copy_must_be_a_boolean() -> None:
    assert PipelineConfig.from_dict({**CAMERA, "copy": True}).to_dict()["copy"] is True
    with pytest.raises(ConfigError, match="copy"):
        PipelineConfig.from_dict({**CAMERA, "copy": "banana"})
