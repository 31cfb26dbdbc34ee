"""No caRepeater and nobody at the beacon address: a real camioc logs one warning line, no traceback.

caproto logs a traceback for every beacon it cannot send (ICMP port unreachable comes back as
ConnectionRefused on the next send); camioc's ``BeaconLogFilter`` turns that into one warning per
address. The server runs with beacons aimed at a free loopback port of its own, where nothing
listens, and the caRepeater port of nobody.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.server import TEST_CONFIGS, free_port, start_camioc, stop_camioc
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI

BEACON_WARNING = "cannot be sent"


def test_unreachable_beacons_give_one_warning_line_and_no_traceback(tmp_path: Path) -> None:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    beacon_port = free_port()
    server = start_camioc(base, tmp_path / "camioc.log", env_overrides={
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_PORT": str(beacon_port),
        "EPICS_CA_REPEATER_PORT": str(free_port()),
    })
    try:
        # beacons start at 20 ms and double: 3 heartbeats (seconds) of CA service are ~8 beacons
        wait_until(lambda: (epics.caget(f"{server.prefix}HEARTBEAT", timeout=2, use_monitor=False) or 0) >= 3, timeout=30,
                   what="HEARTBEAT >= 3")
        wait_until(lambda: BEACON_WARNING in server.log(), timeout=15, what="the beacon warning")
    finally:
        stop_camioc(server)
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    lines = [line for line in log.splitlines() if BEACON_WARNING in line]
    assert len(lines) == 1, lines
    assert " WARNING " in lines[0] and f"('127.0.0.1', {beacon_port})" in lines[0]
