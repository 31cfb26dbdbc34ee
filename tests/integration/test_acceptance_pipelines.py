"""Issue 4's 'done when': the newcomer's flow from the README, against a real ``camioc`` process.

Create a pipeline on the simulation camera from Python, read ``x_center_of_mass`` from its stream,
collect a background and enable it, change the threshold with a caput and see it in the stream's
``processing_parameters`` and in the result PVs, and record 100 frames to HDF5.
"""

from __future__ import annotations

import json
import threading
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
    wait_until(lambda: epics.caget(f"{p}simulation_sp1:CentroidThreshold_RBV", timeout=2, use_monitor=False) == 20, what="RBV")
    # CentroidX_RBV is the x_center_of_mass of the frame whose pulse id UniqueId_RBV shows
    streamed: dict[int, float] = {}
    collector = threading.Thread(target=lambda: streamed.update(
        {m.data.pulse_id: float(m.data.data["x_center_of_mass"].value) for m in receive(stream, 30)}))
    collector.start()

    uid_pv = epics.PV(f"{p}simulation_sp1:UniqueId_RBV", form="time")
    centroid_pv = epics.PV(f"{p}simulation_sp1:CentroidX_RBV", form="time")

    def ca_pair():
        """(pulse id, centroid) read from CA, paired by their (frame) timestamps."""
        uid = uid_pv.get_with_metadata(timeout=2, use_monitor=False)
        centroid = centroid_pv.get_with_metadata(timeout=2, use_monitor=False)
        if uid and centroid and uid["timestamp"] == centroid["timestamp"]:
            return int(uid["value"]), centroid["value"]
        return None

    pairs = []
    while collector.is_alive():  # sample CA while the stream is being collected (3 s at 10 Hz)
        pairs.append(wait_until(ca_pair, what="a consistent pulse id / centroid pair"))
        collector.join(0.2)
    # (with the beam's own average subtracted some frames have no centroid: NaN, shown as INVALID
    # with the last value kept on CA; compare the frames that have one)
    matched = [(pid, centroid) for pid, centroid in pairs if pid in streamed and np.isfinite(streamed[pid])]
    assert matched, f"no CA pulse id {[pid for pid, _ in pairs]} among the streamed {sorted(streamed)[:3]}..."
    for pid, centroid in matched:
        assert centroid == streamed[pid]

    # record 100 frames to HDF5 with a FILE pipeline
    path = tmp_path / "recording.h5"
    recorder, _ = client.create_instance_from_config(
        {"camera_name": "simulation", "mode": "FILE", "file": str(path), "records": 100})
    client.wait_instance_completed(recorder, timeout=60)
    assert client.get_instance_exit_code(recorder) == 0
    with h5py.File(path, "r") as f:  # cam_server's DEFAULT layout
        assert f["header1/pulse_id"].shape == (100,)
        assert f["data1/x_center_of_mass/value"].shape == (100,)
        images = f["data1/image/value"]
        assert images.shape[0] == 100 and images.dtype == np.uint16
