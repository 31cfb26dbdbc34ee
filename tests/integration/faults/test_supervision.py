"""Supervised workers, through a real camioc process, REST and CA: a worker that dies stays visible
with its reason until deleted, a stuck one is marked stalled, one over its memory limit is stopped.

The server runs with a short ``--stall-timeout`` and a ``--worker-memory-limit`` so that each fault
shows within seconds; every check polls with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import epics
import pytest

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

ENDLESS = """
def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    while True:  # never returns: the worker sends nothing any more
        pass
"""

LEAK = """
import numpy as np
_kept = []

def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    _kept.append(np.ones(64 * 2**20 // 8))  # 64 MiB a frame, never freed
    return {"kept": len(_kept)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    import shutil

    folder = tmp_path_factory.mktemp("supervision")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    (base / "user_scripts" / "endless.py").write_text(ENDLESS)
    (base / "user_scripts" / "leak.py").write_text(LEAK)
    running = start_camioc(base, folder / "camioc.log",
                           ["--stall-timeout", "3", "--worker-memory-limit", "600M"])
    try:
        yield running
    finally:
        stop_camioc(running)


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def _create(server: CamiocServer, instance_id: str, config: dict) -> None:
    answer = _call(f"{server.pipeline_url}/api/v1/pipeline?instance_id={instance_id}", "POST", config)
    assert answer["state"] == "ok", answer


def _info(server: CamiocServer, instance_id: str) -> dict:
    return _call(f"{server.pipeline_url}/api/v1/pipeline/instance/{instance_id}/info")


def _listed(server: CamiocServer) -> dict:
    return _call(f"{server.pipeline_url}/api/v1/pipeline/info")["info"]["active_instances"]


def _ca_message(server: CamiocServer, instance_id: str) -> str:
    return str(epics.caget(f"{server.prefix}{instance_id}:StatusMessage_RBV", as_string=True, timeout=2) or "")


def _ca_state(server: CamiocServer, instance_id: str) -> str:
    return str(epics.caget(f"{server.prefix}{instance_id}:DetectorState_RBV", as_string=True, timeout=2) or "")


def test_a_killed_worker_stays_visible_with_its_reason_until_deleted(server: CamiocServer) -> None:
    _create(server, "sv_kill", {"camera_name": "simulation"})
    wait_until(lambda: _info(server, "sv_kill")["info"]["statistics"]["pid"], what="worker pid")
    pid = int(_info(server, "sv_kill")["info"]["statistics"]["pid"])
    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: not _info(server, "sv_kill")["info"]["is_stream_active"], what="death seen")
    info = _info(server, "sv_kill")["info"]
    assert info["state"] == "Error"
    assert "killed by SIGKILL" in info["error"], info
    assert "sv_kill" in _listed(server)  # still in the instance list, no longer active
    assert _listed(server)["sv_kill"]["is_stream_active"] is False
    wait_until(lambda: "SIGKILL" in _ca_message(server, "sv_kill"), what="reason on StatusMessage_RBV")
    assert _ca_state(server, "sv_kill") == "Error"
    assert "killed by SIGKILL" in (Path(server.base).parent / "camioc.log").read_text()

    answer = _call(f"{server.pipeline_url}/api/v1/pipeline/sv_kill", "DELETE")
    assert answer["state"] == "ok", answer
    assert "sv_kill" not in _listed(server)
    assert _info(server, "sv_kill")["state"] == "error"


def test_a_restart_clears_the_death(server: CamiocServer) -> None:
    _create(server, "sv_again", {"camera_name": "simulation"})
    wait_until(lambda: _info(server, "sv_again")["info"]["statistics"]["pid"], what="worker pid")
    os.kill(int(_info(server, "sv_again")["info"]["statistics"]["pid"]), signal.SIGKILL)
    wait_until(lambda: _info(server, "sv_again")["info"].get("state") == "Error", what="death seen")
    _create(server, "sv_again", {"camera_name": "simulation"})  # the same id starts anew
    info = _info(server, "sv_again")["info"]
    assert info["is_stream_active"] is True and "state" not in info
    _call(f"{server.pipeline_url}/api/v1/pipeline/sv_again", "DELETE")


def test_an_endless_user_function_is_marked_stalled(server: CamiocServer) -> None:
    _create(server, "sv_stall", {"camera_name": "simulation", "function": "endless.py"})
    wait_until(lambda: "Stalled" in _ca_message(server, "sv_stall"), timeout=30, what="stall on StatusMessage_RBV")
    assert _ca_state(server, "sv_stall") == "Error"
    info = _info(server, "sv_stall")["info"]
    assert info["is_stream_active"] is True  # marked, not stopped (--stall-action mark)
    status = _call(f"{server.pipeline_url}/api/v1/pipeline/sv_stall", "DELETE")
    assert status["state"] == "ok", status
    wait_until(lambda: "sv_stall" not in _listed(server), what="stalled instance stopped on delete")


def test_a_worker_over_its_memory_limit_is_stopped_with_the_figures(server: CamiocServer) -> None:
    _create(server, "sv_leak", {"camera_name": "simulation", "function": "leak.py"})
    wait_until(lambda: _info(server, "sv_leak")["info"].get("state") == "Error", timeout=30, what="memory stop")
    info = _info(server, "sv_leak")["info"]
    assert info["is_stream_active"] is False
    assert "exceeded the limit of 600 MiB" in info["error"], info
    wait_until(lambda: "exceeded the limit" in _ca_message(server, "sv_leak"), what="reason over CA")
    _call(f"{server.pipeline_url}/api/v1/pipeline/sv_leak", "DELETE")
    assert "sv_leak" not in _listed(server)


def test_workers_run_nicer_than_the_control_process(server: CamiocServer) -> None:
    """--worker-nice (default 5): every thread of a worker, those it starts later included, so a
    caget is answered at once when processing takes every core."""
    from camioc.core.instances import DEFAULT_WORKER_NICE

    _create(server, "sv_nice", {"camera_name": "simulation"})
    wait_until(lambda: _info(server, "sv_nice")["info"]["statistics"]["pid"], what="worker pid")
    pid = int(_info(server, "sv_nice")["info"]["statistics"]["pid"])
    control = os.getpriority(os.PRIO_PROCESS, server.proc.pid)
    assert control == os.getpriority(os.PRIO_PROCESS, 0)  # the control process keeps the priority it got
    target = min(19, control + DEFAULT_WORKER_NICE)

    def niceness() -> dict[int, int]:
        return {int(tid): os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}

    # the pid is on REST as soon as the worker started; its threads are niced right after
    wait_until(lambda: set(niceness().values()) == {target}, timeout=10, what=f"every worker thread at nice {target}")
    assert len(niceness()) > 1  # zmq and processing threads, not only the main one
