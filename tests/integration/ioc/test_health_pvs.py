"""iocStats-like health PVs on a real camioc, read over CA (pyepics) and PVA (p4p).

The service's ``IOC_CPU_LOAD``/``MEM_*``/``CPU_CNT`` describe the camioc process; a camera's and
a pipeline's ``Worker*_RBV`` describe its worker process, the same one REST's statistics name
(``pid``), and its memory is what the kernel says (``/proc/<pid>/status`` VmRSS).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cam_server_client import CamClient, PipelineClient
from p4p.client.thread import Context

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI

INVALID = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    """camioc whose simulation camera and pipeline never stop for want of clients."""
    folder = tmp_path_factory.mktemp("health")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    for path in (base / "camera_config" / "simulation.json", base / "pipeline_config" / "simulation_sp.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "no_client_timeout": 0}))
    camioc = start_camioc(base, folder / "camioc.log")
    try:
        yield camioc
    finally:
        stop_camioc(camioc)


@pytest.fixture(scope="module")
def pva(server: CamiocServer) -> Iterator[Context]:
    context = Context("pva", conf=server.pva_conf(), useenv=False)
    try:
        yield context
    finally:
        context.close()


def vm_rss(pid: int) -> int:
    """The resident memory of ``pid`` in bytes, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def ca_read(name: str) -> dict[str, Any]:
    """Value and severity over CA, read from the server (not a cached monitor)."""
    data = epics.get_pv(name, form="time").get_with_metadata(use_monitor=False, form="time", timeout=5)
    assert data is not None, f"no CA answer from {name}"
    return data


def test_service_health_over_ca_and_pva(server: CamiocServer, pva: Context) -> None:
    p = server.prefix
    import psutil

    wait_until(lambda: ca_read(f"{p}MEM_USED")["value"] > 0, what="the first health update")
    assert ca_read(f"{p}CPU_CNT")["value"] == (psutil.cpu_count() or 1)
    cpu = ca_read(f"{p}IOC_CPU_LOAD")["value"]
    assert 0.0 <= cpu <= 100.0
    used = ca_read(f"{p}MEM_USED")["value"]
    assert used > 10e6
    assert abs(used - vm_rss(server.proc.pid)) <= 0.2 * vm_rss(server.proc.pid)
    total = ca_read(f"{p}MEM_MAX")["value"]
    assert total == psutil.virtual_memory().total
    assert 0 < ca_read(f"{p}MEM_FREE")["value"] < total
    assert pva.get(f"{p}MEM_MAX", timeout=5) == total
    assert pva.get(f"{p}CPU_CNT", timeout=5) == ca_read(f"{p}CPU_CNT")["value"]
    assert pva.get(f"{p}MEM_USED", timeout=5).raw.display.units == "byte"
    assert abs(pva.get(f"{p}MEM_USED", timeout=5) - vm_rss(server.proc.pid)) <= 0.2 * vm_rss(server.proc.pid)


def _close_to_rss(measured: float, pid: int) -> bool:
    rss = vm_rss(pid)
    return abs(measured - rss) <= 0.2 * rss


def _check_worker(prefix: str, pid: int, pva: Context) -> None:
    """The worker PVs under ``prefix`` describe process ``pid``, over CA and PVA."""
    wait_until(lambda: ca_read(f"{prefix}WorkerPid_RBV")["value"] == pid, timeout=10, what=f"{prefix}WorkerPid_RBV")
    memory = ca_read(f"{prefix}WorkerMemory_RBV")
    assert memory["severity"] == 0
    assert memory["value"] > 10e6
    # a measurement up to a second old, of a worker still growing as it warms up: poll until they agree
    wait_until(lambda: _close_to_rss(ca_read(f"{prefix}WorkerMemory_RBV")["value"], pid), timeout=15,
               what=f"{prefix}WorkerMemory_RBV within 20 % of VmRSS")
    cpu = ca_read(f"{prefix}WorkerCpu_RBV")["value"]
    assert 0.0 <= cpu <= 100.0 * (os.cpu_count() or 1)
    first = ca_read(f"{prefix}WorkerUptime_RBV")["value"]
    wait_until(lambda: ca_read(f"{prefix}WorkerUptime_RBV")["value"] >= first + 1, timeout=10, what="uptime increases")
    over_pva = pva.get(f"{prefix}WorkerPid_RBV", timeout=5)
    assert over_pva == pid and over_pva.severity == 0
    wait_until(lambda: _close_to_rss(pva.get(f"{prefix}WorkerMemory_RBV", timeout=5), pid), timeout=15,
               what="WorkerMemory_RBV over PVA within 20 % of VmRSS")


def test_worker_health_of_camera_and_pipeline(server: CamiocServer, pva: Context) -> None:
    p = server.prefix
    camera, pipeline = f"{p}simulation:cam1:", f"{p}simulation_sp:"
    # no worker yet: INVALID, pid 0 (over both protocols)
    wait_until(lambda: ca_read(f"{pipeline}WorkerPid_RBV")["severity"] == INVALID, what="INVALID without a worker")
    assert ca_read(f"{pipeline}WorkerPid_RBV")["value"] == 0
    assert pva.get(f"{camera}WorkerMemory_RBV", timeout=5).severity == INVALID

    assert epics.caput(f"{pipeline}EnableCallbacks", 1, wait=True, timeout=30) == 1
    pipes = PipelineClient(server.pipeline_url)
    pipeline_pid = int(wait_until(lambda: pipes.get_instance_info("simulation_sp")["statistics"]["pid"],
                                  timeout=30, what="the pipeline's pid on REST"))
    cams = CamClient(server.camera_url)
    camera_pid = int(wait_until(
        lambda: cams.get_server_info()["active_instances"].get("simulation", {}).get("statistics", {}).get("pid"),
        timeout=30, what="the camera's pid on REST"))
    assert camera_pid != pipeline_pid
    _check_worker(pipeline, pipeline_pid, pva)
    _check_worker(camera, camera_pid, pva)
    # REST statistics show the same measurement's memory (one place measures)
    wait_until(lambda: _close_to_rss(float(pipes.get_instance_info("simulation_sp")["statistics"]["memory"]),
                                     pipeline_pid), timeout=15, what="REST statistics memory within 20 % of VmRSS")

    assert epics.caput(f"{pipeline}EnableCallbacks", 0, wait=True, timeout=30) == 1
    wait_until(lambda: ca_read(f"{pipeline}WorkerPid_RBV")["severity"] == INVALID, timeout=15, what="INVALID after stop")
    assert ca_read(f"{pipeline}WorkerPid_RBV")["value"] == 0
    assert pva.get(f"{pipeline}WorkerCpu_RBV", timeout=5).severity == INVALID
