"""Fixtures for the IOC tests: the real CamiocIoc on the session's CA port over a FakeCameraService.

See ``ioc_support.py`` for the service and the CA client helpers.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from ioc_support import CaTools, FakeCameraService, tool_dir


@pytest.fixture(scope="session")
def ca_repeater():
    """A caRepeater of our own, started before any CA client (else libca spawns one that inherits
    the tools' output pipes and makes subprocess reads hang)."""
    proc = subprocess.Popen([str(tool_dir() / "caRepeater")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def beacon_sink():
    """Something listening where caproto sends beacons (else it logs a traceback per beacon)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", int(os.environ["EPICS_CAS_BEACON_PORT"])))
    except OSError:  # someone else listens there: fine
        sock.close()
        yield None
        return
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def ca(ca_repeater) -> CaTools:
    return CaTools()


@pytest.fixture(scope="session")
def epics_ca(ca_repeater):
    """pyepics (libca in this process), imported after the session's EPICS environment is set."""
    import epics

    return epics


# ====================================================================== the IOC under test
@pytest.fixture
def service() -> FakeCameraService:
    return FakeCameraService({"cam_a": {}, "cam_b": {"size_x": 64, "size_y": 48}})


@pytest.fixture
async def ioc(service: FakeCameraService, pv_prefix: str, ca_repeater, beacon_sink):
    from camioc.ioc.server import CamiocIoc

    server = CamiocIoc(pv_prefix, service, version="9.9.9-test", start_count=7, result_publish_rate=50.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


