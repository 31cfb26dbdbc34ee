"""The whole ``psi-camserver-client`` CamClient API, unchanged, against a real camioc process.

One server per module (started with the same helper as the ``camioc_server`` fixture) keeps the
run short; every test leaves the server as it found it (configs restored, instances stopped).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bsread
import numpy as np
import pytest
import requests
from cam_server_client import CamClient
from cam_server_client.utils import get_host_port_from_stream_address
from PIL import Image

from camioc import __version__
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until

CAMERA_CHANNELS = {"image", "timestamp", "width", "height", "x_axis", "y_axis"}


@pytest.fixture
def client(server: CamiocServer) -> Iterator[CamClient]:
    client = CamClient(server.camera_url)
    yield client
    client.stop_all_instances()




def receive_one(address: str, timeout: float = 15.0) -> Any:
    host, port = get_host_port_from_stream_address(address)
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as source:
        while True:
            message = source.receive()
            if message is not None:
                return message
            assert time.monotonic() < deadline, f"no message from {address} within {timeout} s"


def test_lists(client: CamClient) -> None:
    cameras = client.get_cameras()
    assert {"simulation", "simulation2"} <= set(cameras)
    assert client.get_camera_aliases() == {"sim": "simulation", "sim2": "simulation2"}
    assert client.get_camera_groups() == {"Simulation": ["simulation", "simulation2"]}
    assert client.get_config_names() == cameras


def test_config_get_set_delete_and_new_camera(client: CamClient, server: CamiocServer) -> None:
    config = client.get_camera_config("simulation")
    assert config["source_type"] == "simulation" and config["name"] == "simulation"
    assert client.get_camera_config("sim")["name"] == "simulation"  # alias

    new = {"source": "rest_sim", "source_type": "simulation", "size_x": 320, "size_y": 200,
           "dtype": "uint16", "_comment": "kept as is"}
    saved = client.set_camera_config("rest_cam", new)
    assert saved["source"] == "rest_sim" and saved["name"] == "rest_cam" and saved["_comment"] == "kept as is"
    assert "rest_cam" in client.get_cameras()
    assert (server.base / "camera_config" / "rest_cam.json").is_file()
    assert client.get_camera_config("rest_cam")["size_x"] == 320
    # cam_server's expansion only: its defaults, none of camioc's runtime ones (binning, protocol, ...)
    assert set(saved) == set(new) | {"name", "camera_calibration", "mirror_x", "mirror_y", "rotate", "roi",
                                     "image_background"}
    assert client.get_camera_config("rest_cam") == saved
    client.get_instance_stream("rest_cam")
    assert client.get_server_info()["active_instances"]["rest_cam"]["config"] == saved
    client.stop_instance("rest_cam")
    assert client.get_camera_geometry("rest_cam") == [320, 200]

    changed = client.set_camera_config("rest_cam", {**new, "roi": [10, 100, 20, 50]})
    assert changed["roi"] == [10, 100, 20, 50]
    assert client.get_camera_geometry("rest_cam") == [100, 50]

    client.delete_camera_config("rest_cam")
    assert "rest_cam" not in client.get_cameras()
    assert not (server.base / "camera_config" / "rest_cam.json").exists()
    with pytest.raises(ValueError, match="Config 'rest_cam' does not exist."):
        client.delete_camera_config("rest_cam")


def test_config_refusals(client: CamClient, server: CamiocServer) -> None:
    with pytest.raises(ValueError, match="'source' not specified in configuration."):
        client.set_camera_config("bad_cam", {"source_type": "simulation"})
    with pytest.raises(ValueError, match="Invalid camera name"):
        client.set_camera_config("..bad", {"source": "x", "source_type": "simulation"})
    with pytest.raises(ValueError, match="Camera 'nope' does not exist."):
        client.get_camera_config("nope")
    reply = requests.post(f"{server.camera_url}/api/v1/cam/simulation/config", data=b"", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"state": "error", "status": "Config object cannot be empty. Config: None"}
    with pytest.raises(ValueError, match=r"^Config object cannot be empty\. Config: \{\}$"):
        client.set_camera_config("bad_cam", {})
    reply = requests.post(f"{server.camera_url}/api/v1/cam/simulation/config", data=b"{oops", timeout=10)
    assert reply.json()["status"].startswith("Request body is not valid JSON")
    assert client.get_camera_config("simulation")["source_type"] == "simulation"  # unchanged
    assert "bad_cam" not in client.get_cameras()


def test_geometry_online_png_and_array(client: CamClient, server: CamiocServer) -> None:
    assert client.is_camera_online("simulation") is True
    geometry = client.get_camera_geometry("simulation")
    assert geometry == [1280, 960]

    response = client.get_camera_image("simulation")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    png = Image.open(io.BytesIO(response.content))
    png.load()
    assert png.format == "PNG" and png.size == (1280, 960)

    image = client.get_camera_image_bytes("simulation")
    assert image["shape"] == [960, 1280] and image["dtype"] == "<u2"
    array = client.get_camera_array("simulation")
    assert array.shape == (geometry[1], geometry[0]) and array.dtype == np.uint16
    assert array.max() > array.min()  # a beam, not a blank frame

    small = requests.get(f"{server.camera_url}/api/v1/cam/sim/image",
                         params={"scale": "0.25", "colormap": "gray"}, timeout=30)
    assert Image.open(io.BytesIO(small.content)).size == (320, 240)


def test_instance_stream_and_lifecycle(client: CamClient) -> None:
    address = client.get_instance_stream("simulation")
    assert address.startswith("tcp://127.0.0.1:")
    assert client.get_instance_stream("sim") == address  # alias -> same instance

    message = receive_one(address)
    data = message.data.data
    assert CAMERA_CHANNELS <= set(data)
    image = data["image"].value
    assert image.shape == (960, 1280)
    assert data["width"].value == 1280 and data["height"].value == 960
    assert len(data["x_axis"].value) == 1280 and len(data["y_axis"].value) == 960
    assert data["timestamp"].value > 0

    info = client.get_server_info()
    assert info["version"] == __version__ and {"cpu", "memory", "tx", "rx"} <= set(info)
    assert info["active_instances"]["simulation"]["stream_address"] == address
    assert client.is_instance_running("simulation")
    # cam_server's statistics (compat §1.3): rx/tx as "<rate>Hz - <frames>", header rebuilds counted
    statistics = wait_until(lambda: (s := client.get_server_info()["active_instances"]["simulation"]["statistics"])
                            ["header_changes"] >= 1 and s, what="camera statistics")
    assert {"total_bytes", "clients", "throughput", "time", "rx", "tx", "pid", "cpu", "memory",
            "header_changes", "frame_shape"} <= set(statistics)
    assert re.fullmatch(r"\d+\.\d\dHz - [1-9]\d*", statistics["rx"]) and statistics["frame_shape"] == "1280x960x2"
    # While running, image_bytes/geometry come from the instance.
    assert client.get_camera_array("simulation").shape == (960, 1280)

    client.stop_instance("simulation")
    wait_until(lambda: not client.is_instance_running("simulation"), what="simulation to stop")
    client.stop_instance("simulation")  # stopping a stopped instance is fine
    client.stop_instance("no_such_camera")  # and an unknown one too

    address2 = client.get_instance_stream("simulation2")
    assert receive_one(address2).data.data["image"].value.shape == (480, 640)
    client.delete_instance("simulation2")
    wait_until(lambda: not client.is_instance_running("simulation2"), what="simulation2 to be deleted")

    client.get_instance_stream("simulation")
    client.get_instance_stream("simulation2")
    assert {"simulation", "simulation2"} <= set(client.get_server_info()["active_instances"])
    client.stop_all_instances()
    wait_until(lambda: not client.get_server_info()["active_instances"], what="all instances to stop")


def test_background_image_array(client: CamClient, server: CamiocServer, tmp_path: Path) -> None:
    array = (np.arange(960 * 1280, dtype=np.uint32) % 4000).astype(np.uint16).reshape(960, 1280)
    client.set_background_image_array("simulation_rest", array)
    stored = np.load(server.base / "background_config" / "simulation_rest.npy")
    np.testing.assert_array_equal(stored, array)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(ValueError, match="refused to load 'posix.system'"):
        client.set_background_image_array("evil", Evil())
    assert not marker.exists()
    assert not (server.base / "background_config" / "evil.npy").exists()


def test_user_scripts(client: CamClient, server: CamiocServer, tmp_path: Path) -> None:
    text = "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n    return {}\n"
    client.set_user_script("rest_func.py", text)
    assert "rest_func.py" in client.get_user_scripts()
    assert client.get_user_script("rest_func.py") == text
    assert (server.base / "user_scripts" / "rest_func.py").read_text() == text

    local = tmp_path / "uploaded_func.py"
    local.write_text("x = 1\n")
    client.upload_user_script(str(local))
    assert "uploaded_func.py" in client.get_user_scripts()
    download = tmp_path / "download" / "uploaded_func.py"
    download.parent.mkdir()
    assert client.download_user_script(str(download)) == str(download)
    assert download.read_text() == "x = 1\n"

    client.delete_script("rest_func.py")
    client.delete_script("uploaded_func.py")
    assert not {"rest_func.py", "uploaded_func.py"} & set(client.get_user_scripts())
    with pytest.raises(ValueError, match="Script 'rest_func.py' does not exist."):
        client.get_user_script("rest_func.py")
    with pytest.raises(ValueError, match="Invalid script name '..escape.py': must not contain '..'."):
        client.set_user_script("..escape.py", "x = 1\n")
    # (a literal '../' never reaches the server: HTTP clients normalise it away)
    reply = requests.put(f"{server.camera_url}/api/v1/cam/script/..%2Fescape.py/script_bytes", data=b"x = 1\n", timeout=10)
    assert reply.json()["status"].startswith("Invalid script name '../escape.py'")
    assert not (server.base / "escape.py").exists()


def test_version_and_logs(client: CamClient) -> None:
    assert client.get_version() == __version__
    client.get_instance_stream("simulation")
    logs = client.get_logs()
    assert logs and all(len(row) == 4 for row in logs)
    assert any("simulation" in row[3] for row in logs)
    text = client.get_logs(txt=True)
    assert isinstance(text, str) and " - INFO - " in text
    assert isinstance(client.get_instance_logs("simulation"), list)
    assert isinstance(client.get_instance_logs("simulation", txt=True), str)


def test_reset_is_refused(server: CamiocServer) -> None:
    reply = requests.get(f"{server.camera_url}/api/v1/reset", timeout=10)
    assert reply.status_code == 200 and reply.json()["state"] == "error"
    assert server.proc.poll() is None  # still running
    assert CamClient(server.camera_url).get_version() == __version__


def test_pickled_background_round_trip_is_not_pickle_loads(server: CamiocServer) -> None:
    """A protocol-0 pickle of a big-endian float image is accepted (any numeric dtype)."""
    array = np.linspace(0, 1, 12, dtype=">f4").reshape(3, 4)
    reply = requests.put(f"{server.camera_url}/api/v1/cam/background/float_bg/image_bytes",
                         data=pickle.dumps(array, protocol=0), timeout=10)
    assert reply.json() == {"state": "ok", "status": "Background image float_bg stored."}
    np.testing.assert_allclose(np.load(server.base / "background_config" / "float_bg.npy"), array)
