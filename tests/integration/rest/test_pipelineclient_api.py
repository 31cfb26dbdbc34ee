"""The whole ``psi-camserver-client`` PipelineClient API, unchanged, against a real camioc process.

Also every example of cam_server's README (compat §4-§5): the screen-panel quick start (``_sp1``),
a basic pipeline from a config, backgrounds (collect, latest, list, enable), modifying configs,
``get_instance_message`` and saving a stream to HDF5 with psi-bsread + h5py.

One server per module (the ``camioc_server`` fixture's helper) keeps the run short; each test stops
the instances it started and restores the configs it changed. Stream reads poll with deadlines.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bsread
import h5py
import numpy as np
import pytest
import requests
from cam_server_client import PipelineClient
from cam_server_client.utils import get_host_port_from_stream_address
from PIL import Image

from camioc import __version__
from camioc.config.pipeline import CAMSERVER_DEFAULT_CONFIGURATION
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until

BACKGROUND_ID = re.compile(r"simulation_\d{8}_\d{6}_\d{6}")
CAMERA_CHANNELS = {"image", "timestamp", "width", "height", "x_axis", "y_axis"}
#: Channels of cam_server's default processing function (compat §2.3), without good region/slices.
PROCESSING_CHANNELS = CAMERA_CHANNELS | {
    "processing_parameters", "min_value", "max_value", "x_profile", "y_profile", "intensity",
    "x_fwhm", "y_fwhm", "x_center_of_mass", "y_center_of_mass", "x_rms", "y_rms",
    "x_fit_gauss_function", "x_fit_offset", "x_fit_amplitude", "x_fit_mean", "x_fit_standard_deviation",
    "y_fit_gauss_function", "y_fit_offset", "y_fit_amplitude", "y_fit_mean", "y_fit_standard_deviation",
}
READ_ONLY = "Cannot set config on a read only instance."


# ------------------------------------------------------------------------------------------------ helpers


def receive(address: str, predicate: Callable[[dict[str, Any]], bool] = lambda data: True,
            timeout: float = 30.0, what: str = "a message") -> bsread.Message:
    """The first message of ``address`` whose channel values satisfy ``predicate``."""
    host, port = get_host_port_from_stream_address(address)
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as source:
        while True:
            message = source.receive()
            if message is not None and predicate(values(message)):
                return message
            assert time.monotonic() < deadline, f"no {what} from {address} within {timeout} s"


def values(message: bsread.Message) -> dict[str, Any]:
    return {name: channel.value for name, channel in message.data.data.items()}


def parameters(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(data["processing_parameters"])


def call_with_deadline(function: Callable[[], Any], timeout: float) -> Any:
    """Run a client call that has no timeout of its own (e.g. get_instance_message) with one."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"call did not return within {timeout} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


# ------------------------------------------------------------------------------------------------ lists, info
def test_lists_version_info_logs(pipe: PipelineClient) -> None:
    assert pipe.get_pipelines() == ["simulation_sp"]
    assert pipe.get_config_names() == ["simulation_sp"]
    assert pipe.get_pipeline_groups() == {}
    assert pipe.get_cameras() == ["simulation", "simulation2"]
    assert pipe.get_version() == __version__
    info = pipe.get_server_info()
    assert info["version"] == __version__ and info["active_instances"] == {}
    assert {"cpu", "memory", "tx", "rx"} <= set(info)
    logs = pipe.get_logs()
    assert isinstance(logs, list) and all(len(row) == 4 for row in logs)
    assert isinstance(pipe.get_logs(txt=True), str)
    assert pipe.get_address() == pipe.address


# ------------------------------------------------------------------------------------------------ README: modify configs
def test_modify_pipeline_configs(pipe: PipelineClient, server: CamiocServer) -> None:
    config = pipe.get_pipeline_config("simulation_sp")
    assert config["camera_name"] == "simulation" and config["pipeline_type"] == "processing"
    assert config["image_background_enable"] is False and config["image_good_region"] is None

    config["image_threshold"] = 5
    config["image_good_region"] = {"threshold": 0.5}
    config["group"] = ["Screen panels"]
    saved = pipe.save_pipeline_config("rest_sp", config)
    assert saved["name"] == "rest_sp" and saved["image_threshold"] == 5
    assert saved["image_good_region"] == {"threshold": 0.5, "gfscale": 1.8}
    assert (server.base / "pipeline_config" / "rest_sp.json").is_file()
    assert pipe.get_pipelines() == ["rest_sp", "simulation_sp"]
    assert pipe.get_pipeline_groups() == {"Screen panels": ["rest_sp"]}
    assert pipe.get_pipeline_config("rest_sp")["image_good_region"]["threshold"] == 0.5

    with pytest.raises(ValueError, match="Camera name not specified in configuration."):
        pipe.save_pipeline_config("rest_bad", {"image_threshold": 1})
    # cam_server expands {} before validating; no body at all is "empty"
    with pytest.raises(ValueError, match="^Camera name not specified in configuration.$"):
        pipe.save_pipeline_config("rest_bad", {})
    reply = requests.post(f"{pipe.get_address()}/api/v1/pipeline/rest_bad/config", timeout=10).json()
    assert reply == {"state": "error", "status": "Config object cannot be empty.\nConfig: None"}
    assert "rest_bad" not in pipe.get_pipelines()
    with pytest.raises(ValueError, match="Invalid pipeline name"):
        pipe.save_pipeline_config("..bad", config)

    pipe.delete_pipeline_config("rest_sp")
    assert pipe.get_pipelines() == ["simulation_sp"]
    with pytest.raises(ValueError, match="Config 'rest_sp' does not exist."):
        pipe.delete_pipeline_config("rest_sp")
    with pytest.raises(ValueError, match="Config 'rest_sp' does not exist."):
        pipe.get_pipeline_config("rest_sp")


# ------------------------------------------------------------------------------------------------ README: quick start
def test_quick_start_screen_panel_instance(pipe: PipelineClient) -> None:
    instance_id, stream = pipe.create_instance_from_name("simulation_sp", "simulation_sp1")
    assert instance_id == "simulation_sp1" and stream.startswith("tcp://127.0.0.1:")
    assert pipe.is_instance_running("simulation_sp1")
    assert pipe.get_instance_stream("simulation_sp1") == stream
    info = pipe.get_instance_info("simulation_sp1")
    assert info["instance_id"] == "simulation_sp1" and info["read_only"] is False
    assert info["camera_name"] == "simulation" and info["stream_address"] == stream
    assert info["is_stream_active"] is True and "statistics" in info and "last_start_time" in info
    # cam_server's statistics fields (compat §1.3)
    assert {"total_bytes", "clients", "throughput", "time", "rx", "tx", "pid", "cpu", "memory",
            "header_changes", "frame_shape"} <= set(info["statistics"])
    with pytest.raises(ValueError, match="^Instance 'simulation_sp1' still running.$"):
        pipe.get_instance_exit_code("simulation_sp1")

    data = values(receive(stream))
    assert PROCESSING_CHANNELS <= set(data)
    assert data["image"].shape == (960, 1280) and data["width"] == 1280 and data["height"] == 960
    statistics = wait_until(lambda: (s := pipe.get_instance_info("simulation_sp1")["statistics"])["total_bytes"]
                            > 1280 * 960 * 2 and s, what="bytes sent in the statistics")
    assert statistics["frame_shape"] == "1280x960x2" and statistics["header_changes"] >= 1
    assert re.fullmatch(r"\d+\.\d\dHz - \d+", statistics["rx"]) and re.fullmatch(r"\d+\.\d\dHz - [1-9]\d*", statistics["tx"])
    assert statistics["throughput"] > 0
    assert parameters(data)["camera_name"] == "simulation"

    with pytest.raises(ValueError, match=re.escape(
            "Instance with id 'simulation_sp1' is already present and running. Use another instance_id or "
            "stop the current instance if you want to reuse the same instance_id.")):
        pipe.create_instance_from_name("simulation_sp", "simulation_sp1")

    # Live changes, as screen_panel makes them: ROI, threshold, good region + slices.
    config = pipe.set_instance_config("simulation_sp1", {
        "image_region_of_interest": [300, 600, 200, 500], "image_threshold": 10,
        "image_good_region": {"threshold": 0.2}, "image_slices": {"number_of_slices": 3}})
    assert config["image_region_of_interest"] == [300, 600, 200, 500] and config["image_threshold"] == 10
    assert config["image_good_region"] == {"threshold": 0.2, "gfscale": 1.8}
    assert config["image_slices"] == {"number_of_slices": 3, "scale": 2.0, "orientation": "vertical"}
    assert pipe.get_instance_config("simulation_sp1")["image_threshold"] == 10
    data = values(receive(stream, lambda d: d["image"].shape == (500, 600), what="an ROI-cropped image"))
    assert data["width"] == 600 and data["height"] == 500
    assert parameters(data)["image_threshold"] == 10
    assert {"good_region", "gr_x_profile", "slice_amount", "slice_0_center_x", "coupling"} <= set(data)
    # Sub-sections merge key by key.
    config = pipe.set_instance_config("simulation_sp1", {"image_good_region": {"gfscale": 3.0}})
    assert config["image_good_region"] == {"threshold": 0.2, "gfscale": 3.0}

    with pytest.raises(ValueError, match="Cannot change the camera name on a running instance."):
        pipe.set_instance_config("simulation_sp1", {"camera_name": "simulation2"})
    with pytest.raises(ValueError, match="Config updates cannot be empty."):
        pipe.set_instance_config("simulation_sp1", {})
    with pytest.raises(ValueError, match="number_of_slices must be an integer."):
        pipe.set_instance_config("simulation_sp1", {"image_slices": {"number_of_slices": "x"}})
    assert pipe.get_instance_config("simulation_sp1")["image_good_region"]["gfscale"] == 3.0  # unchanged

    pipe.stop_instance("simulation_sp1")
    assert not pipe.is_instance_running("simulation_sp1")
    assert pipe.get_instance_exit_code("simulation_sp1") == 0
    with pytest.raises(ValueError, match="Instance 'simulation_sp1' does not exist."):
        pipe.get_instance_info("simulation_sp1")
    # The id is free again once stopped; additional_config is merged into the named config.
    instance_id, _ = pipe.create_instance_from_name("simulation_sp", "simulation_sp1", {"image_threshold": 7})
    assert pipe.get_instance_config(instance_id)["image_threshold"] == 7
    pipe.delete_instance(instance_id)
    assert not pipe.is_instance_running(instance_id)


# ------------------------------------------------------------------------------------------------ README: basic pipeline
def test_basic_pipeline_from_config(pipe: PipelineClient) -> None:
    instance_id, stream = pipe.create_instance_from_config({"camera_name": "simulation"})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", instance_id)
    data = values(receive(stream))
    assert PROCESSING_CHANNELS <= set(data)
    x_axis, y_axis = data["x_axis"], data["y_axis"]
    assert len(x_axis) == 1280 and len(y_axis) == 960
    assert x_axis[0] <= data["x_center_of_mass"] <= x_axis[-1]
    assert y_axis[0] <= data["y_center_of_mass"] <= y_axis[-1]
    assert data["y_fit_standard_deviation"] > 0 and data["intensity"] > 0
    assert len(data["x_profile"]) == 1280 and len(data["y_profile"]) == 960
    config = pipe.get_instance_config(instance_id)
    assert config["camera_name"] == "simulation" and config["pipeline_type"] == "processing"
    assert pipe.get_instance_info(instance_id)["read_only"] is False

    # (the uuid instance may have stopped by now: no client for no_client_timeout; this one stays)
    named_id, _ = pipe.create_instance_from_config(
        {"camera_name": "simulation2", "image_threshold": 3, "no_client_timeout": 0}, "rest_basic")
    assert named_id == "rest_basic"
    assert "rest_basic" in pipe.get_server_info()["active_instances"]

    with pytest.raises(ValueError, match="Camera name not specified in configuration."):
        pipe.create_instance_from_config({"image_threshold": 3})
    with pytest.raises(ValueError, match="Camera 'no_camera' does not exist."):
        pipe.create_instance_from_config({"camera_name": "no_camera"})
    with pytest.raises(ValueError, match="Pipeline 'no_pipeline' does not exist."):
        pipe.create_instance_from_name("no_pipeline")
    reply = requests.post(f"{pipe.get_address()}/api/v1/pipeline", timeout=10).json()
    assert reply == {"state": "error",
                     "status": "You must specify either the pipeline name or the configuration for the pipeline."}


# ------------------------------------------------------------------------------------------------ configs as cam_server shows them
def test_configs_are_camservers_expansion(pipe: PipelineClient, server: CamiocServer) -> None:
    """Every ``config`` answer is cam_server's expansion of the user's config, nothing more (its
    client test: ``get_instance_config == DEFAULT_CONFIGURATION updated with the config``)."""
    user = {"camera_name": "simulation", "background_image": "anything", "image_good_region": {"threshold": 0.4}}
    expected = {**CAMSERVER_DEFAULT_CONFIGURATION, **user, "image_good_region": {"threshold": 0.4, "gfscale": 1.8}}
    reply = requests.post(f"{pipe.get_address()}/api/v1/pipeline", json=user, timeout=60).json()
    assert reply["state"] == "ok" and reply["config"] == expected
    instance_id, stream = reply["instance_id"], reply["stream"]
    assert pipe.get_instance_config(instance_id) == expected
    assert pipe.get_instance_info(instance_id)["config"] == expected
    # the runtime defaults are in the stream's processing_parameters only
    params = parameters(values(receive(stream)))
    assert params["queue_size"] == 10 and params["mode"] == "PUB" and params["no_client_timeout"] == 10
    # updates merge the cam_server way: sub-sections key by key, other keys replaced
    config = pipe.set_instance_config(instance_id, {"image_threshold": 4, "image_good_region": {"gfscale": 2.0}})
    assert config == {**expected, "image_threshold": 4, "image_good_region": {"threshold": 0.4, "gfscale": 2.0}}
    assert pipe.get_instance_config(instance_id) == config

    # saved configs: the expansion with the pipeline name, as stored
    saved = pipe.save_pipeline_config("rest_expanded", {"camera_name": "simulation2", "image_slices": {}})
    assert saved == {**CAMSERVER_DEFAULT_CONFIGURATION, "camera_name": "simulation2", "name": "rest_expanded",
                     "image_slices": {"number_of_slices": 1, "scale": 2.0, "orientation": "vertical"}}
    assert pipe.get_pipeline_config("rest_expanded") == saved
    assert json.loads((server.base / "pipeline_config" / "rest_expanded.json").read_text()) == saved
    try:
        named_id, _ = pipe.create_instance_from_name("rest_expanded", additional_config={"image_threshold": 2})
        assert pipe.get_instance_config(named_id) == {**saved, "image_threshold": 2}
        pipe.get_instance_stream("rest_expanded")  # the shared instance: the saved config
        assert pipe.get_instance_config("rest_expanded") == saved
        assert pipe.get_instance_info("rest_expanded")["config"] == saved
        # another pipeline type: exactly the user's keys
        store = {"camera_name": "simulation", "pipeline_type": "store"}
        store_id, _ = pipe.create_instance_from_config(store)
        assert pipe.get_instance_config(store_id) == store
        from_config = {"camera_name": "simulation2", "image_threshold": 6}
        shared_id, _ = pipe.get_instance_stream_from_config(from_config)
        assert pipe.get_instance_config(shared_id) == {**CAMSERVER_DEFAULT_CONFIGURATION, **from_config}
    finally:
        pipe.stop_all_instances()
        pipe.delete_pipeline_config("rest_expanded")


# ------------------------------------------------------------------------------------------------ buffer_size
def first_messages(address: str, count: int, mode: int, timeout: float = 30.0) -> list[bsread.Message]:
    host, port = get_host_port_from_stream_address(address)
    messages: list[bsread.Message] = []
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=mode, receive_timeout=500) as source:
        while len(messages) < count:
            assert time.monotonic() < deadline, f"only {len(messages)} messages from {address}"
            message = source.receive()
            if message is not None:
                messages.append(message)
    return messages


def stamp(message: bsread.Message) -> float:
    return message.data.global_timestamp + message.data.global_timestamp_offset * 1e-9


@pytest.mark.parametrize(("config", "mode", "channels"), [
    ({"camera_name": "simulation"}, bsread.SUB, PROCESSING_CHANNELS),  # PUB output
    ({"camera_name": "simulation", "pipeline_type": "store"}, bsread.PULL, {"simulation:FPICTURE"}),  # PUSH
], ids=["processing-PUB", "store-PUSH"])
def test_buffer_size_delivers_the_frames_made_before_the_client_connected(
        pipe: PipelineClient, config: dict[str, Any], mode: int, channels: set[str]) -> None:
    instance_id, stream = pipe.create_instance_from_config({**config, "buffer_size": 5})
    wait_until(lambda: pipe.get_instance_info(instance_id)["statistics"]["frames"] >= 8, timeout=20,
               what="frames processed before any client")
    connected = time.time()
    messages = first_messages(stream, 8, mode)
    # The five buffered frames come first; they are the last five made before the client was seen
    # (the subscription / connection arrives a few ms after `connected`, so at most one of them may
    # be younger). Without the buffer at most one frame older than `connected` could arrive.
    pulse_ids = [m.data.pulse_id for m in messages]
    older = [m for m in messages if stamp(m) < connected]
    assert len(older) >= 4 and messages[:len(older)] == older, [stamp(m) - connected for m in messages]
    assert all(m.data.pulse_id / 100 < connected for m in older)  # simulation pulse ids are time * 100
    assert pulse_ids == sorted(set(pulse_ids))
    assert max(np.diff(pulse_ids)) < 30  # 10 Hz camera: consecutive frames, none lost at the hand-over
    assert channels <= set(messages[0].data.data) and channels <= set(messages[-1].data.data)
    if mode == bsread.PULL:
        assert set(messages[0].data.data) == channels


# ------------------------------------------------------------------------------------------------ shared instances
def test_shared_read_only_instances_and_get_instance_message(pipe: PipelineClient) -> None:
    stream = pipe.get_instance_stream("simulation_sp")  # starts the shared instance of the saved pipeline
    assert pipe.get_instance_stream("simulation_sp") == stream
    info = pipe.get_instance_info("simulation_sp")
    assert info["read_only"] is True and info["instance_id"] == "simulation_sp"
    with pytest.raises(ValueError, match=READ_ONLY):
        pipe.set_instance_config("simulation_sp", {"image_threshold": 1})
    with pytest.raises(ValueError, match="Instance 'nope' is not present on server and it is not a saved pipeline name."):
        pipe.get_instance_stream("nope")

    message = call_with_deadline(lambda: pipe.get_instance_message("simulation_sp"), 60.0)
    assert PROCESSING_CHANNELS <= set(message.data.data)
    assert message.data.data["image"].value.shape == (960, 1280)

    # get_instance_stream_from_config: read-only, and reused while an equal one runs.
    config = {"camera_name": "simulation2", "image_threshold": 2}
    instance_id, stream2 = pipe.get_instance_stream_from_config(config)
    assert pipe.get_instance_stream_from_config(dict(config)) == (instance_id, stream2)
    assert pipe.get_instance_info(instance_id)["read_only"] is True
    with pytest.raises(ValueError, match=READ_ONLY):
        pipe.set_instance_config(instance_id, {"image_threshold": 3})
    other_id, stream3 = pipe.get_instance_stream_from_config({"camera_name": "simulation2", "image_threshold": 4})
    assert other_id != instance_id and stream3 != stream2

    # A private instance is writable: get_instance_message reads it too.
    private_id, _ = pipe.create_instance_from_name("simulation_sp")
    assert pipe.get_instance_info(private_id)["read_only"] is False
    assert pipe.set_instance_config(private_id, {"image_threshold": 1})["image_threshold"] == 1
    message = call_with_deadline(lambda: pipe.get_instance_message(private_id), 60.0)
    assert message.data.data["width"].value == 1280


def test_get_instance_message_refuses_non_processing(pipe: PipelineClient) -> None:
    # a store pipeline publishes (PUB here; its default is PUSH) the raw camera image only, as
    # cam_server does: one channel, <camera>:FPICTURE
    instance_id, stream = pipe.create_instance_from_config(
        {"camera_name": "simulation", "pipeline_type": "store", "mode": "PUB"})
    data = values(receive(stream))
    assert set(data) == {"simulation:FPICTURE"}
    assert data["simulation:FPICTURE"].shape == (960, 1280) and data["simulation:FPICTURE"].dtype == np.uint16
    with pytest.raises(ValueError, match="Cannot get message from 'store' pipeline type."):
        pipe.get_instance_message(instance_id)


def test_completed_instance_and_exit_code(pipe: PipelineClient) -> None:
    instance_id, _ = pipe.create_instance_from_config({"camera_name": "simulation", "records": 3})
    pipe.wait_instance_completed(instance_id, timeout=15)
    assert pipe.get_instance_exit_code(instance_id) == 0
    with pytest.raises(ValueError, match="Instance 'never_ran' does not exist."):
        pipe.get_instance_exit_code("never_ran")


# ------------------------------------------------------------------------------------------------ README: backgrounds
def test_backgrounds_collect_list_and_enable(pipe: PipelineClient, server: CamiocServer) -> None:
    with pytest.raises(ValueError, match="n_images must be a number."):
        pipe.collect_background("simulation", "many")
    background_id = pipe.collect_background("simulation", 3)
    assert BACKGROUND_ID.fullmatch(background_id)
    assert (server.base / "background_config" / f"{background_id}.npy").is_file()
    assert pipe.get_latest_background("simulation") == background_id
    assert pipe.get_latest_background("sim") == background_id  # alias
    assert background_id in pipe.get_backgrounds("simulation")
    assert pipe.get_backgrounds("simulation2") == []
    with pytest.raises(ValueError, match="No background matches for the specified prefix 'simulation2'."):
        pipe.get_latest_background("simulation2")

    array = pipe.get_background_image_array(background_id)
    assert array.shape == (960, 1280) and array.dtype == np.uint16 and array.max() > 0
    image = pipe.get_background_image_bytes(background_id)
    assert image["shape"] == [960, 1280] and image["dtype"] == "<u2"
    response = pipe.get_background_image(background_id)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (1280, 960)

    # Enable it on a running instance (README): the beam is subtracted, the image goes dark.
    instance_id, stream = pipe.create_instance_from_config({"camera_name": "simulation"})
    before = values(receive(stream))["intensity"]
    config = pipe.set_instance_config(instance_id, {"image_background_enable": True,
                                                    "image_background": background_id, "image_threshold": 20})
    assert config["image_background"] == background_id and config["image_background_enable"] is True
    data = values(receive(stream, lambda d: parameters(d).get("image_background_enable") is True,
                          what="a background-subtracted frame"))
    assert parameters(data)["image_background"] == background_id
    assert not parameters(data).get("processing_error")
    assert data["intensity"] < 0.5 * before

    with pytest.raises(ValueError, match="Requested background 'nope' does not exist."):
        pipe.get_background_image_bytes("nope")


def test_background_arrays_set_and_json(pipe: PipelineClient, server: CamiocServer, tmp_path: Path) -> None:
    array = (np.arange(96 * 128, dtype=np.uint32) % 3000).astype(np.uint16).reshape(96, 128)
    pipe.set_background_image_array("rest_bg", array)
    np.testing.assert_array_equal(np.load(server.base / "background_config" / "rest_bg.npy"), array)
    np.testing.assert_array_equal(pipe.get_background_image_array("rest_bg"), array)
    pipe.set_background_image_bytes("rest_bg", array[:10])  # deprecated name, same call
    assert pipe.get_background_image_array("rest_bg").shape == (10, 128)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, (f"touch {marker}",))

    with pytest.raises(ValueError, match="refused to load"):
        pipe.set_background_image_array("evil", Evil())
    assert not marker.exists() and not (server.base / "background_config" / "evil.npy").exists()

    data = np.full((4, 6), 7, dtype=np.uint16)
    assert pipe.set_background("/some/where/json_bg.npy", data) == "ok"
    np.testing.assert_array_equal(pipe.get_background_image_array("json_bg"), data)
    with pytest.raises(ValueError, match="no server-wide background to clear"):
        pipe.set_background("json_bg", None)


# ------------------------------------------------------------------------------------------------ README: HDF5
def test_save_stream_to_hdf5(pipe: PipelineClient, tmp_path: Path) -> None:
    _, stream = pipe.create_instance_from_config({"camera_name": "simulation2", "image_good_region": {}})
    host, port = get_host_port_from_stream_address(stream)
    n_messages = 5
    path = tmp_path / "stream.h5"
    received: list[dict[str, Any]] = []
    pulse_ids: list[int] = []
    deadline = time.monotonic() + 20
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as source:
        while len(received) < n_messages:
            assert time.monotonic() < deadline, "stream too slow"
            message = source.receive()
            if message is not None:
                received.append(values(message))
                pulse_ids.append(message.data.pulse_id)
    scalars = ["x_center_of_mass", "y_center_of_mass", "intensity", "width", "height"]
    with h5py.File(path, "w") as h5:
        h5["pulse_id"] = np.array(pulse_ids, dtype=np.int64)
        h5["image"] = np.stack([data["image"] for data in received])
        h5["x_profile"] = np.stack([data["x_profile"] for data in received])
        h5["processing_parameters"] = np.array([data["processing_parameters"] for data in received],
                                               dtype=h5py.string_dtype())
        for name in scalars:
            h5[name] = np.array([data[name] for data in received])

    with h5py.File(path, "r") as h5:
        assert h5["image"].shape == (n_messages, 480, 640)
        assert h5["x_profile"].shape == (n_messages, 640)
        assert list(h5["pulse_id"][:]) == pulse_ids and pulse_ids == sorted(pulse_ids)
        np.testing.assert_array_equal(h5["image"][-1], received[-1]["image"])
        np.testing.assert_allclose(h5["x_center_of_mass"][:], [d["x_center_of_mass"] for d in received])
        assert json.loads(h5["processing_parameters"][0])["camera_name"] == "simulation2"
        assert list(h5["width"][:]) == [640] * n_messages


# ------------------------------------------------------------------------------------------------ scripts and libs
FUNCTION = '''
import numpy as np


def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    return {"image": image, "x_axis": x_axis, "y_axis": y_axis, "rest_sum": float(np.sum(image, dtype=np.float64)),
            "rest_pulse_id": int(pulse_id)}
'''


def test_user_scripts_and_function(pipe: PipelineClient, server: CamiocServer, tmp_path: Path) -> None:
    pipe.set_user_script("rest_script.py", "x = 1\n")
    assert "rest_script.py" in pipe.get_user_scripts()
    assert pipe.get_user_script("rest_script.py") == "x = 1\n"
    pipe.delete_script("rest_script.py")
    assert "rest_script.py" not in pipe.get_user_scripts()
    with pytest.raises(ValueError, match="Script 'rest_script.py' does not exist."):
        pipe.get_user_script("rest_script.py")

    local = tmp_path / "rest_function.py"
    local.write_text(FUNCTION)
    download = tmp_path / "download" / "rest_function.py"
    download.parent.mkdir()
    instance_id, stream = pipe.create_instance_from_config({"camera_name": "simulation2"})
    assert pipe.set_function_script(instance_id, str(local)) == "rest_function.py"
    assert pipe.download_user_script(str(download)) == str(download) and download.read_text() == FUNCTION
    config = pipe.get_instance_config(instance_id)
    assert config["function"] == "rest_function.py" and config["reload"] is True
    data = values(receive(stream, lambda d: "rest_sum" in d, what="the user function's output"))
    assert data["rest_sum"] == pytest.approx(float(data["image"].sum()))
    pipe.stop_instance(instance_id)
    pipe.delete_script("rest_function.py")


def test_user_libs(pipe: PipelineClient, server: CamiocServer) -> None:
    binary = bytes(range(256))
    pipe.set_lib("librest.so", binary)
    pipe.set_lib("rest_helpers.py", "VALUE = 3\n")
    assert {"librest.so", "rest_helpers.py"} <= set(pipe.get_libs())
    assert (server.base / "user_scripts" / "lib" / "librest.so").read_bytes() == binary
    assert pipe.get_user_lib("rest_helpers.py") == "VALUE = 3\n"
    reply = requests.get(f"{pipe.get_address()}/api/v1/pipeline/lib/librest.so/lib_bytes", timeout=10).json()
    assert reply["base64"] is True and base64.b64decode(reply["lib"]) == binary
    pipe.delete_lib("librest.so")
    pipe.delete_lib("rest_helpers.py")
    assert not {"librest.so", "rest_helpers.py"} & set(pipe.get_libs())
    with pytest.raises(ValueError, match="Lib 'librest.so' does not exist."):
        pipe.get_user_lib("librest.so")


# ------------------------------------------------------------------------------------------------ instance management
def test_stop_delete_and_instance_logs(pipe: PipelineClient) -> None:
    first, _ = pipe.create_instance_from_config({"camera_name": "simulation", "pipeline_type": "store"}, "rest_a")
    second, _ = pipe.create_instance_from_config({"camera_name": "simulation2", "pipeline_type": "store"}, "rest_b")
    assert {first, second} <= set(pipe.get_server_info()["active_instances"])
    heartbeat = requests.get(f"{pipe.get_address()}/api/v1/pipeline/heartbeat", timeout=10).json()
    assert {first, second} <= set(heartbeat["instances"])
    entry = heartbeat["instances"][first]  # cam_server's flat summary
    assert entry["camera_name"] == "simulation" and entry["read_only"] is False
    assert {"stream_address", "last_start_time", "total_bytes", "clients", "throughput", "time", "pid",
            "header_changes", "frame_shape", "rx", "tx"} <= set(entry)
    assert isinstance(entry["rx"], float) and isinstance(entry["tx"], float)  # Hz in the heartbeat
    pipe.delete_instance(first)
    assert not pipe.is_instance_running(first) and pipe.is_instance_running(second)
    pipe.stop_instance("no_such_instance")  # not an error
    pipe.stop_all_instances()
    assert pipe.get_server_info()["active_instances"] == {}
    assert isinstance(pipe.get_instance_logs(first), list)
    assert isinstance(pipe.get_instance_logs(first, txt=True), str)


# ------------------------------------------------------------------------------------------------ debug
def test_debug_forwards_the_workers_debug_log_to_the_instance_log(pipe: PipelineClient) -> None:
    """``"debug": true``: the worker logs at DEBUG and its records reach the instance's log ring."""
    debug_id, _ = pipe.create_instance_from_config({"camera_name": "simulation", "debug": True})
    quiet_id, _ = pipe.create_instance_from_config({"camera_name": "simulation"})

    def debug_records(instance_id: str) -> list[list[str]]:
        return [entry for entry in pipe.get_instance_logs(instance_id) if entry[2] == "DEBUG"]

    wait_until(lambda: any("configuration" in entry[3] for entry in debug_records(debug_id)), timeout=20,
               what="the debug instance's configuration record")
    wait_until(lambda: pipe.get_instance_info(quiet_id)["statistics"].get("frames", 0) > 0, timeout=20,
               what="a processed frame of the quiet instance")
    assert debug_records(quiet_id) == []
