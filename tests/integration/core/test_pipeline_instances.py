"""Pipeline instances end to end in one process: PipelineManager -> worker processes -> streams.

Real parts: real camera and pipeline worker processes, the processing core, bsread streams read
with psi-bsread, HDF5 files read back with h5py.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import bsread
import h5py
import numpy as np
import pytest

from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.errors import ConfigError, InstanceError, NotFoundError, ReadOnlyError
from tests.support.waiting import receive

SIM = {"source": "simulation", "source_type": "simulation", "size_x": 200, "size_y": 150,
       "dtype": "uint16", "image_type": "beam", "frame_rate": 50.0, "no_client_timeout": 0}


@pytest.fixture
async def managers(tmp_path: Path):
    cams = tmp_path / "camera_config"
    pipes = tmp_path / "pipeline_config"
    cams.mkdir()
    pipes.mkdir()
    (cams / "sim.json").write_text(json.dumps({"name": "sim", **SIM}))
    (pipes / "sim_sp.json").write_text(json.dumps({"name": "sim_sp", "camera_name": "sim"}))
    start = random.randrange(52000, 60000, 200)
    cameras = CameraManager(ConfigStore(cams), hostname="127.0.0.1", port_range=(start, start + 100),
                            background_dir=tmp_path / "background_config")
    pipelines = PipelineManager(ConfigStore(pipes), cameras, BackgroundStore(tmp_path / "background_config"),
                                hostname="127.0.0.1", port_range=(start + 100, start + 200),
                                scripts_dir=tmp_path / "user_scripts", data_dir=tmp_path)
    try:
        yield cameras, pipelines, tmp_path
    finally:
        await pipelines.close()
        await cameras.close()




async def test_processing_pipeline_streams_results(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, config = await pipelines.create_instance({"camera_name": "sim"})
    assert config["pipeline_type"] == "processing"
    data = (await asyncio.to_thread(receive, stream, 2))[-1].data.data
    for key in ("x_center_of_mass", "y_center_of_mass", "x_rms", "intensity", "x_profile",
                "x_fit_mean", "image", "processing_parameters", "width", "height"):
        assert key in data, key
    assert 0 < data["x_center_of_mass"].value < 200
    assert json.loads(data["processing_parameters"].value)["camera_name"] == "sim"
    info = pipelines.instance_info(instance_id)
    assert info["camera_name"] == "sim" and info["read_only"] is False


async def test_live_config_update_and_validation(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, _ = await pipelines.create_instance({"camera_name": "sim"}, instance_id="sim_sp1")
    await pipelines.set_instance_config(instance_id, {"image_threshold": 17, "image_region_of_interest": [10, 50, 5, 40]})

    def applied() -> bool:
        data = receive(stream)[0].data.data
        params = json.loads(data["processing_parameters"].value)
        return params["image_threshold"] == 17 and data["image"].value.shape == (40, 50)

    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(applied):
        assert time.monotonic() < deadline
    before = pipelines.instance_config(instance_id)
    with pytest.raises(ConfigError):
        await pipelines.set_instance_config(instance_id, {"image_slices": {"number_of_slices": "many"}})
    with pytest.raises(ConfigError, match="Cannot change the camera name"):
        await pipelines.set_instance_config(instance_id, {"camera_name": "other"})
    with pytest.raises(ConfigError, match="Config updates cannot be empty."):
        await pipelines.set_instance_config(instance_id, {})
    assert pipelines.instance_config(instance_id) == before
    with pytest.raises(InstanceError, match="already present and running"):
        await pipelines.create_instance({"camera_name": "sim"}, instance_id="sim_sp1")


async def test_shared_instance_is_read_only(managers) -> None:
    _cameras, pipelines, _ = managers
    stream = await pipelines.get_instance_stream("sim_sp")
    assert await pipelines.get_instance_stream("sim_sp") == stream
    with pytest.raises(ReadOnlyError, match="Cannot set config on a read only instance."):
        await pipelines.set_instance_config("sim_sp", {"image_threshold": 3})
    with pytest.raises(NotFoundError, match="is not present on server and it is not a saved pipeline name"):
        await pipelines.get_instance_stream("nothing_here")
    same_id, same_stream, _ = await pipelines.get_instance_stream_from_config({"camera_name": "sim"})
    again_id, again_stream, _ = await pipelines.get_instance_stream_from_config({"camera_name": "sim"})
    assert (same_id, same_stream) == (again_id, again_stream)


async def test_background_collect_and_enable(managers) -> None:
    _cameras, pipelines, _ = managers
    background_id = await pipelines.collect_background("sim", 3)
    assert background_id.startswith("sim_") and pipelines.latest_background("sim") == background_id
    assert pipelines.background_ids("sim") == [background_id]
    background = await pipelines.get_background(background_id)
    assert background.dtype == np.uint16 and background.shape == (150, 200)
    instance_id, stream, _ = await pipelines.create_instance(
        {"camera_name": "sim", "image_background_enable": True, "image_background": background_id})
    data = (await asyncio.to_thread(receive, stream))[0].data.data
    params = json.loads(data["processing_parameters"].value)
    assert params["image_background"] == background_id and params.get("image_background_ok", True)
    with pytest.raises(ConfigError):
        await pipelines.collect_background("sim", 0)


async def test_file_output_records_100_frames(managers) -> None:
    _cameras, pipelines, tmp_path = managers
    path = tmp_path / "out" / "frames.h5"
    instance_id, _stream, _ = await pipelines.create_instance(
        {"camera_name": "sim", "mode": "FILE", "file": str(path), "records": 100})
    deadline = time.monotonic() + 30
    while pipelines.exit_code(instance_id) is None:
        assert time.monotonic() < deadline, "FILE pipeline did not complete"
        await asyncio.sleep(0.1)
    assert pipelines.exit_code(instance_id) == 0
    with h5py.File(path, "r") as f:  # cam_server's DEFAULT layout
        assert f["header1/pulse_id"].shape == (100,) and f["header1/pulse_id"].dtype == np.uint64
        assert f["data1/x_center_of_mass/value"].shape == (100,)
        assert f["data1/image/value"].shape == (100, 150, 200)
        pulse_ids = f["header1/pulse_id"][:].astype(np.int64)
        assert np.all(np.diff(pulse_ids) > 0)


async def test_store_fanout_fanin_chain(managers) -> None:
    _cameras, pipelines, _ = managers
    _, fanin_stream, _ = await pipelines.create_instance({"pipeline_type": "fanin", "pid_buffer": 5},
                                                          instance_id="fanin")
    _, fanout_stream, cfg = await pipelines.create_instance({"pipeline_type": "fanout", "camera_name": "sim"},
                                                            instance_id="fanout")
    assert "mode" not in cfg  # clients see cam_server's view; the effective mode is the default PUSH
    assert pipelines.status("fanout").config["mode"] == "PUSH"
    for worker in ("w1", "w2"):
        await pipelines.create_instance({"camera_name": "sim", "input_pipeline": "fanout",
                                         "output_pipeline": "fanin"}, instance_id=worker)
    messages = await asyncio.to_thread(receive, fanin_stream, 10)
    pulse_ids = [m.data.pulse_id for m in messages]
    assert pulse_ids == sorted(pulse_ids)
    assert "x_center_of_mass" in messages[-1].data.data


async def test_processing_error_is_reported_not_fatal(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, _ = await pipelines.create_instance(
        {"camera_name": "sim", "image_background_enable": True, "image_background": "sim_19990101_000000_000000"},
        instance_id="sim_sp2")  # _sp: notify_on_error -> zero image + processing_error
    data = (await asyncio.to_thread(receive, stream))[0].data.data
    params = json.loads(data["processing_parameters"].value)
    assert params.get("processing_error")
    assert not np.any(data["image"].value)
    assert instance_id in pipelines.active_instances()


async def test_per_frame_controls(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, _ = await pipelines.create_instance(
        {"camera_name": "sim", "include": ["x_center_of_mass", "intensity", "processing_parameters"],
         "downsampling": 5})
    messages = await asyncio.to_thread(receive, stream, 4)
    assert set(messages[-1].data.data) == {"x_center_of_mass", "intensity", "processing_parameters"}
    steps = np.diff([m.data.pulse_id for m in messages])
    assert np.all(steps % 5 == 0) and np.all(steps > 0), steps  # one frame in five
    await pipelines.set_instance_config(instance_id, {"paused": True})
    await asyncio.sleep(0.5)  # let frames in flight drain
    deadline = time.monotonic() + 5
    while pipelines.status(instance_id).config.get("paused") is not True:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    count = pipelines.status(instance_id).frame_count
    await asyncio.sleep(1.5)
    assert pipelines.status(instance_id).frame_count - count <= 1  # at most one frame was in flight
    await pipelines.set_instance_config(instance_id, {"paused": False, "exclude": ["intensity"], "include": None})
    data = (await asyncio.to_thread(receive, stream, 3))[-1].data.data
    assert "intensity" not in data and "x_rms" in data


async def test_pid_range_completes_instance(managers) -> None:
    _cameras, pipelines, _ = managers
    stream = await _cameras.get_stream("sim")
    first = (await asyncio.to_thread(receive, stream))[0].data.pulse_id
    instance_id, _stream, _ = await pipelines.create_instance(
        {"camera_name": "sim", "pid_range": [first + 20, first + 30]})
    deadline = time.monotonic() + 20
    while pipelines.exit_code(instance_id) is None:
        assert time.monotonic() < deadline, "pid_range end did not complete the instance"
        await asyncio.sleep(0.1)
    assert pipelines.exit_code(instance_id) == 0
    with pytest.raises(NotFoundError):
        pipelines.instance_config(instance_id)  # stopped instances are deleted


async def test_camera_restart_is_followed(managers) -> None:
    cameras, pipelines, _ = managers
    instance_id, stream, _ = await pipelines.create_instance({"camera_name": "sim", "camera_timeout": 1.0})
    await asyncio.to_thread(receive, stream, 2)
    await cameras.stop("sim")  # the pipeline sees no frames, re-requests the camera after camera_timeout
    messages = await asyncio.to_thread(receive, stream, 3, 30.0)
    assert messages and "sim" in cameras.active_instances()


async def test_stream_pipeline_with_user_function(managers) -> None:
    cameras, pipelines, tmp_path = managers
    scripts = tmp_path / "user_scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "double_width.py").write_text(
        "def process(stream_data, pulse_id, timestamp, parameters):\n"
        "    return {'double_width': int(stream_data['width']) * 2, 'pid': pulse_id}\n")
    camera_stream = await cameras.get_stream("sim")
    _id, stream, _ = await pipelines.create_instance(
        {"pipeline_type": "stream", "bsread_address": camera_stream, "bsread_mode": "SUB",
         "function": "double_width"})
    data = (await asyncio.to_thread(receive, stream))[0].data.data
    assert int(data["double_width"].value) == 400


async def test_custom_processing_function(managers) -> None:
    _cameras, pipelines, tmp_path = managers
    scripts = tmp_path / "user_scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "peak.py").write_text(
        "import numpy as np\n"
        "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n"
        "    return {'peak': float(np.max(image)), 'image': image}\n")
    instance_id, stream, _ = await pipelines.create_instance({"camera_name": "sim", "function": "peak.py"})
    data = (await asyncio.to_thread(receive, stream))[0].data.data
    assert float(data["peak"].value) == float(np.max(data["image"].value))
    deadline = time.monotonic() + 5
    while "peak" not in pipelines.status(instance_id).results:
        assert time.monotonic() < deadline, "user scalar not reported to the control process"
        await asyncio.sleep(0.05)


async def test_processing_threads_keep_frame_order(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, config = await pipelines.create_instance(
        {"camera_name": "sim", "processing_threads": 2, "image_good_region": {}, "image_slices": {"number_of_slices": 3}})
    assert config["processing_threads"] == 2
    messages = await asyncio.to_thread(receive, stream, 20)
    pulse_ids = [m.data.pulse_id for m in messages]
    assert pulse_ids == sorted(pulse_ids) and len(set(pulse_ids)) == len(pulse_ids)
    assert "slice_1_center_x" in messages[-1].data.data
    await pipelines.set_instance_config(instance_id, {"image_threshold": 9})

    def applied() -> bool:
        data = receive(stream)[0].data.data
        return json.loads(data["processing_parameters"].value)["image_threshold"] == 9

    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(applied):
        assert time.monotonic() < deadline


async def test_store_pipeline_pushes_raw_camera_frames(managers) -> None:
    _cameras, pipelines, _ = managers
    instance_id, stream, config = await pipelines.create_instance({"pipeline_type": "store", "camera_name": "sim"})
    assert config == {"pipeline_type": "store", "camera_name": "sim"}
    effective = pipelines.status(instance_id).config
    assert effective["mode"] == "PUSH" and effective["block"] is True
    messages = await asyncio.to_thread(receive, stream, 3, 20.0, bsread.PULL)
    data = messages[-1].data.data
    assert set(data) == {"sim:FPICTURE"}  # cam_server: the image only, named <camera>:FPICTURE
    assert data["sim:FPICTURE"].value.shape == (150, 200) and data["sim:FPICTURE"].value.dtype == np.uint16
    pulse_ids = [m.data.pulse_id for m in messages]
    assert pulse_ids == sorted(pulse_ids)


async def test_max_frame_rate_and_output_stream(managers) -> None:
    import zmq

    _cameras, pipelines, _ = managers
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    try:
        await pipelines.create_instance({"camera_name": "sim", "max_frame_rate": 5.0, "mode": "PUSH",
                                         "output_stream": f"tcp://127.0.0.1:{port}"})

        def arrival_times(count: int) -> list[float]:
            times = []
            poller = zmq.Poller()
            poller.register(pull, zmq.POLLIN)
            deadline = time.monotonic() + 20
            while len(times) < count:
                assert time.monotonic() < deadline, "output_stream received nothing"
                if poller.poll(200):
                    pull.recv_multipart()
                    times.append(time.monotonic())
            return times

        times = await asyncio.to_thread(arrival_times, 8)
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert rate < 7.0, f"max_frame_rate 5 Hz exceeded: {rate:.1f} Hz from a 50 Hz camera"
    finally:
        pull.close(linger=0)
        context.term()
