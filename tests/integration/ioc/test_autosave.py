"""Autosave: settings made by ``caput`` on saved cameras and pipelines survive a restart.

A real camioc, pyepics' caput, then the server is stopped and started again on the same
configuration folder: the setpoints and readbacks show the values written. A private
instance's settings are not saved (the instance and its PVs are gone after the restart, and no
config file was written for it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import requests

from tests.support.server import TEST_CONFIGS, start_camioc, stop_camioc
from tests.support.waiting import wait_until

#: (PV suffix, value written): camera settings, a saved pipeline's plain setting and its ROI section
WRITES = [
    ("simulation2:cam1:ReverseX", 1),
    ("simulation2:cam1:BinY", 2),
    ("simulation2:cam1:Rotate", 1),
    ("simulation_sp:CentroidThreshold", 7),
    ("simulation_sp:ROI:MinX", 10),
    ("simulation_sp:ROI:SizeX", 100),
    ("simulation_sp:ROI:MinY", 20),
    ("simulation_sp:ROI:SizeY", 50),
    ("simulation_sp:ROI:Enable", 1),
]


def test_caput_settings_survive_a_restart(tmp_path: Path, epics_ca, ca_repeater, beacon_sink) -> None:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, tmp_path / "first.log")
    try:
        p = server.prefix
        for suffix, value in WRITES:
            assert epics_ca.caput(p + suffix, value, wait=True, timeout=10) == 1, suffix
        assert epics_ca.caget(p + "simulation_sp:CentroidThreshold_RBV", timeout=5) == 7
        # a private instance: its setting changes the running instance only
        answer = requests.post(
            f"{server.pipeline_url}/api/v1/pipeline?instance_id=mine",
            json={"camera_name": "simulation2", "image_threshold": 3},
            timeout=60,
        ).json()
        assert answer["state"] == "ok", answer
        private = p + "mine:CentroidThreshold"
        assert epics_ca.caput(private, 4, wait=True, timeout=10) == 1
        assert wait_until(lambda: epics_ca.caget(private + "_RBV", timeout=5, use_monitor=False) == 4, what="the private setting")
    finally:
        stop_camioc(server)
    saved = sorted(path.name for path in (base / "pipeline_config").iterdir())
    assert saved == ["simulation_sp.json"]  # nothing was saved for the private instance
    pipeline = json.loads((base / "pipeline_config" / "simulation_sp.json").read_text())
    assert pipeline["image_threshold"] == 7 and pipeline["image_region_of_interest"] == [10, 100, 20, 50]

    server = start_camioc(base, tmp_path / "second.log")
    try:
        p = server.prefix
        for suffix, value in WRITES:
            assert epics_ca.caget(p + suffix, timeout=10) == value, suffix
        assert epics_ca.caget(p + "simulation2:cam1:BinY_RBV", timeout=5) == 2
        assert epics_ca.caget(p + "simulation_sp:ROI:SizeY_RBV", timeout=5) == 50
        assert epics_ca.caget(p + "mine:CentroidThreshold", timeout=2) is None  # no such PV any more
    finally:
        stop_camioc(server)
