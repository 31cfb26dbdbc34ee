"""Issue 4's 'done when': the newcomer's flow from the README, against a real ``camioc`` process.

Create a pipeline on the simulation camera from Python, read ``x_center_of_mass`` from its stream,
collect a background and enable it, change the threshold with a caput and see it in the stream's
``processing_parameters`` and in the result PVs, and record 100 frames to HDF5.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import bsread
import h5py
import numpy as np
from cam_server_client import PipelineClient
from cam_server_client.utils import get_host_port_from_stream_address

import epics


def receive(stream: str, count: int = 1, timeout: float = 20.0) -> list:
    host, port = get_host_port_from_stream_address(stream)
    out = []
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as source:
        while len(out) < count:
            assert time.monotonic() < deadline, f"only {len(out)} of {count} messages within {timeout} s"
            message = source.receive()
            if message is not None:
                out.append(message)
    return out


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_newcomer_pipeline_flow(camioc_server, tmp_path: Path) -> None:
    client = PipelineClient(camioc_server.pipeline_url)
    p = camioc_server.prefix

    # a private pipeline on the simulation camera, created from Python
    instance_id, stream = client.create_instance_from_config({"camera_name": "simulation"}, "simulation_sp1")
    data = receive(stream)[0].data.data
    x_center = float(data["x_center_of_mass"].value)
    assert 0 < x_center < int(data["width"].value)

    # collect a background and enable it
    background_id = client.collect_background("simulation", 5)
    assert background_id == client.get_latest_background("simulation")
    client.set_instance_config(instance_id, {"image_background_enable": True, "image_background": background_id})
    wait_until(lambda: json.loads(receive(stream)[0].data.data["processing_parameters"].value)
               .get("image_background") == background_id, what="background in processing_parameters")

    # change the threshold with a caput: stream and result PVs follow
    assert epics.caput(f"{p}simulation_sp1:CentroidThreshold", 20, wait=True, timeout=5) == 1
    wait_until(lambda: json.loads(receive(stream)[0].data.data["processing_parameters"].value)
               .get("image_threshold") == 20, what="threshold in processing_parameters")
    assert client.get_instance_config(instance_id)["image_threshold"] == 20
    wait_until(lambda: epics.caget(f"{p}simulation_sp1:CentroidThreshold_RBV", timeout=2) == 20, what="RBV")
    streamed = float(receive(stream)[0].data.data["x_center_of_mass"].value)
    centroid = wait_until(lambda: epics.caget(f"{p}simulation_sp1:CentroidX_RBV", timeout=2), what="CentroidX")
    assert abs(centroid - streamed) < 50  # the same beam (it jitters between frames)

    # record 100 frames to HDF5 with a FILE pipeline
    path = tmp_path / "recording.h5"
    recorder, _ = client.create_instance_from_config(
        {"camera_name": "simulation", "mode": "FILE", "file": str(path), "records": 100})
    client.wait_instance_completed(recorder, timeout=60)
    assert client.get_instance_exit_code(recorder) == 0
    with h5py.File(path, "r") as f:
        assert f["pulse_id"].shape == (100,)
        assert f["x_center_of_mass/data"].shape[0] == 100
        images = f["image/data"]
        assert images.shape[0] == 100 and images.dtype == np.uint16
