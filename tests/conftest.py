"""Session-wide test set-up shared by every test module.

EPICS: libca (pyepics, the C tools) reads its environment once per process, so the CA ports are
chosen once per session, before anything imports epics. Two server ports are reserved:
``CAMIOC_TEST_CA_PORT`` for camioc's own IOC and ``CAMIOC_TEST_CA_PORT2`` for auxiliary test IOCs
(e.g. an areaDetector-style camera), because two caproto servers on one UDP port split unicast
searches between them. Clients search both (EPICS_CA_ADDR_LIST). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a port free for both TCP and UDP on 127.0.0.1 (best effort, no reservation)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def _configure_epics_environment() -> None:
    camioc_port = free_port()
    aux_port = free_port()
    env = {
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{camioc_port} 127.0.0.1:{aux_port}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(camioc_port),
        "EPICS_CAS_SERVER_PORT": str(camioc_port),
        "EPICS_CA_REPEATER_PORT": str(free_port()),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_PORT": str(free_port()),
        "EPICS_CA_MAX_ARRAY_BYTES": str(100_000_000),
        "CAMIOC_TEST_CA_PORT": str(camioc_port),
        "CAMIOC_TEST_CA_PORT2": str(aux_port),
        "CAPROTO_SERVER_MAX_LATENCY_SEC": "0.02",
        "CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC": "0.001",
    }
    os.environ.update(env)


def pytest_configure(config: pytest.Config) -> None:
    if "epics" in sys.modules:
        raise RuntimeError("pyepics was imported before the test EPICS environment was set")
    _configure_epics_environment()


@pytest.fixture
def pv_prefix() -> str:
    """A random PV prefix, so that no two tests (or test runs) share PV names."""
    return f"T{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """The read-only reference folder shipped beside the repository (``../shared/reference``).

    CI lays a copy of ``shared/`` beside the clone; ``CAMIOC_SHARED`` overrides the location.
    Missing data is an error, not a skip: the compatibility tests must run.
    """
    base = Path(os.environ.get("CAMIOC_SHARED", REPO_ROOT.parent / "shared"))
    reference = base / "reference"
    if not (reference / "camserver-fixtures").is_dir():
        raise RuntimeError(
            f"cam_server fixtures not found under {reference}; set CAMIOC_SHARED to the shared/ folder"
        )
    return reference


@pytest.fixture(scope="session")
def camserver_fixtures(shared_reference: Path) -> Path:
    """cam_server's own config files and recorded camera stream."""
    return shared_reference / "camserver-fixtures"


# --------------------------------------------------------------------------------------------
# A whole camioc server (IOC + both REST APIs + workers) in a subprocess, as a user runs it.
# --------------------------------------------------------------------------------------------

import dataclasses
import shutil
import subprocess
import time
import urllib.request


@dataclasses.dataclass
class CamiocServer:
    """Handle on a running ``camioc`` subprocess."""

    proc: subprocess.Popen
    base: Path
    prefix: str
    camera_url: str
    pipeline_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stream_port_range() -> str:
    # A random 200-port window in a range no other service here uses.
    import random

    start = random.randrange(30000, 45000, 200)
    return f"{start}:{start + 200}"


def start_camioc(base: Path, log_path: Path, extra_args: list[str] | None = None, timeout: float = 60.0) -> CamiocServer:
    """Start ``python -m camioc`` on ``base`` and wait until its REST APIs answer."""
    camera_port, pipeline_port = free_port(), free_port()
    prefix = f"T{uuid.uuid4().hex[:8]}:"
    args = [
        sys.executable, "-m", "camioc",
        "--base", str(base),
        "--interface", "127.0.0.1",
        "--hostname", "127.0.0.1",
        "--camera-port", str(camera_port),
        "--pipeline-port", str(pipeline_port),
        "--camera-stream-ports", _stream_port_range(),
        "--pipeline-stream-ports", _stream_port_range(),
        "--prefix", prefix,
        "--log-level", "INFO",
        *(extra_args or []),
    ]
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by the OS when the process ends
    proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=REPO_ROOT)
    server = CamiocServer(proc, base, prefix, f"http://127.0.0.1:{camera_port}", f"http://127.0.0.1:{pipeline_port}", log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"camioc exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.camera_url}/api/v1/cam/version", timeout=1) as r:
                if r.status == 200:
                    with urllib.request.urlopen(f"{server.pipeline_url}/api/v1/pipeline/version", timeout=1) as r2:
                        if r2.status == 200:
                            return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_camioc(server)
            raise RuntimeError(f"camioc did not come up within {timeout} s:\n{server.log()}")
        time.sleep(0.1)


def stop_camioc(server: CamiocServer, timeout: float = 20.0) -> int:
    """SIGINT the server (as Ctrl-C does) and wait; kill it if it does not stop in time."""
    import signal

    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)
            raise RuntimeError(f"camioc did not stop within {timeout} s:\n{server.log()}") from None
    return server.proc.returncode


@pytest.fixture
def camioc_base(tmp_path: Path) -> Path:
    """A private copy of the embedded default configuration (``configs/``)."""
    base = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "configs", base)
    return base


@pytest.fixture
def camioc_server(camioc_base: Path, tmp_path: Path):
    """camioc running on a copy of ``configs/`` with random REST ports, stream ports and PV prefix."""
    server = start_camioc(camioc_base, tmp_path / "camioc.log")
    try:
        yield server
    finally:
        stop_camioc(server)
