"""Issue 4's 'done when': the newcomer's flow from the README, against a real ``camioc`` process.

Create a pipeline on the simulation camera from Python, read ``x_center_of_mass`` from its stream,
collect a background and enable it, change the threshold with a caput and see it in the stream's
``processing_parameters`` and in the result PVs, and record 100 frames to HDF5.
"""

from __future__ import annotations

import json
from pathlib import Path

import epics
import h5py
import numpy as np
from cam_server_client import PipelineClient

from tests.support.waiting import receive, wait_until




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
