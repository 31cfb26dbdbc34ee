"""No process outlives camioc: SIGKILL of the main process takes every worker with it."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

from support.server import running_camioc

ORPHAN_DEADLINE = 15.0


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: children of every thread, recursively)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


ENDLESS = """
def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    while True:  # a user function that never returns: its worker never reads a command again
        pass
"""


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _busy(pid: int) -> bool:
    """Whether ``pid`` used CPU time during the last 0.3 s."""
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    try:
        before = ticks()
        time.sleep(0.3)
        return ticks() > before
    except OSError:
        return False


def test_sigkill_of_the_main_process_leaves_no_orphan(tmp_path):
    with running_camioc(tmp_path) as server:
        (server.base / "user_scripts" / "endless.py").write_text(ENDLESS)
        with urllib.request.urlopen(f"{server.camera_url}/api/v1/cam/simulation", timeout=30) as response:
            assert json.load(response)["state"] == "ok"
        answer = _post(f"{server.pipeline_url}/api/v1/pipeline/instance/",
                       {"camera_name": "simulation", "function": "endless.py"})
        assert answer["state"] == "ok", answer
        deadline = time.monotonic() + 30
        # fork server, camera worker and a pipeline worker stuck in the user function
        while not any(_busy(pid) for pid in descendants(server.proc.pid)):
            assert time.monotonic() < deadline, "no worker is running the endless function"
        children = descendants(server.proc.pid)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        deadline = time.monotonic() + ORPHAN_DEADLINE
        while (left := {pid for pid in children if alive(pid)}):
            if time.monotonic() > deadline:
                commands = {pid: _command(pid) for pid in sorted(left)}
                for pid in left:
                    os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"processes outlived the killed server: {commands}")
            time.sleep(0.2)


def test_sigterm_returns_only_when_every_child_is_gone(tmp_path):
    """After SIGTERM, the main process exits last: workers, fork server and resource tracker are
    already gone when it does (checked at once, no grace period)."""
    with running_camioc(tmp_path) as server:
        with urllib.request.urlopen(f"{server.camera_url}/api/v1/cam/simulation", timeout=30) as response:
            assert json.load(response)["state"] == "ok"
        answer = _post(f"{server.pipeline_url}/api/v1/pipeline/instance/", {"camera_name": "simulation"})
        assert answer["state"] == "ok", answer
        children = descendants(server.proc.pid)
        assert len(children) >= 3, children  # fork server, resource tracker, camera and pipeline workers
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(30) == 0
        left = {pid: _command(pid) for pid in sorted(children) if alive(pid)}
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes outlived the SIGTERM'd server: {left}"
