"""The access policy applies to PV Access puts: a real camioc process started with
``--access-policy`` that lets this host (127.0.0.1) only read, and a real p4p client.

The put is refused with the policy's reason and changes nothing (checked over PVA, CA and REST);
reads keep working.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from cam_server_client import CamClient
from p4p.client.thread import Context, RemoteError

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")

POLICY = "default: read\nrules:\n  - name: another console\n    hosts: 10.99.0.1\n    access: write\n"


@pytest.fixture(scope="module")
def read_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("pva_policy")
    shutil.copytree(TEST_CONFIGS, folder / "configs")
    (folder / "policy.yaml").write_text(POLICY)
    server = start_camioc(folder / "configs", folder / "camioc.log",
                          ["--access-policy", str(folder / "policy.yaml")])
    try:
        yield server
    finally:
        stop_camioc(server)


def test_pva_put_from_a_read_only_host_is_refused_and_changes_nothing(read_only_server: CamiocServer) -> None:
    p = read_only_server.prefix
    cameras = CamClient(read_only_server.camera_url)
    before = cameras.get_camera_config("simulation2")
    with Context("pva", conf=read_only_server.pva_conf(), useenv=False) as pva:
        binning = wait_until(lambda: pva.get(f"{p}simulation2:cam1:BinX", timeout=5), what="BinX over PVA")
        assert int(binning) == 1
        with pytest.raises(RemoteError) as refused:
            pva.put(f"{p}simulation2:cam1:BinX", 2, timeout=10)
        message = str(refused.value)
        assert "127.0.0.1" in message and "read" in message, message
        with pytest.raises(RemoteError):
            pva.put(f"{p}simulation2:cam1:ReverseY", "Yes", timeout=10)
        assert int(pva.get(f"{p}simulation2:cam1:BinX", timeout=5)) == 1  # reads keep working
        assert int(pva.get(f"{p}simulation2:cam1:ReverseY", timeout=5)) == 0
    assert epics.caget(f"{p}simulation2:cam1:BinX_RBV", timeout=5) == 1
    assert cameras.get_camera_config("simulation2") == before
    assert "Refused PVA put" in read_only_server.log()
