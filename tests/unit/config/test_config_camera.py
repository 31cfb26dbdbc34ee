"""Camera configuration: cam_server's files load unchanged, defaults, messages, updates, aliases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from camioc.config.camera import (
    CAMERA_SOURCE_TYPES,
    CAMSERVER_DEFAULT_KEYS,
    CameraCalibration,
    CameraConfig,
    camera_aliases,
    camera_groups,
)
from camioc.errors import ConfigError

NOT_CONFIGS = {"servers.json", "permanent_instances.json"}


def fixture_files(camserver_fixtures: Path) -> list[Path]:
    files = sorted(p for p in (camserver_fixtures / "camera_config").glob("*.json") if p.name not in NOT_CONFIGS)
    assert len(files) >= 6
    return files


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def canonical(value: Any) -> Any:
    """A raw value as to_dict shows it (alias/group strings become lists)."""
    return [value] if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------------
# cam_server's own files


def test_every_camserver_camera_file_loads_and_round_trips(camserver_fixtures: Path) -> None:
    for path in fixture_files(camserver_fixtures):
        raw = load(path)
        config = CameraConfig.from_dict(raw)
        assert config.name == path.stem
        for form in (config.to_dict(), config.to_dict(runtime_defaults=False)):
            json.dumps(form)  # JSON-serialisable
            assert list(form)[: len(raw)] == list(raw), f"{path.name}: key order changed"
            for key, value in raw.items():
                if key.startswith("_") or key not in CameraConfig.model_fields:
                    assert form[key] == value, f"{path.name}: unknown key {key} changed"
                elif value is not None and key not in ("alias", "group"):
                    assert form[key] == value, f"{path.name}: {key} changed"
                elif key in ("alias", "group"):
                    assert form[key] == canonical(value)
            assert CameraConfig.from_dict(form) == config, f"{path.name}: does not round-trip"
        assert raw == load(path), "from_dict must not modify its input"


def test_simulation_fixture_typed_values(camserver_fixtures: Path) -> None:
    config = CameraConfig.from_dict(load(camserver_fixtures / "camera_config" / "simulation.json"))
    assert config.source_type == "simulation"
    assert config.source == ""
    assert config.roi == (441, 366, 295, 324)
    assert config.dtype == "uint16"
    assert config.frame_rate == 2.0
    assert config.image_type == "beam"
    assert config.simulate_pulse_id is True
    assert config.no_client_timeout == 0.0
    assert config.protocol == "tcp"
    assert config.alias == ("c1", "camera1")
    assert config.group == ("Electrons", "Test")
    assert config.camera_calibration == CameraCalibration(
        reference_marker=(44, 73, 1156, 859),
        reference_marker_width=3000.0,
        reference_marker_height=1700.0,
    )
    assert config.size_x == 1280 and config.size_y == 960  # "_size_x" is commented out
    assert config.extras == {
        "_size_x": 300,
        "_size_y": 300,
        "_image_background": "../tests/background_config/simulation_20220217_172655_914633.npy",
    }


def test_epics_fixtures_typed_values(camserver_fixtures: Path) -> None:
    folder = camserver_fixtures / "camera_config"
    one = CameraConfig.from_dict(load(folder / "camera_example_1.json"))
    assert (one.source, one.source_type, one.epics_convention) == ("EPICS_example_1", "epics", "camserver")
    assert (one.mirror_x, one.mirror_y, one.rotate, one.camera_calibration) == (True, True, 1, None)
    three = CameraConfig.from_dict(load(folder / "camera_example_3.json"))
    assert three.alias == ("cam3",) and three.group == ("Photonics",)
    assert three.camera_calibration == CameraCalibration()
    four = CameraConfig.from_dict(load(folder / "camera_example_4.json"))
    assert four.rotate == 4 and four.alias == ("cam4", "camera4")


# ------------------------------------------------------------------------------------------------
# defaults


def test_camserver_expansion_is_the_stored_form() -> None:
    config = CameraConfig.from_dict({"source": "X"})
    assert config.to_dict(runtime_defaults=False) == {
        "source": "X",
        "camera_calibration": None,
        "mirror_x": False,
        "mirror_y": False,
        "rotate": 0,
        "roi": None,
        "image_background": None,
        "source_type": "epics",
    }
    assert set(CAMSERVER_DEFAULT_KEYS) <= set(config.to_dict())


def test_typed_defaults() -> None:
    config = CameraConfig.from_dict({"source": "X"})
    assert config.name == ""
    assert (config.binning_x, config.binning_y, config.binning_mean) == (1, 1, False)
    assert (config.alias, config.group) == ((), ())
    assert (config.protocol, config.no_client_timeout, config.queue_size, config.port) == ("tcp", 10.0, 100, None)
    assert (config.dtype, config.frame_rate, config.size_x, config.size_y) == (None, 10.0, 1280, 960)
    assert (config.image_type, config.connections, config.mode, config.channel) == ("beam", 1, "PULL", None)
    assert config.epics_convention == "camserver"
    assert config.simulate_pulse_id is False
    assert config.extras == {}


@pytest.mark.parametrize(
    ("source_type", "shown", "hidden"),
    [
        ("epics", {"epics_convention"}, {"frame_rate", "channel"}),
        ("simulation", {"frame_rate", "size_x", "size_y", "image_type"}, {"channel", "epics_convention"}),
        ("bsread", {"mode", "channel", "connections", "buffer_size", "receive_timeout"}, {"frame_rate"}),
    ],
)
def test_runtime_defaults_shown_per_source_type(source_type: str, shown: set[str], hidden: set[str]) -> None:
    effective = CameraConfig.from_dict({"source": "X", "source_type": source_type}).to_dict()
    common = {"binning_x", "binning_y", "binning_mean", "protocol", "no_client_timeout", "queue_size"}
    assert shown | common <= set(effective)
    assert not hidden & set(effective)


def test_calibration_sub_defaults_are_filled_and_unknown_sub_keys_kept() -> None:
    config = CameraConfig.from_dict(
        {"source": "X", "camera_calibration": {"reference_marker": [1, 2, 30, 40], "angle_vertical": None, "_x": 1}}
    )
    assert config.camera_calibration == CameraCalibration(reference_marker=(1, 2, 30, 40))
    assert config.to_dict()["camera_calibration"] == {
        "reference_marker": [1, 2, 30, 40],
        "angle_vertical": 0.0,
        "_x": 1,
        "reference_marker_width": 100.0,
        "reference_marker_height": 100.0,
        "angle_horizontal": 0.0,
    }
    assert CameraConfig.from_dict({"source": "X", "camera_calibration": {}}).camera_calibration == CameraCalibration()


def test_none_never_overwrites_a_default() -> None:
    config = CameraConfig.from_dict(
        {"source": "X", "source_type": None, "mirror_x": None, "rotate": None, "frame_rate": None, "alias": None}
    )
    assert (config.source_type, config.mirror_x, config.rotate, config.frame_rate, config.alias) == (
        "epics",
        False,
        0,
        10.0,
        (),
    )
    shown = config.to_dict()
    assert (shown["source_type"], shown["mirror_x"], shown["rotate"], shown["alias"]) == ("epics", False, 0, [])


def test_name_argument_replaces_the_name_key() -> None:
    config = CameraConfig.from_dict({"source": "X", "name": "old"}, name="new")
    assert config.name == "new" and config.to_dict()["name"] == "new"


def test_rotate_accepts_any_integer_and_empty_roi_means_none() -> None:
    assert CameraConfig.from_dict({"source": "X", "rotate": -3}).rotate == -3
    assert CameraConfig.from_dict({"source": "X", "rotate": 7}).rotate == 7
    assert CameraConfig.from_dict({"source": "X", "roi": []}).roi is None


def test_area_detector_is_epics_with_the_areadetector_convention() -> None:
    config = CameraConfig.from_dict({"source": "13SIM1", "source_type": "area_detector"})
    assert (config.source_type, config.epics_convention) == ("epics", "areadetector")
    stored = config.to_dict(runtime_defaults=False)
    assert (stored["source_type"], stored["epics_convention"]) == ("epics", "areadetector")
    assert CameraConfig.from_dict(stored) == CameraConfig.from_dict(
        {"source": "13SIM1", "source_type": "epics", "epics_convention": "areadetector"}
    )
    with pytest.raises(ConfigError, match="source_type 'area_detector' implies 'areadetector'"):
        CameraConfig.from_dict({"source": "X", "source_type": "area_detector", "epics_convention": "camserver"})


def test_numpy_values_are_accepted() -> None:
    config = CameraConfig.from_dict(
        {"source": "X", "rotate": np.int64(2), "mirror_x": np.bool_(True), "roi": np.array([0, 10, 0, 20])}
    )
    assert (config.rotate, config.mirror_x, config.roi) == (2, True, (0, 10, 0, 20))
    assert type(config.rotate) is int
    json.dumps(config.to_dict())


# ------------------------------------------------------------------------------------------------
# cam_server's messages


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "Config object cannot be empty. Config: {}"),
        (None, "Config object cannot be empty. Config: None"),
        ({"name": "x"}, "'source' not specified in configuration."),
        ({"source": None, "source_type": "epics"}, "'source' not specified in configuration."),
        (
            {"source": "X", "source_type": "invalid"},
            "Invalid source_type 'invalid'. Available: ['epics', 'simulation', 'bsread', 'area_detector'].",
        ),
    ],
)
def test_camserver_messages_exactly(mapping: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CameraConfig.from_dict(mapping)
    assert str(info.value) == message


def test_source_types() -> None:
    assert CAMERA_SOURCE_TYPES == ("epics", "simulation", "bsread")


def test_non_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a JSON object"):
        CameraConfig.from_dict([1, 2])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# bad values


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("rotate", 1.5, "must be an integer"),
        ("rotate", True, "must be an integer"),
        ("rotate", "1", "must be an integer"),
        ("roi", [1, 2, 3], "must be a list of 4 integers"),
        ("roi", [0, 10, 0, 1.5], "must be a list of 4 integers"),
        ("roi", [0, 0, 0, 10], "sizes >= 1"),
        ("roi", [-1, 10, 0, 10], "offsets >= 0"),
        ("roi", "0,10,0,10", "must be a list of 4 integers"),
        ("binning_x", -1, "must be an integer >= 1"),
        ("binning_y", 0, "must be an integer >= 1"),
        ("binning_mean", "yes", "must be true or false"),
        ("mirror_x", 1, "must be true or false"),
        ("mirror_y", "false", "must be true or false"),
        ("frame_rate", 0, "must be a number > 0"),
        ("frame_rate", -2.5, "must be a number > 0"),
        ("frame_rate", "fast", "must be a number"),
        ("no_client_timeout", "10", "must be a number"),
        ("dtype", "object", "numeric numpy dtype"),
        ("dtype", "nonsense", "numeric numpy dtype"),
        ("dtype", 16, "must be a string"),
        ("protocol", "udp", "must be one of 'tcp', 'ipc'"),
        ("image_type", "noise", "must be one of 'beam', 'raw', 'static_beam', 'static_raw'"),
        ("mode", "PUSH", "must be one of 'PULL', 'SUB'"),
        ("size_x", 0, "must be an integer >= 1"),
        ("port", 70000, "must be an integer from 1 to 65535"),
        ("connections", 0, "must be an integer >= 1"),
        ("buffer_size", -1, "must be an integer >= 0"),
        ("queue_size", 0, "must be an integer >= 1"),
        ("receive_timeout", 0, "must be a number > 0"),
        ("alias", [1], "must be a string or a list of strings"),
        ("group", 5, "must be a string or a list of strings"),
        ("camera_calibration", [1, 2], "must be an object"),
        ("image_background", "../bg", "not a valid background name"),
        ("image_background", "", "not a valid background name"),
        ("epics_convention", "asyn", "must be one of 'camserver', 'areadetector'"),
        ("name", "a/b", "not a valid camera name"),
        ("simulate_pulse_id", None, None),  # None = default: accepted
    ],
)
def test_bad_values_are_refused_naming_key_and_value(key: str, value: Any, reason: str | None) -> None:
    mapping = {"source": "X", "source_type": "simulation", key: value}
    if reason is None:
        CameraConfig.from_dict(mapping)
        return
    with pytest.raises(ConfigError) as info:
        CameraConfig.from_dict(mapping)
    message = str(info.value)
    assert message.startswith(f"Invalid value for '{key}': {json.dumps(value)} (")
    assert reason in message


@pytest.mark.parametrize(
    ("calibration", "key", "reason"),
    [
        ({"reference_marker": [0, 0, 0, 10]}, "camera_calibration.reference_marker", "x1 != x2"),
        ({"reference_marker": [0, 0, 10]}, "camera_calibration.reference_marker", "list of 4 numbers"),
        ({"reference_marker_width": "wide"}, "camera_calibration.reference_marker_width", "must be a number"),
        ({"angle_horizontal": True}, "camera_calibration.angle_horizontal", "must be a number"),
    ],
)
def test_bad_calibration_values_name_the_sub_key(calibration: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        CameraConfig.from_dict({"source": "X", "camera_calibration": calibration})
    assert str(info.value).startswith(f"Invalid value for '{key}': ")
    assert reason in str(info.value)


def test_every_bad_key_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        CameraConfig.from_dict({"source": "X", "rotate": 0.5, "binning_x": 0, "protocol": "udp"})
    message = str(info.value)
    assert "'rotate'" in message and "'binning_x'" in message and "'protocol'" in message
    assert message.count("; ") == 2


def test_values_json_cannot_hold_are_refused() -> None:
    with pytest.raises(ConfigError, match="Invalid value for 'custom'"):
        CameraConfig.from_dict({"source": "X", "custom": object()})


def test_config_error_wraps_the_validation_error() -> None:
    with pytest.raises(ConfigError) as info:
        CameraConfig.from_dict({"source": "X", "rotate": "x"})
    assert isinstance(info.value.__cause__, ValidationError)


# ------------------------------------------------------------------------------------------------
# immutability and updates


def test_configs_are_immutable() -> None:
    config = CameraConfig.from_dict({"source": "X"})
    with pytest.raises(ValidationError):
        config.mirror_x = True  # type: ignore[misc]


def test_updated_merges_and_revalidates_leaving_the_original_unchanged() -> None:
    original = CameraConfig.from_dict(
        {"source": "X", "name": "cam", "_note": "kept", "camera_calibration": {"reference_marker": [0, 0, 10, 10]}}
    )
    before = original.to_dict()
    changed = original.updated({"mirror_x": True, "camera_calibration": {"angle_horizontal": 5.0}})
    assert changed.mirror_x is True and original.mirror_x is False
    assert changed.camera_calibration is not None
    assert changed.camera_calibration.reference_marker == (0, 0, 10, 10)
    assert changed.camera_calibration.angle_horizontal == 5.0
    assert changed.extras == {"_note": "kept"}
    assert changed.name == "cam"
    assert original.to_dict() == before
    assert original.updated({"camera_calibration": None}).camera_calibration is None


def test_updated_refuses_bad_changes_and_empty_changes() -> None:
    original = CameraConfig.from_dict({"source": "X"})
    with pytest.raises(ConfigError, match=r"Invalid value for 'rotate': 0.5 \(must be an integer\)"):
        original.updated({"rotate": 0.5})
    with pytest.raises(ConfigError, match=r"^Invalid source_type 'foo'"):
        original.updated({"source_type": "foo"})
    for empty in ({}, None):
        with pytest.raises(ConfigError, match=r"^Config updates cannot be empty\.$"):
            original.updated(empty)  # type: ignore[arg-type]
    assert original.rotate == 0


def test_json_schema_lists_the_typed_keys() -> None:
    schema = CameraConfig.json_schema()
    assert {"source", "source_type", "rotate", "roi", "camera_calibration", "epics_convention"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is True
    json.dumps(schema)


# ------------------------------------------------------------------------------------------------
# aliases and groups


def test_aliases_and_groups_of_the_camserver_fixtures(camserver_fixtures: Path) -> None:
    configs = [CameraConfig.from_dict(load(p)) for p in fixture_files(camserver_fixtures)]
    assert camera_aliases(configs) == {
        "cam3": "camera_example_3",
        "cam4": "camera_example_4",
        "camera4": "camera_example_4",
        "c1": "simulation",
        "camera1": "simulation",
        "c2": "simulation2",
        "camera2": "simulation2",
    }
    assert camera_groups(configs) == {
        "Electrons": ["camera_example_2", "simulation"],
        "Photonics": ["camera_example_3", "camera_example_4", "simulation2"],
        "Test": ["camera_example_4", "simulation", "simulation2"],
    }


def test_aliases_str_or_list_camera_names_win_first_claim_wins(caplog: pytest.LogCaptureFixture) -> None:
    configs = [
        CameraConfig.from_dict({"source": "A", "name": "a", "alias": "x", "group": "g"}),
        CameraConfig.from_dict({"source": "B", "name": "b", "alias": ["x", "y", "a"], "group": ["g", "h", "g"]}),
    ]
    assert camera_aliases(configs) == {"x": "a", "y": "b"}
    assert "already used" in caplog.text
    assert camera_groups(configs) == {"g": ["a", "b"], "h": ["b"]}
    assert camera_aliases([]) == {} and camera_groups([]) == {}
