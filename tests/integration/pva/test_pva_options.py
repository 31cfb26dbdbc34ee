"""``--no-pva`` and ``--pva-port``, on a real camioc with a real p4p client and CA beside it."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import epics
import pytest
from p4p.client.thread import Context

from tests.support.server import TEST_CONFIGS, free_port, start_camioc, stop_camioc


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _configs(tmp_path: Path) -> Path:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    return base


def test_no_pva_serves_channel_access_only(tmp_path: Path) -> None:
    server = start_camioc(_configs(tmp_path), tmp_path / "camioc.log", ["--no-pva"])
    try:
        assert epics.caget(f"{server.prefix}Version_RBV", timeout=5)  # CA as ever
        assert not _listening(server.pva_port), "a PV Access server listens although --no-pva"
        with Context("pva", conf=server.pva_conf(), useenv=False) as pva, pytest.raises(TimeoutError):
            pva.get(f"{server.prefix}Version_RBV", timeout=2)
    finally:
        stop_camioc(server)


def test_pva_port_moves_the_server(tmp_path: Path) -> None:
    port = free_port()
    server = start_camioc(_configs(tmp_path), tmp_path / "camioc.log", ["--pva-port", str(port)])
    try:
        assert _listening(port)
        assert not _listening(server.pva_port)  # the environment's EPICS_PVAS_SERVER_PORT gave way
        # a client that knows the server's TCP address (no UDP search) finds every PV there
        conf = {"EPICS_PVA_NAME_SERVERS": f"127.0.0.1:{port}", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
                "EPICS_PVA_ADDR_LIST": ""}
        with Context("pva", conf=conf, useenv=False) as pva:
            version = pva.get(f"{server.prefix}Version_RBV", timeout=5)
        assert version.raw.value == epics.caget(f"{server.prefix}Version_RBV", timeout=5)
    finally:
        stop_camioc(server)
