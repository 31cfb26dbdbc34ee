"""What ``caput <cam>:cam1:Acquire 0`` does while a pipeline reads the camera, as the README says.

The camera stops and is started again at once for the running pipeline (a camera runs as long
as a pipeline reads it, as in cam_server), and the pipeline keeps producing results. With the
pipeline stopped first, ``Acquire 0`` stops the camera and it stays stopped.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca_repeater, beacon_sink) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("acquire")
    shutil.copytree(TEST_CONFIGS, folder / "configs")
    handle = start_camioc(folder / "configs", folder / "camioc.log")
    try:
        yield handle
    finally:
        stop_camioc(handle)


def test_acquire_0_under_a_running_pipeline_restarts_the_camera(server: CamiocServer, epics_ca) -> None:
    p = server.prefix

    def get(suffix: str) -> object:
        return epics_ca.caget(p + suffix, timeout=5, use_monitor=False, as_string=True)

    assert epics_ca.caput(p + "simulation_sp:EnableCallbacks", 1, wait=True, timeout=60) == 1
    wait_until(lambda: get("simulation:cam1:Acquire_RBV") == "Acquiring", timeout=30, what="the camera runs")
    first = wait_until(lambda: int(get("simulation_sp:ArrayCounter_RBV") or 0), timeout=30, what="results")

    assert epics_ca.caput(p + "simulation:cam1:Acquire", 0, wait=True, timeout=30) == 1
    wait_until(lambda: get("simulation:cam1:Acquire_RBV") == "Acquiring", timeout=10, what="the restart")
    wait_until(
        lambda: int(get("simulation_sp:ArrayCounter_RBV") or 0) > first + 5,
        timeout=30,
        what="the pipeline's results after the restart",
    )

    # the pipeline stopped first: Acquire 0 stops the camera, and it stays stopped
    assert epics_ca.caput(p + "simulation_sp:EnableCallbacks", 0, wait=True, timeout=30) == 1
    assert epics_ca.caput(p + "simulation:cam1:Acquire", 0, wait=True, timeout=30) == 1
    wait_until(lambda: get("simulation:cam1:Acquire_RBV") == "Done", timeout=10, what="the camera stopped")
    deadline = time.monotonic() + 3  # watched for 3 s: nothing starts it again
    while time.monotonic() < deadline:
        assert get("simulation:cam1:Acquire_RBV") == "Done"
        time.sleep(0.2)
