"""Every camera route against an in-memory CameraService (routing, payloads, exact messages)."""

from __future__ import annotations

import base64
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from camioc.rest.common import RESET_REFUSED
from tests.unit.rest.fakes import VERSION, FakeCameras


async def get_json(client: TestClient, path: str, method: str = "GET", **kwargs) -> dict:
    response = await client.request(method, path, **kwargs)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_lists(client: TestClient) -> None:
    assert (await get_json(client, "/api/v1/cam/aliases"))["aliases"] == {"SIM": "simulation", "sim2": "simulation"}
    assert (await get_json(client, "/api/v1/cam/groups"))["groups"] == {"Other": ["cam_a"], "Test": ["cam_a", "simulation"]}
    assert (await get_json(client, "/api/v1/cam/config_names"))["config_names"] == ["cam_a", "offline_cam", "simulation"]


async def test_static_routes_win_over_camera_routes(client: TestClient, cameras: FakeCameras) -> None:
    # A camera whose name collides with a literal route is shadowed (as in cam_server).
    cameras.configs["aliases"] = {"name": "aliases", "source": "x"}
    body = await get_json(client, "/api/v1/cam/aliases")
    assert "aliases" in body and "stream" not in body
    assert (await get_json(client, "/api/v1/cam/version"))["version"] == VERSION
    assert "info" in await get_json(client, "/api/v1/cam/info")
    assert "scripts" in await get_json(client, "/api/v1/cam/script")
    assert cameras.running == {}


async def test_stream_starts_instance_by_name_or_alias(client: TestClient, cameras: FakeCameras) -> None:
    body = await get_json(client, "/api/v1/cam/SIM")
    assert body == {"state": "ok", "status": "Stream address for camera SIM.", "stream": "tcp://127.0.0.1:10100"}
    assert "simulation" in cameras.running
    offline = await get_json(client, "/api/v1/cam/offline_cam")
    assert offline == {"state": "error", "status": "Camera with prefix OFF is offline"}


async def test_is_online(client: TestClient) -> None:
    assert await get_json(client, "/api/v1/cam/simulation/is_online") == {
        "state": "ok", "status": "Camera simulation is online.", "online": True}
    assert await get_json(client, "/api/v1/cam/offline_cam/is_online") == {
        "state": "ok", "status": "Camera with prefix OFF is offline", "online": False}
    assert (await get_json(client, "/api/v1/cam/nope/is_online"))["status"] == "Camera 'nope' does not exist."


async def test_config_get_set_delete(client: TestClient, cameras: FakeCameras) -> None:
    body = await get_json(client, "/api/v1/cam/simulation/config")
    assert body["status"] == "Camera simulation configuration retrieved."
    assert body["config"]["source_type"] == "simulation" and body["config"]["mirror_x"] is False

    new = {"source": "NEW:CAM", "source_type": "epics", "_comment": "kept"}
    body = await get_json(client, "/api/v1/cam/new_cam/config", "POST", json=new)
    assert body["status"] == "Camera new_cam configuration saved."
    assert body["config"]["source"] == "NEW:CAM" and body["config"]["_comment"] == "kept"
    assert "new_cam" in (await get_json(client, "/api/v1/cam"))["cameras"]

    body = await get_json(client, "/api/v1/cam/new_cam/config", "DELETE")
    assert body == {"state": "ok", "status": "Camera new_cam configuration deleted."}
    assert "new_cam" not in cameras.configs
    assert await get_json(client, "/api/v1/cam/new_cam/config", "DELETE") == {
        "state": "error", "status": "Config 'new_cam' does not exist."}


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        (b"", {}, "Config object cannot be empty. Config: None"),
        (b"{}", {"Content-Type": "application/json"}, "Config object cannot be empty. Config: {}"),
        (b"source=x", {"Content-Type": "application/x-www-form-urlencoded"},
         "Request body is not valid JSON: Expecting value (line 1, column 1)."),
        (b'"just a string"', {}, "Request body must be a JSON object, got str."),
        (b'{"source_type": "epics"}', {}, "'source' not specified in configuration."),
    ],
)
async def test_post_config_refusals(client: TestClient, cameras: FakeCameras, data: bytes, headers: dict, status: str) -> None:
    body = await get_json(client, "/api/v1/cam/simulation/config", "POST", data=data, headers=headers)
    assert body == {"state": "error", "status": status}
    assert cameras.configs["simulation"]["source"] == "sim"  # nothing changed


async def test_post_config_invalid_name(client: TestClient) -> None:
    body = await get_json(client, "/api/v1/cam/..hidden/config", "POST", json={"source": "x"})
    assert body == {"state": "error", "status": "Invalid camera name '..hidden': must not contain '..'."}


async def test_geometry(client: TestClient) -> None:
    assert await get_json(client, "/api/v1/cam/sim2/geometry") == {
        "state": "ok", "status": "Geometry of camera sim2 retrieved.", "geometry": [16, 12]}


async def test_image_png(client: TestClient, cameras: FakeCameras) -> None:
    response = await client.get("/api/v1/cam/simulation/image")
    assert response.status == 200
    assert response.content_type == "image/png"
    image = Image.open(io.BytesIO(await response.read()))
    image.load()
    assert image.format == "PNG" and image.size == (16, 12) and image.mode == "P"
    assert cameras.calls[-1] == ("get_image", ("simulation", False))


async def test_image_png_parameters(client: TestClient, cameras: FakeCameras) -> None:
    response = await client.get("/api/v1/cam/simulation/image", params={
        "raw": "", "scale": "0.5", "min_value": "10", "max_value": "500", "colormap": "viridis"})
    image = Image.open(io.BytesIO(await response.read()))
    assert image.size == (8, 6)
    assert cameras.calls[-1] == ("get_image", ("simulation", True))
    await client.get("/api/v1/cam/simulation/image", params={"raw": "false"})
    assert cameras.calls[-1] == ("get_image", ("simulation", False))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"scale": "abc"}, "Invalid value for 'scale': 'abc' is not a number."),
        ({"scale": "0"}, "Invalid value for 'scale': must be positive, got 0."),
        ({"min_value": "nan"}, "Invalid value for 'min_value': 'nan' is not a finite number."),
        ({"min_value": "5", "max_value": "1"}, "Invalid range: min_value (5) is larger than max_value (1)."),
        ({"colormap": "plasma2"},
         "Unknown colormap 'plasma2'. Available: ['gray', 'grey', 'greys', 'hot', 'inferno', 'jet', 'rainbow', 'viridis'] "
         "(append '_r' to reverse)."),
    ],
)
async def test_image_png_bad_parameters(client: TestClient, cameras: FakeCameras, params: dict, status: str) -> None:
    body = await get_json(client, "/api/v1/cam/simulation/image", params=params)
    assert body == {"state": "error", "status": status}
    assert not [call for call in cameras.calls if call[0] == "get_image"]  # refused before reading


async def test_image_of_offline_camera_is_error_envelope(client: TestClient) -> None:
    response = await client.get("/api/v1/cam/offline_cam/image")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == {"state": "error", "status": "Camera with prefix OFF is offline"}


async def test_image_bytes_round_trip_like_camclient(client: TestClient, cameras: FakeCameras) -> None:
    body = await get_json(client, "/api/v1/cam/simulation/image_bytes")
    assert body["status"] == "Image bytes of camera 'simulation'."
    image = body["image"]
    assert image["shape"] == [12, 16] and image["dtype"] == "<u2"
    # Exactly CamClient.get_camera_array's decoding:
    array = np.frombuffer(base64.b64decode(image["bytes"].encode()), dtype=image["dtype"]).reshape(image["shape"])
    np.testing.assert_array_equal(array, cameras.image)


@pytest.mark.parametrize("dtype", ["<u2", ">i4", "<f8", "|u1", "<f4"])
async def test_image_bytes_dtypes(client: TestClient, cameras: FakeCameras, dtype: str) -> None:
    cameras.image = np.arange(6).astype(dtype).reshape(2, 3)
    image = (await get_json(client, "/api/v1/cam/simulation/image_bytes"))["image"]
    assert image["dtype"] == np.dtype(dtype).str
    array = np.frombuffer(base64.b64decode(image["bytes"].encode()), dtype=image["dtype"]).reshape(image["shape"])
    np.testing.assert_array_equal(array, cameras.image)


async def test_image_bytes_of_non_contiguous_image(client: TestClient, cameras: FakeCameras) -> None:
    cameras.image = np.arange(40, dtype=np.uint16).reshape(5, 8)[:, ::2]
    image = (await get_json(client, "/api/v1/cam/simulation/image_bytes"))["image"]
    array = np.frombuffer(base64.b64decode(image["bytes"]), dtype=image["dtype"]).reshape(image["shape"])
    np.testing.assert_array_equal(array, cameras.image)


async def test_put_background_pickle(client: TestClient, cameras: FakeCameras) -> None:
    array = np.arange(20, dtype=np.uint16).reshape(4, 5)
    body = await get_json(client, "/api/v1/cam/background/bg_1/image_bytes", "PUT", data=pickle.dumps(array, protocol=0))
    assert body == {"state": "ok", "status": "Background image bg_1 stored."}
    np.testing.assert_array_equal(cameras.backgrounds["bg_1"], array)
    assert cameras.backgrounds["bg_1"].dtype == np.uint16


async def test_put_background_refuses_code_execution(client: TestClient, cameras: FakeCameras, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    body = await get_json(client, "/api/v1/cam/background/bg/image_bytes", "PUT", data=pickle.dumps(Evil(), protocol=0))
    assert body["state"] == "error"
    assert body["status"] == (
        "Invalid body: refused to load 'posix.system'; only a pickled numpy array of numeric dtype is accepted.")
    assert not marker.exists()
    assert cameras.backgrounds == {}


async def test_put_background_invalid_name(client: TestClient) -> None:
    data = pickle.dumps(np.zeros((2, 2)), protocol=0)
    body = await get_json(client, "/api/v1/cam/background/.bg/image_bytes", "PUT", data=data)
    assert body == {"state": "error", "status": "Invalid background name '.bg': must not start with '.'."}


async def test_stop_delete_and_stop_all(client: TestClient, cameras: FakeCameras) -> None:
    await get_json(client, "/api/v1/cam/simulation")
    await get_json(client, "/api/v1/cam/cam_a")
    info = (await get_json(client, "/api/v1/cam/info"))["info"]
    assert sorted(info["active_instances"]) == ["cam_a", "simulation"]
    assert info["version"] == VERSION and info["cpu"] is None  # host_stats=False

    assert await get_json(client, "/api/v1/cam/simulation", "DELETE") == {
        "state": "ok", "status": "Instance 'simulation' stopped."}
    assert "simulation" not in cameras.running
    # Stopping an unknown instance is not an error.
    assert (await get_json(client, "/api/v1/cam/unknown_cam", "DELETE"))["state"] == "ok"

    assert (await get_json(client, "/api/v1/cam/cam_a/del", "DELETE"))["state"] == "ok"
    assert cameras.calls[-1] == ("delete_instance", "cam_a")
    assert await get_json(client, "/api/v1/cam/cam_a/del", "DELETE") == {
        "state": "error", "status": "Instance 'cam_a' does not exist."}

    await get_json(client, "/api/v1/cam/simulation")
    assert await get_json(client, "/api/v1/cam", "DELETE") == {"state": "ok", "status": "All instances have been stopped."}
    assert cameras.running == {}


async def test_heartbeat_version_base(client: TestClient, cameras: FakeCameras) -> None:
    await get_json(client, "/api/v1/cam/simulation")
    heartbeat = await get_json(client, "/api/v1/cam/heartbeat")
    assert heartbeat["version"] == VERSION and list(heartbeat["instances"]) == ["simulation"]
    # cam_server's flat entry: the instance's fields and its statistics side by side
    assert heartbeat["instances"]["simulation"]["clients"] == 1 and "statistics" not in heartbeat["instances"]["simulation"]
    assert await get_json(client, "/api/v1/cam/version") == {"state": "ok", "status": "Version", "version": VERSION}
    assert await get_json(client, "/base") == {"state": "ok", "status": "Base", "base": "/api/v1/cam"}


async def test_info_with_host_stats(cameras: FakeCameras, log_buffer, scripts_dir: Path) -> None:
    from aiohttp.test_utils import TestServer

    from camioc.rest.camera_api import create_camera_app

    app = create_camera_app(cameras, version=VERSION, logs=log_buffer, scripts_dir=scripts_dir)
    async with TestClient(TestServer(app)) as client:
        first = (await get_json(client, "/api/v1/cam/info"))["info"]
        second = (await get_json(client, "/api/v1/cam/info"))["info"]
    assert first["tx"] is None and first["rx"] is None  # no previous sample yet
    assert isinstance(second["cpu"], float) and second["memory"] > 0
    assert second["tx"] >= 0 and second["rx"] >= 0


async def test_reset_is_refused(client: TestClient) -> None:
    assert await get_json(client, "/api/v1/reset") == {"state": "error", "status": RESET_REFUSED}


async def test_status_page(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    text = await response.text()
    assert "fetch(\"/base\")" in text and "/info" in text


async def test_logs_routes(client: TestClient, cameras: FakeCameras) -> None:
    await get_json(client, "/api/v1/cam/simulation")  # the fake logs "starting simulation" on camioc.camera.simulation
    logs = (await get_json(client, "/api/v1/logs"))["logs"]
    row = next(row for row in logs if row[3] == "starting simulation")
    assert row[1:] == ["camioc.camera.simulation", "INFO", "starting simulation"]
    text = await (await client.get("/api/v1/logs/txt")).text()
    assert " - camioc.camera.simulation - INFO - starting simulation" in text

    instance = (await get_json(client, "/api/v1/logs/instance/simulation"))["logs"]
    assert [r[3] for r in instance] == ["starting simulation"]
    instance_text = await (await client.get("/api/v1/logs/instance/simulation/txt")).text()
    assert instance_text.endswith("camioc.camera.simulation - INFO - starting simulation")
    assert (await get_json(client, "/api/v1/logs/instance/never_logged"))["logs"] == []


async def test_head_request_on_get_route(client: TestClient) -> None:
    response = await client.head("/api/v1/cam/version")
    assert response.status == 200


def test_heartbeat_entries_are_flat_as_in_cam_server() -> None:
    from camioc.rest.common import heartbeat_entry

    camera = {"stream_address": "tcp://h:1", "is_stream_active": True, "camera_geometry": [640, 480],
              "camera_name": "sim", "last_start_time": "t", "config": {"source_type": "simulation"},
              "statistics": {"total_bytes": 5, "clients": 1, "rx": "10.25Hz - 7", "tx": "10.25Hz - 7",
                             "frame_shape": "640x480x2"}}
    assert heartbeat_entry(camera) == {
        "stream_address": "tcp://h:1", "camera_name": "sim", "last_start_time": "t", "simulation": True,
        "geometry": [640, 480], "total_bytes": 5, "clients": 1, "rx": 10.25, "tx": 10.25,
        "frame_shape": "640x480x2"}
    pipeline = {"stream_address": "tcp://h:2", "is_stream_active": True, "camera_name": "sim", "config": {},
                "instance_id": "p", "read_only": True, "last_start_time": "t",
                "statistics": {"clients": 0, "header_changes": 1}}
    assert heartbeat_entry(pipeline) == {"stream_address": "tcp://h:2", "camera_name": "sim", "last_start_time": "t",
                                         "read_only": True, "clients": 0, "header_changes": 1}
