"""Helpers to run a whole camioc server as a subprocess, as a user runs it."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The configuration folder every test server starts from (copied, never used in place): the
#: shipped defaults, kept with the tests, so that what a user changes in ./configs (the README's
#: examples write there) never changes a test's outcome; a test that runs the shipped ./configs
#: itself says so.
TEST_CONFIGS = REPO_ROOT / "tests" / "support" / "configs"


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


@dataclasses.dataclass
class CamiocServer:
    """Handle on a running ``camioc`` subprocess."""

    proc: subprocess.Popen
    base: Path
    prefix: str
    camera_url: str
    pipeline_url: str
    log_path: Path
    #: the PV Access server's TCP port and UDP search port (free ports of this run)
    pva_port: int = 0
    pva_broadcast_port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pva_conf(self) -> dict[str, str]:
        """A p4p client configuration that finds this server only (``Context('pva', conf=..., useenv=False)``)."""
        return {
            "EPICS_PVA_ADDR_LIST": "127.0.0.1",
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVA_SERVER_PORT": str(self.pva_port),
            "EPICS_PVA_BROADCAST_PORT": str(self.pva_broadcast_port),
        }


def _stream_port_range() -> str:
    # A random 200-port window in a range no other service here uses.
    start = random.randrange(30000, 45000, 200)
    return f"{start}:{start + 200}"


#: The data folder (``--data-dir``) of test servers: the temporary folder every pytest ``tmp_path``
#: lives in, so that tests may record FILE pipelines into their own ``tmp_path``.
TEST_DATA_DIR = Path(tempfile.gettempdir())


def start_camioc(base: Path, log_path: Path, extra_args: list[str] | None = None, timeout: float = 60.0,
                 env_overrides: dict[str, str] | None = None) -> CamiocServer:
    """Start ``python -m camioc`` on ``base`` and wait until its REST APIs answer (``--data-dir``
    :data:`TEST_DATA_DIR` unless ``extra_args`` give one; ``env_overrides`` win over the test environment)."""
    extra_args = list(extra_args or [])
    if "--data-dir" not in extra_args:
        extra_args += ["--data-dir", str(TEST_DATA_DIR)]
    camera_port, pipeline_port = free_port(), free_port()
    pva_port, pva_broadcast_port = free_port(), free_port()
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
    env = dict(os.environ)
    # PV Access on free ports of its own, searched on loopback only (other test servers run beside)
    env.update(EPICS_PVAS_SERVER_PORT=str(pva_port), EPICS_PVAS_BROADCAST_PORT=str(pva_broadcast_port),
               EPICS_PVA_AUTO_ADDR_LIST="NO", EPICS_PVA_ADDR_LIST="127.0.0.1",
               EPICS_PVAS_AUTO_BEACON_ADDR_LIST="NO", EPICS_PVAS_BEACON_ADDR_LIST="127.0.0.1")
    env.update(env_overrides or {})
    proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                            preexec_fn=_end_with_test if threading.current_thread() is threading.main_thread()
                            else None)
    server = CamiocServer(proc, base, prefix, f"http://127.0.0.1:{camera_port}", f"http://127.0.0.1:{pipeline_port}",
                          log_path, pva_port, pva_broadcast_port)
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


def _end_with_test() -> None:
    """In the server's process before exec: SIGTERM it when the test process dies (a pytest killed
    by a timeout or by hand leaves no camioc streaming on the machine). Only for servers started
    from the test's main thread, which lives as long as the test process (PR_SET_PDEATHSIG fires
    when the forking thread ends)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def stop_camioc(server: CamiocServer, timeout: float = 20.0) -> int:
    """SIGINT the server (as Ctrl-C does) and wait; kill it if it does not stop in time."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)
            raise RuntimeError(f"camioc did not stop within {timeout} s:\n{server.log()}") from None
    return server.proc.returncode




@contextlib.contextmanager
def running_camioc(folder: Path) -> Iterator[CamiocServer]:
    """camioc on a fresh copy of :data:`TEST_CONFIGS` in ``folder`` (for module-scoped server fixtures)."""
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, folder / "camioc.log")
    try:
        yield server
    finally:
        stop_camioc(server)
