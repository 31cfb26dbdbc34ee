"""The pipeline REST API against the real PipelineManager/CameraManager on a temporary config folder.

Routing, envelope, exact messages and parameter parsing; nothing here starts a worker process
(instances are exercised against a real server in ``tests/integration/rest/test_pipelineclient*``).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from camioc.config.store import ConfigLayout, ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.errors import ConfigError, InvalidNameError
from camioc.logbuffer import LogBuffer
from camioc.rest.pipeline_api import (
    MAX_BACKGROUND_IMAGES,
    background_from_data,
    background_id_from_filename,
    create_pipeline_app,
    parse_additional_config,
    parse_n_images,
)
from tests.support.server import TEST_CONFIGS

ROOT = "/api/v1/pipeline"
VERSION = "1.2.3-test"
NO_CONFIG = "You must specify either the pipeline name or the configuration for the pipeline."


@pytest.fixture
def layout(tmp_path: Path) -> ConfigLayout:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    return ConfigLayout(base).ensure()


@pytest.fixture
async def managers(layout: ConfigLayout) -> AsyncIterator[tuple[PipelineManager, CameraManager]]:
    cameras = CameraManager(ConfigStore(layout.camera_config), hostname="127.0.0.1",
                            background_dir=layout.background_config)
    pipelines = PipelineManager(ConfigStore(layout.pipeline_config), cameras,
                                BackgroundStore(layout.background_config), hostname="127.0.0.1",
                                scripts_dir=layout.user_scripts)
    yield pipelines, cameras
    await pipelines.close()
    await cameras.close()


@pytest.fixture
async def client(managers: tuple[PipelineManager, CameraManager], layout: ConfigLayout) -> AsyncIterator[TestClient]:
    pipelines, cameras = managers
    app = create_pipeline_app(pipelines, cameras, version=VERSION, logs=LogBuffer(),
                              scripts_dir=layout.user_scripts, libs_dir=layout.user_libs, host_stats=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def call(client: TestClient, path: str, method: str = "GET", **kwargs: Any) -> dict[str, Any]:
    response = await client.request(method, ROOT + path, **kwargs)
    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return await response.json()


def error(status: str) -> dict[str, str]:
    return {"state": "error", "status": status}


# ------------------------------------------------------------------------------------------------ lists
async def test_lists_and_common_routes(client: TestClient) -> None:
    body = await call(client, "")
    assert body["state"] == "ok" and body["pipelines"] == ["simulation_sp"]
    assert (await call(client, "/config_names"))["config_names"] == ["simulation_sp"]
    assert (await call(client, "/groups"))["groups"] == {}
    assert (await call(client, "/camera"))["cameras"] == ["simulation", "simulation2"]
    assert (await call(client, "/version"))["version"] == VERSION
    info = (await call(client, "/info"))["info"]
    assert info["version"] == VERSION and info["active_instances"] == {}
    assert (await call(client, "/heartbeat"))["instances"] == {}
    assert (await (await client.get("/base")).json())["base"] == ROOT
    # Stopping what is not running is not an error (cam_server).
    assert await call(client, "/nope", "DELETE") == {"state": "ok", "status": "Instance 'nope' stopped."}
    assert (await call(client, "/nope/del", "DELETE"))["state"] == "ok"
    assert (await call(client, "", "DELETE"))["state"] == "ok"
    assert (await (await client.get("/api/v1/reset")).json())["state"] == "error"


async def test_unknown_routes_and_options(client: TestClient) -> None:
    response = await client.get(ROOT + "/simulation_sp")  # only POST exists on /<pipeline_name>
    assert response.status == 405
    assert (await client.get(ROOT + "/a/b/c/d")).status == 404
    response = await client.options(ROOT + "/instance/")
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"


async def test_groups_from_configs(client: TestClient) -> None:
    await call(client, "/grouped/config", "POST", json={"camera_name": "simulation", "group": ["G1", "G2"]})
    await call(client, "/other/config", "POST", json={"camera_name": "simulation2", "group": "G1"})
    assert (await call(client, "/groups"))["groups"] == {"G1": ["grouped", "other"], "G2": ["grouped"]}


# ------------------------------------------------------------------------------------------------ configs
async def test_config_get_save_delete(client: TestClient, layout: ConfigLayout) -> None:
    config = (await call(client, "/simulation_sp/config"))["config"]
    assert config["camera_name"] == "simulation" and config["pipeline_type"] == "processing"
    assert config["image_background_enable"] is False and config["name"] == "simulation_sp"

    new = {"camera_name": "simulation2", "image_threshold": 5, "image_good_region": {"gfscale": 3},
           "_comment": "kept"}
    body = await call(client, "/mine/config", "POST", json=new)
    assert body["status"] == "Pipeline mine configuration saved."
    saved = body["config"]
    assert saved["name"] == "mine" and saved["image_threshold"] == 5 and saved["_comment"] == "kept"
    assert saved["image_good_region"] == {"threshold": 0.3, "gfscale": 3}  # sub-defaults filled in
    assert json.loads((layout.pipeline_config / "mine.json").read_text())["camera_name"] == "simulation2"
    assert (await call(client, ""))["pipelines"] == ["mine", "simulation_sp"]
    assert (await call(client, "/mine/config"))["config"]["image_threshold"] == 5

    assert await call(client, "/mine/config", "DELETE") == {"state": "ok", "status": "Pipeline mine configuration deleted."}
    assert await call(client, "/mine/config", "DELETE") == error("Config 'mine' does not exist.")
    assert await call(client, "/mine/config") == error("Config 'mine' does not exist.")


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, "Config object cannot be empty.\nConfig: None"),
        ({"data": b"null"}, "Config object cannot be empty.\nConfig: None"),
        # cam_server expands {} with DEFAULT_CONFIGURATION before validating (its client test
        # asserts this message for save_pipeline_config(name, {}))
        ({"json": {}}, "Camera name not specified in configuration."),
        ({"json": {"pipeline_type": "processing"}}, "Camera name not specified in configuration."),
        ({"json": {"camera_name": "c", "pipeline_type": "nope"}},
         "pipeline_type 'nope' not present in mapping. Available: "
         "['processing', 'store', 'stream', 'custom', 'script', 'fanout', 'fanin']."),
        ({"json": {"camera_name": "c", "image_slices": {"number_of_slices": 1.5}}}, "number_of_slices must be an integer."),
        ({"json": [1, 2]}, "Request body must be a JSON object, got list."),
    ],
)
async def test_save_config_refusals(client: TestClient, kwargs: dict[str, Any], status: str) -> None:
    assert await call(client, "/bad/config", "POST", **kwargs) == error(status)
    assert "bad" not in (await call(client, ""))["pipelines"]


async def test_save_config_not_json(client: TestClient) -> None:
    body = await call(client, "/bad/config", "POST", data=b"{nope")
    assert body["state"] == "error" and body["status"].startswith("Request body is not valid JSON")


async def test_invalid_names_are_refused(client: TestClient) -> None:
    body = await call(client, "/..bad/config", "POST", json={"camera_name": "simulation"})
    assert body == error("Invalid pipeline name '..bad': must not contain '..'.")
    body = await call(client, "/.hidden/config")
    assert body["state"] == "error" and "must not start with '.'" in body["status"]


# ------------------------------------------------------------------------------------------------ instances
async def test_create_refusals(client: TestClient) -> None:
    assert await call(client, "", "POST") == error(NO_CONFIG)
    assert await call(client, "", "POST", json={}) == error(NO_CONFIG)
    assert await call(client, "", "POST", json={"pipeline_type": "processing"}) == error(
        "Camera name not specified in configuration.")
    assert await call(client, "/instance/", "POST") == error(NO_CONFIG)
    assert await call(client, "/nope", "POST") == error("Pipeline 'nope' does not exist.")
    # Without the trailing slash this is "create from the pipeline named 'instance'" (as in cam_server).
    assert await call(client, "/instance", "POST") == error("Pipeline 'instance' does not exist.")
    body = await call(client, "/simulation_sp", "POST", params={"additional_config": "{nope"})
    assert body["state"] == "error" and body["status"].startswith("additional_config is not valid JSON")
    body = await call(client, "/simulation_sp", "POST", params={"additional_config": "[1]"})
    assert body == error("additional_config must be a JSON object, got list.")
    body = await call(client, "/simulation_sp", "POST", params={"additional_config": '{"image_threshold": "x"}'})
    assert body["state"] == "error" and "image_threshold" in body["status"]
    body = await call(client, "/simulation_sp", "POST", params={"instance_id": "a..b"})
    assert body == error("Invalid instance id 'a..b': must not contain '..'.")
    body = await call(client, "", "POST", json={"camera_name": "no_such_camera"})
    assert body == error("Camera 'no_such_camera' does not exist.")
    assert (await call(client, "/info"))["info"]["active_instances"] == {}


async def test_instance_routes_of_unknown_instances(client: TestClient) -> None:
    assert await call(client, "/instance/nope") == error(
        "Instance 'nope' is not present on server and it is not a saved pipeline name.")
    for route in ("/instance/nope/info", "/instance/nope/config", "/instance/nope/exitcode"):
        assert await call(client, route) == error("Instance 'nope' does not exist.")
    assert await call(client, "/instance/nope/config", "POST", json={"image_threshold": 3}) == error(
        "Instance 'nope' does not exist.")


@pytest.mark.parametrize("kwargs", [{}, {"data": b"  "}, {"data": b"null"}, {"json": {}}, {"data": b"not json"},
                                    {"data": b"\xff\xfe"}])
async def test_empty_config_updates(client: TestClient, kwargs: dict[str, Any]) -> None:
    assert await call(client, "/instance/nope/config", "POST", **kwargs) == error("Config updates cannot be empty.")


async def test_config_updates_must_be_an_object(client: TestClient) -> None:
    assert await call(client, "/instance/x/config", "POST", json=[1]) == error(
        "Config updates must be a JSON object, got list.")


# ------------------------------------------------------------------------------------------------ backgrounds
def pickled(array: np.ndarray) -> bytes:
    return pickle.dumps(array, protocol=0)  # what PipelineClient.set_background_image_array sends


def decode(image: dict[str, Any]) -> np.ndarray:  # what PipelineClient.get_background_image_array does
    return np.frombuffer(base64.b64decode(image["bytes"].encode()), dtype=image["dtype"]).reshape(image["shape"])


async def test_background_bytes_roundtrip_and_png(client: TestClient, layout: ConfigLayout) -> None:
    array = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 3).astype(np.uint16)
    body = await call(client, "/background/my_bg/image_bytes", "PUT", data=pickled(array))
    assert body == {"state": "ok", "status": "Background image my_bg stored.", "background_id": "my_bg"}
    assert np.array_equal(np.load(layout.background_config / "my_bg.npy"), array)

    image = (await call(client, "/background/my_bg/image_bytes"))["image"]
    assert image["shape"] == [30, 40] and image["dtype"] == "<u2"
    assert np.array_equal(decode(image), array)

    # Replacing is allowed (cam_server stored PUT bodies under <id>.npy unconditionally).
    await call(client, "/background/my_bg/image_bytes", "PUT", data=pickled(array.astype(np.float32) / 2))
    assert decode((await call(client, "/background/my_bg/image_bytes"))["image"]).dtype == np.float32

    response = await client.get(ROOT + "/background/my_bg/image", params={"scale": "0.5", "colormap": "gray"})
    assert response.status == 200 and response.content_type == "image/png"
    with Image.open(io.BytesIO(await response.read())) as png:
        assert png.size == (20, 15)
    body = await call(client, "/background/my_bg/image", params={"colormap": "nope"})
    assert body["state"] == "error" and body["status"].startswith("Unknown colormap 'nope'.")


async def test_background_refusals(client: TestClient, layout: ConfigLayout) -> None:
    assert await call(client, "/background/nope/image_bytes") == error("Requested background 'nope' does not exist.")
    assert await call(client, "/background/nope/image") == error("Requested background 'nope' does not exist.")
    evil = b"cos\nsystem\n(S'echo hacked'\ntR."
    body = await call(client, "/background/evil/image_bytes", "PUT", data=evil)
    assert body["state"] == "error" and "refused to load 'os.system'" in body["status"]
    body = await call(client, "/background/flat/image_bytes", "PUT", data=pickled(np.zeros(5)))
    assert body == error("A background image must be a non-empty 2-D array, got shape (5,).")
    body = await call(client, "/background/..x/image_bytes", "PUT", data=pickled(np.zeros((2, 2))))
    assert body == error("Invalid background id '..x': must not contain '..'.")
    assert [p.name for p in layout.background_config.iterdir() if not p.name.startswith(".")] == []


async def test_latest_and_listed_backgrounds(client: TestClient) -> None:
    assert await call(client, "/camera/simulation/background") == error(
        "No background matches for the specified prefix 'simulation'.")
    assert (await call(client, "/camera/simulation/backgrounds"))["background_ids"] == []
    ids = ["simulation_20240101_120000_000001", "simulation_20240101_120000_000002", "simulation2_20250101_000000_000000"]
    for background_id in ids:
        await call(client, f"/background/{background_id}/image_bytes", "PUT", data=pickled(np.ones((4, 4), np.uint16)))
    await call(client, "/background/simulation_manual/image_bytes", "PUT", data=pickled(np.ones((4, 4), np.uint16)))
    assert (await call(client, "/camera/simulation/backgrounds"))["background_ids"] == ids[:2]
    assert (await call(client, "/camera/simulation/background"))["background_id"] == ids[1]
    # An alias names its camera's backgrounds; camera 'simulation' does not see 'simulation2_...'.
    assert (await call(client, "/camera/sim/background"))["background_id"] == ids[1]
    assert (await call(client, "/camera/sim2/backgrounds"))["background_ids"] == ids[2:]
    # A camera that no longer exists keeps its backgrounds.
    await call(client, "/background/gone_20240101_120000_000000/image_bytes", "PUT", data=pickled(np.ones((2, 2))))
    assert (await call(client, "/camera/gone/background"))["background_id"] == "gone_20240101_120000_000000"


@pytest.mark.parametrize(("query", "status"), [
    ({"n_images": "ten"}, "n_images must be a number."),
    ({"n_images": "1.5"}, "n_images must be a number."),
    ({"n_images": "0"}, f"n_images must be between 1 and {MAX_BACKGROUND_IMAGES}, got 0."),
])
async def test_collect_background_parameters(client: TestClient, query: dict[str, str], status: str) -> None:
    assert await call(client, "/camera/simulation/background", "POST", params=query) == error(status)


async def test_collect_background_of_unknown_camera(client: TestClient) -> None:
    assert await call(client, "/camera/nope/background", "POST") == error("Camera 'nope' does not exist.")


async def test_post_background_json(client: TestClient, layout: ConfigLayout) -> None:
    data = [[0.4, 1.6, 65535], [3, 4, 5]]
    body = await call(client, "/background", "POST", json={"filename": "C:\\data\\beam_off.npy", "data": data})
    assert body == {"state": "ok", "status": "Background image beam_off stored.", "background_id": "beam_off"}
    stored = np.load(layout.background_config / "beam_off.npy")
    assert stored.dtype == np.uint16 and stored.tolist() == [[0, 2, 65535], [3, 4, 5]]
    assert decode((await call(client, "/background/beam_off/image_bytes"))["image"]).tolist() == stored.tolist()

    body = await call(client, "/background", "POST", json={"filename": "/tmp/x/bg.png", "data": [[1]]})
    assert body["background_id"] == "bg.png"
    assert await call(client, "/background", "POST", json={"filename": "x", "data": None}) == error(
        "No background 'data' given: camioc has no server-wide background to clear; "
        "set image_background_enable to false on the pipeline instead.")
    assert await call(client, "/background", "POST") == error("Background object cannot be empty.")
    body = await call(client, "/background", "POST", json={"filename": "x", "data": [[1, -1]]})
    assert body == error("Background 'data' values must be within 0..65535 (stored as uint16), got -1..1.")


def test_background_json_helpers() -> None:
    assert background_id_from_filename("simulation_20240101_000000_000000.npy") == "simulation_20240101_000000_000000"
    assert background_id_from_filename("a/b/c") == "c"
    for bad in ("", "   ", None, 3):
        with pytest.raises(ConfigError, match="'filename' is required"):
            background_id_from_filename(bad)
    for bad in ("dir/", "/", ".npy", "x/..y"):
        with pytest.raises(InvalidNameError):
            background_id_from_filename(bad)
    assert background_from_data([[True, False]]).tolist() == [[1, 0]]
    for bad in ([1, 2], [[1], [2, 3]], [["a"]], [[]], [[float("nan")]], [[1e9]], {"a": 1}, 5):
        with pytest.raises(ConfigError):
            background_from_data(bad)


# ------------------------------------------------------------------------------------------------ parsing
def test_parse_n_images() -> None:
    assert parse_n_images(None) == 10
    assert parse_n_images("") == 10
    assert parse_n_images(" 3 ") == 3
    assert parse_n_images(str(MAX_BACKGROUND_IMAGES)) == MAX_BACKGROUND_IMAGES
    for bad in ("x", "2.0", "-1", str(MAX_BACKGROUND_IMAGES + 1)):
        with pytest.raises(ConfigError):
            parse_n_images(bad)


def test_parse_additional_config() -> None:
    assert parse_additional_config(None) is None
    assert parse_additional_config("null") is None
    assert parse_additional_config('{"a": {"b": 1}}') == {"a": {"b": 1}}
    with pytest.raises(ConfigError):
        parse_additional_config('"text"')


# ------------------------------------------------------------------------------------------------ scripts and libs
async def test_scripts(client: TestClient, layout: ConfigLayout) -> None:
    assert (await call(client, "/script"))["scripts"] == []
    body = await call(client, "/script/fn.py/script_bytes", "PUT", data=b"def process_image(*a):\n    return {}\n")
    assert body["state"] == "ok"
    assert (await call(client, "/script"))["scripts"] == ["fn.py"]
    assert (await call(client, "/script/fn.py/script_bytes"))["script"].startswith("def process_image")
    assert (await call(client, "/script/fn.py/script_bytes", "DELETE"))["state"] == "ok"
    assert (await call(client, "/script"))["scripts"] == []
    assert (await call(client, "/lib"))["libs"] == []  # the lib/ folder is not a script


async def test_libs(client: TestClient, layout: ConfigLayout) -> None:
    binary = bytes(range(256)) * 4
    assert (await call(client, "/lib/libfit.so/lib_bytes", "PUT", data=binary))["status"] == "Lib file libfit.so stored."
    assert (layout.user_libs / "libfit.so").read_bytes() == binary
    await call(client, "/lib/helpers.py/lib_bytes", "PUT", data="x = 'é'\n".encode())
    assert (await call(client, "/lib"))["libs"] == ["helpers.py", "libfit.so"]

    body = await call(client, "/lib/libfit.so/lib_bytes")
    assert body["base64"] is True and base64.b64decode(body["lib"]) == binary
    body = await call(client, "/lib/helpers.py/lib_bytes")
    assert body["base64"] is False and body["lib"] == "x = 'é'\n"

    assert (await call(client, "/lib/libfit.so/lib_bytes", "DELETE"))["state"] == "ok"
    assert await call(client, "/lib/libfit.so/lib_bytes", "DELETE") == error("Lib 'libfit.so' does not exist.")
    assert await call(client, "/lib/libfit.so/lib_bytes") == error("Lib 'libfit.so' does not exist.")
    body = await call(client, "/lib/.hidden/lib_bytes", "PUT", data=b"x")
    assert body == error("Invalid lib name '.hidden': must not start with '.'.")
    assert (await call(client, "/lib"))["libs"] == ["helpers.py"]
    assert (await call(client, "/script"))["scripts"] == []
