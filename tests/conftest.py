"""Session-wide test set-up shared by every test module.

EPICS: libca (pyepics, the C tools) reads its environment once per process, so the CA ports are
chosen once per session, before anything imports epics. Two server ports are reserved:
``CAMIOC_TEST_CA_PORT`` for camioc's own IOC and ``CAMIOC_TEST_CA_PORT2`` for auxiliary test IOCs
(e.g. an areaDetector-style camera), because two caproto servers on one UDP port split unicast
searches between them. Clients search both (EPICS_CA_ADDR_LIST). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT, TEST_CONFIGS, free_port, start_camioc, stop_camioc


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
    # pyepics' atexit clean-up can hang the interpreter's exit in clear_channel (channels used from
    # worker threads via asyncio.to_thread); the test process needs no CA clean-up at exit.
    import epics.ca

    epics.ca.AUTO_CLEANUP = False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the processing kernels into numba's on-disk cache once, before any test.

    Pipeline workers load compiled kernels from that cache in about a second; compiling them
    from scratch takes tens of seconds, which would otherwise land inside the first test that
    starts a pipeline (and its deadlines).
    """
    import subprocess

    subprocess.run([sys.executable, "-c", "from camioc.processing import warm_up; warm_up()"],
                   check=True, cwd=REPO_ROOT, timeout=600)


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


@pytest.fixture
def camioc_base(tmp_path: Path) -> Path:
    """A private copy of the default configuration (:data:`~tests.support.server.TEST_CONFIGS`)."""
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    return base


@pytest.fixture
def camioc_server(camioc_base: Path, tmp_path: Path):
    """camioc running on a copy of the default configuration with random REST ports, stream ports and PV prefix."""
    server = start_camioc(camioc_base, tmp_path / "camioc.log")
    try:
        yield server
    finally:
        stop_camioc(server)
