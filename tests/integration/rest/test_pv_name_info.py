"""REST shows each instance's PV name as ``pv_name`` (issue 10); the instance id stays cam_server's
(a UUID for a private instance), and the CA PVs are under the PV name."""

from __future__ import annotations

import epics
import requests
from cam_server_client import PipelineClient

from camioc.model.instance_names import pipeline_pv_name
from camioc.model.pvnames import MAX_PV_NAME_LENGTH, pipeline_pv
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until


def test_a_private_instance_has_a_short_pv_name_in_its_info(pipe: PipelineClient, server: CamiocServer) -> None:
    instance_id, _ = pipe.create_instance_from_config({"camera_name": "simulation"})
    try:
        assert len(instance_id) == 36  # a UUID, as cam_server's clients expect
        info = pipe.get_instance_info(instance_id)
        assert info["pv_name"] == pipeline_pv_name(instance_id) != instance_id
        active = requests.get(f"{server.pipeline_url}/api/v1/pipeline/info", timeout=5).json()["info"]
        assert active["active_instances"][instance_id]["pv_name"] == info["pv_name"]
        pv = pipeline_pv(server.prefix, info["pv_name"], "GoodRegion:FitX:Amplitude_RBV")
        assert len(pipeline_pv("CAMIOC:", info["pv_name"], "GoodRegion:FitX:Amplitude_RBV")) <= MAX_PV_NAME_LENGTH
        port = pipeline_pv(server.prefix, info["pv_name"], "NDArrayPort_RBV")
        assert wait_until(lambda: epics.caget(port, timeout=2, use_monitor=False) == "simulation", timeout=30, what=port)
        assert epics.caget(pv + ".RTYP", timeout=2) == "ai"
    finally:
        pipe.stop_instance(instance_id)
