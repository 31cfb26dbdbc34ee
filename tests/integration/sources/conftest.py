"""Fixtures for the camera-source integration tests: a caproto camera IOC in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT

IOC_SCRIPT = REPO_ROOT / "tests" / "support" / "epics_camera_ioc.py"
STARTUP_TIMEOUT = 20.0


def _wait_ready(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        text = log.read_text(errors="replace")
        if "READY" in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"camera IOC exited with {proc.returncode}:\n{text}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"camera IOC not ready after {STARTUP_TIMEOUT} s:\n{text}")
        time.sleep(0.02)  # poll interval


@pytest.fixture
def camera_ioc(pv_prefix: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start(convention, *args, width=64, height=48, rate=50)`` -> camera prefix (no ':').

    The IOC serves on the auxiliary CA port (``CAMIOC_TEST_CA_PORT2``) that the test process's
    libca searches; one IOC at a time (two caproto servers on one UDP port split searches).
    """
    procs: list[subprocess.Popen] = []
    prefix = pv_prefix.rstrip(":")
    port = os.environ["CAMIOC_TEST_CA_PORT2"]

    def start(convention: str, *args: str, width: int = 64, height: int = 48, rate: float = 50.0) -> str:
        assert not procs, "one camera IOC per test"
        log = tmp_path / "camera_ioc.log"
        env = dict(os.environ, EPICS_CA_SERVER_PORT=port, EPICS_CAS_SERVER_PORT=port, PYTHONUNBUFFERED="1")
        cmd = [
            sys.executable, str(IOC_SCRIPT), "--prefix", prefix, "--convention", convention,
            "--width", str(width), "--height", str(height), "--rate", str(rate), *args,
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        procs.append(proc)
        _wait_ready(proc, log)
        return prefix

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
