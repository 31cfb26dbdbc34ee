"""Starting camioc with an access policy: a bad file stops it with a message, and serving a network
interface without any policy logs one warning (real ``python -m camioc`` processes)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camioc.app import Settings, log_access_policy
from camioc.config.access import parse_policy
from tests.support.server import REPO_ROOT, TEST_CONFIGS, start_camioc, stop_camioc

WARNING = "with no access policy"


def test_bad_policy_file_stops_camioc(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("default: read\nrules:\n  - hosts: 10.0.0.0/33\n    access: write\n")
    proc = subprocess.run([sys.executable, "-m", "camioc", "--base", str(tmp_path / "configs"),
                           "--access-policy", str(bad)], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert f"Access policy {bad}: rule 1: hosts: '10.0.0.0/33' is not a network" in proc.stderr
    assert not (tmp_path / "configs").exists()  # nothing was started or created


def test_network_interface_without_policy_warns(tmp_path: Path) -> None:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, tmp_path / "camioc.log", ["--interface", "0.0.0.0"])
    try:
        lines = [line for line in server.log().splitlines() if WARNING in line]
        assert len(lines) == 1 and "WARNING" in lines[0] and "--access-policy" in lines[0]
    finally:
        stop_camioc(server)


@pytest.mark.parametrize(("interface", "with_policy", "warns"), [
    ("0.0.0.0", False, True), ("10.1.2.3", False, True), ("0.0.0.0", True, False),
    ("127.0.0.1", False, False), ("localhost", False, False), ("::1", False, False),
])
def test_warning_only_for_a_network_interface_without_policy(
        caplog: pytest.LogCaptureFixture, interface: str, with_policy: bool, warns: bool) -> None:
    policy = parse_policy({"default": "read", "rules": [{"hosts": "127.0.0.1", "access": "write"}]},
                          source=Path("p.yaml")) if with_policy else None
    with caplog.at_level(logging.INFO, logger="camioc.app"):
        log_access_policy(Settings(base=Path("."), interface=interface, access_policy=policy))
    assert any(WARNING in record.message for record in caplog.records) is warns
    assert any("who may write: access policy p.yaml" in record.message for record in caplog.records) is with_policy


@pytest.mark.parametrize(("environ", "warns"), [
    ({"EPICS_CAS_INTF_ADDR_LIST": "10.1.2.3"}, True),
    ({"EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1 0.0.0.0"}, True),
    ({"EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1"}, False),
    ({"EPICS_PVAS_INTF_ADDR_LIST": "192.168.7.1"}, True),
    ({}, False),
])
def test_warning_when_the_epics_environment_serves_a_network_interface(
        caplog: pytest.LogCaptureFixture, environ: dict[str, str], warns: bool) -> None:
    """A loopback --interface, but CA (or PVA) told by the EPICS environment to listen elsewhere."""
    with caplog.at_level(logging.INFO, logger="camioc.app"):
        log_access_policy(Settings(base=Path("."), interface="127.0.0.1"), environ)
    warnings = [record.message for record in caplog.records if WARNING in record.message]
    assert bool(warnings) is warns
    if warns:
        variable = next(iter(environ))
        assert variable in warnings[0] and "--access-policy" in warnings[0]


def test_epics_interface_without_policy_warns_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    monkeypatch.setenv("EPICS_CAS_INTF_ADDR_LIST", "0.0.0.0")
    server = start_camioc(base, tmp_path / "camioc.log")
    try:
        lines = [line for line in server.log().splitlines() if WARNING in line]
        assert len(lines) == 1 and "EPICS_CAS_INTF_ADDR_LIST" in lines[0], server.log()
    finally:
        stop_camioc(server)
