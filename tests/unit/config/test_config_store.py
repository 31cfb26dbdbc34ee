"""The config file store: cam_server's layout, atomic writes, name validation, YAML."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from camioc.config.camera import CameraConfig
from camioc.config.pipeline import PipelineConfig
from camioc.config.store import ConfigLayout, ConfigStore
from camioc.errors import ConfigError, InvalidNameError, NotFoundError


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "camera_config", kind="camera")


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------------
# cam_server's folders


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        (
            "camera_config",
            [
                "camera_example_1",
                "camera_example_2",
                "camera_example_3",
                "camera_example_4",
                "simulation",
                "simulation2",
            ],
        ),
        (
            "pipeline_config",
            [
                "camera_example_1_sp",
                "camera_example_2_sp",
                "camera_example_3_sp",
                "camera_example_4_sp",
                "pipeline_example_1",
                "pipeline_example_2",
                "pipeline_example_3",
                "pipeline_example_4",
                "simulation",
                "simulation2_sp",
                "simulation_sp",
                "stream_example",
            ],
        ),
    ],
)
def test_camserver_folders_list_and_load_unchanged(
    camserver_fixtures: Path, tmp_path: Path, folder: str, expected: list[str]
) -> None:
    copy = tmp_path / folder
    shutil.copytree(camserver_fixtures / folder, copy)
    store = ConfigStore(copy)
    assert store.names() == expected  # servers.json and permanent_instances.json are not configs
    model = CameraConfig if folder == "camera_config" else PipelineConfig
    for name in expected:
        raw = store.load(name)
        assert raw == json.loads((camserver_fixtures / folder / f"{name}.json").read_text())
        model.from_dict(raw, name=name)
    assert not store.exists("servers") and not store.exists("permanent_instances")


def test_a_validated_config_survives_save_and_load(camserver_fixtures: Path, store: ConfigStore) -> None:
    raw = json.loads((camserver_fixtures / "camera_config" / "simulation.json").read_text())
    config = CameraConfig.from_dict(raw)
    store.save("simulation", config.to_dict(runtime_defaults=False))
    again = CameraConfig.from_dict(store.load("simulation"))
    assert again == config
    assert again.extras["_size_x"] == 300


# ------------------------------------------------------------------------------------------------
# save / load / exists / delete


def test_save_forces_the_name_and_writes_camservers_json(store: ConfigStore) -> None:
    store.save("cam1", {"source": "X", "name": "other", "roi": [1, 2, 3, 4], "label": "K\u00fcche"})
    path = store.folder / "cam1.json"
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(
        {"source": "X", "name": "cam1", "roi": [1, 2, 3, 4], "label": "K\u00fcche"}, indent=1, ensure_ascii=False
    ) + "\n"
    assert store.load("cam1")["name"] == "cam1"
    assert store.exists("cam1") and store.names() == ["cam1"]
    assert store.path("cam1") == path


def test_save_does_not_modify_the_given_mapping(store: ConfigStore) -> None:
    config = {"source": "X"}
    store.save("cam1", config)
    assert config == {"source": "X"}


def test_save_overwrites_and_creates_the_folder(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "deep" / "camera_config")
    assert store.names() == [] and not store.exists("cam")
    store.save("cam", {"source": "A"})
    store.save("cam", {"source": "B"})
    assert store.load("cam") == {"source": "B", "name": "cam"}
    assert files_in(store.folder) == ["cam.json"]


def test_missing_configs(store: ConfigStore) -> None:
    with pytest.raises(NotFoundError) as info:
        store.load("nothing")
    assert str(info.value) == "Config 'nothing' does not exist."
    with pytest.raises(NotFoundError) as info:
        store.delete("nothing")
    assert str(info.value) == "Config 'nothing' does not exist."
    assert not store.exists("nothing")
    assert store.path("nothing") == store.folder / "nothing.json"


def test_delete(store: ConfigStore) -> None:
    store.save("a", {"source": "A"})
    store.save("b", {"source": "B"})
    store.delete("a")
    assert store.names() == ["b"] and not store.exists("a")
    assert files_in(store.folder) == ["b.json"]


def test_names_skip_non_configs(store: ConfigStore) -> None:
    folder = store.folder
    folder.mkdir(parents=True)
    for name in [
        "cam.json",
        "servers.json",
        "permanent_instances.json",
        "cam_parameters.json",
        "cam_background.json",
        ".hidden.json",
        ".cam.json.abc123.tmp",
        "notes.txt",
        "cam.json~",
        "other.yaml",
        "third.yml",
    ]:
        (folder / name).write_text("{}")
    (folder / "directory.json").mkdir()
    assert store.names() == ["cam", "other", "third"]
    assert not store.exists("cam_parameters") and not store.exists("servers")
    with pytest.raises(NotFoundError):
        store.load("cam_background")


# ------------------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", ".hidden", "a\\b", "x\x00y", "/etc/passwd"])
def test_invalid_names_are_refused_everywhere(tmp_path: Path, name: str) -> None:
    store = ConfigStore(tmp_path / "cfg", kind="camera")
    store.folder.mkdir()
    (tmp_path / "escape.json").write_text('{"source": "outside"}')
    for call in (
        lambda: store.save(name, {"source": "X"}),
        lambda: store.load(name),
        lambda: store.exists(name),
        lambda: store.delete(name),
        lambda: store.path(name),
    ):
        with pytest.raises(InvalidNameError, match=r"^Invalid camera name"):
            call()
    assert files_in(store.folder) == []
    assert (tmp_path / "escape.json").read_text() == '{"source": "outside"}'


@pytest.mark.parametrize("name", ["servers", "permanent_instances", "cam_parameters", "cam_background"])
def test_reserved_names_cannot_be_saved(store: ConfigStore, name: str) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        store.save(name, {"source": "X"})
    assert not store.folder.exists() or files_in(store.folder) == []


# ------------------------------------------------------------------------------------------------
# bad files


@pytest.mark.parametrize(
    ("file_name", "content", "fragment"),
    [
        ("bad.json", '{"source": ', "is not valid JSON"),
        ("bad.json", "[1, 2]", "does not hold a mapping (got list)"),
        ("bad.yaml", "source: [unclosed", "is not valid YAML"),
        ("bad.yaml", "", "does not hold a mapping (got NoneType)"),
        ("bad.yaml", "source: X\nwhen: 2024-01-01\n", "cannot be represented in JSON"),
        ("bad.yml", "1: one\n", "non-string keys"),
    ],
)
def test_bad_files_raise_config_error_naming_the_file(
    store: ConfigStore, file_name: str, content: str, fragment: str
) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / file_name).write_text(content)
    with pytest.raises(ConfigError) as info:
        store.load("bad")
    assert str(store.folder / file_name) in str(info.value)
    assert fragment in str(info.value)


def test_non_json_values_are_refused_before_writing(store: ConfigStore) -> None:
    store.save("cam", {"source": "A"})
    with pytest.raises(ConfigError, match="cannot be represented in JSON"):
        store.save("cam", {"source": object()})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        store.save("cam", [("source", "B")])  # type: ignore[arg-type]
    assert store.load("cam") == {"source": "A", "name": "cam"}
    assert files_in(store.folder) == ["cam.json"]


# ------------------------------------------------------------------------------------------------
# YAML


def test_yaml_configs_are_read_and_kept_yaml(store: ConfigStore) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / "sim.yaml").write_text("# a comment\nsource: ''\nsource_type: simulation\nalias: [s1, s2]\n")
    (store.folder / "other.yml").write_text("source: OTHER\n")
    assert store.names() == ["other", "sim"]
    raw = store.load("sim")
    assert raw == {"source": "", "source_type": "simulation", "alias": ["s1", "s2"]}
    config = CameraConfig.from_dict(raw, name="sim")
    assert config.alias == ("s1", "s2")
    store.save("sim", config.updated({"frame_rate": 5.0}).to_dict(runtime_defaults=False))
    assert files_in(store.folder) == ["other.yml", "sim.yaml"]
    assert store.load("sim")["frame_rate"] == 5.0
    assert store.load("sim")["name"] == "sim"
    assert store.path("other") == store.folder / "other.yml"


def test_json_wins_over_yaml_and_delete_removes_both(store: ConfigStore) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / "cam.yaml").write_text("source: FROM_YAML\n")
    (store.folder / "cam.json").write_text('{"source": "FROM_JSON"}')
    assert store.names() == ["cam"]
    assert store.load("cam")["source"] == "FROM_JSON"
    store.delete("cam")
    assert files_in(store.folder) == []


# ------------------------------------------------------------------------------------------------
# atomic writes


def test_a_failing_replace_leaves_the_old_file_and_no_temp_file(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("cam", {"source": "OLD"})
    before = (store.folder / "cam.json").read_bytes()

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save("cam", {"source": "NEW"})
    assert (store.folder / "cam.json").read_bytes() == before
    assert files_in(store.folder) == ["cam.json"]


def test_a_failing_fsync_leaves_the_old_file_and_no_temp_file(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("cam", {"source": "OLD"})
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        store.save("cam", {"source": "NEW"})
    assert calls
    assert store.load("cam") == {"source": "OLD", "name": "cam"}
    assert files_in(store.folder) == ["cam.json"]


def test_a_new_config_that_fails_to_write_leaves_nothing(store: ConfigStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.folder.mkdir(parents=True)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        store.save("new", {"source": "X"})
    assert files_in(store.folder) == []


def test_the_file_mode_is_kept(store: ConfigStore) -> None:
    store.save("cam", {"source": "A"})
    path = store.folder / "cam.json"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    store.save("cam", {"source": "B"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ------------------------------------------------------------------------------------------------
# layout


def test_layout(tmp_path: Path) -> None:
    layout = ConfigLayout(tmp_path / "configuration")
    assert layout.camera_config == tmp_path / "configuration" / "camera_config"
    assert layout.pipeline_config == tmp_path / "configuration" / "pipeline_config"
    assert layout.background_config == tmp_path / "configuration" / "background_config"
    assert layout.user_scripts == tmp_path / "configuration" / "user_scripts"
    assert layout.user_libs == tmp_path / "configuration" / "user_scripts" / "lib"
    assert layout.ensure() is layout
    for folder in (layout.camera_config, layout.pipeline_config, layout.background_config, layout.user_libs):
        assert folder.is_dir()
    layout.ensure()  # idempotent
    assert layout.camera_store().folder == layout.camera_config
    assert layout.pipeline_store().kind == "pipeline"
    assert ConfigLayout(str(tmp_path)).base == tmp_path  # type: ignore[arg-type]
