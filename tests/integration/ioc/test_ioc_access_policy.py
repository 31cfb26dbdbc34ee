"""Who may write, over Channel Access, on a real ``camioc --access-policy`` process.

The policy lets only the user ``operator`` on this machine write. The clients are real: EPICS
base's ``cainfo``/``caput``/``caget`` (running as the test's own user: they see the PVs read-only
and refuse the put themselves) and caproto's threading client, which sends a put whatever the
access rights say (so the server's refusal is what is tested) and can report any user name.
The same policy decides REST: 127.0.0.1 without a user may only read there.
"""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Iterator

import pytest
from cam_server_client import CamClient
from caproto import AccessRights
from caproto.threading.client import Context
from ioc_support import CaTools, parse_cainfo

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

POLICY = """\
default: read
rules:
  - name: operators here
    hosts: [127.0.0.0/8, "::1"]
    users: [operator]
    access: write
"""
SIM = "simulation2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca_repeater, beacon_sink) -> Iterator[CamiocServer]:
    assert getpass.getuser() != "operator", "the test needs a user the policy does not name"
    folder = tmp_path_factory.mktemp("ca_access")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    (folder / "policy.yaml").write_text(POLICY)
    handle = start_camioc(base, folder / "camioc.log", ["--access-policy", str(folder / "policy.yaml")])
    try:
        yield handle
    finally:
        stop_camioc(handle)


@pytest.fixture(scope="module")
def tools(ca_repeater) -> CaTools:
    return CaTools()


def _caget(tools: CaTools, pv: str) -> str:
    result = tools.run_sync("caget", "-w", "3", "-t", pv, timeout=20)
    assert result.returncode == 0 and "not found" not in result.output, result.output
    return result.stdout.strip()


def _context(user: str) -> Context:
    return Context(client_name=user, host_name="trusted-console")  # the claimed host name counts for nothing


def test_epics_tools_see_read_only_pvs_and_cannot_put(server: CamiocServer, tools: CaTools) -> None:
    cam = f"{server.prefix}{SIM}:cam1:"
    for pv in (cam + "ReverseX", cam + "Acquire", server.prefix + "StopAll", cam + "ReverseX.DESC"):
        result = tools.run_sync("cainfo", "-w", "3", pv, timeout=20)
        assert parse_cainfo(result.output).get("Access") == "read, no write", result.output
    before = _caget(tools, cam + "ReverseX")
    result = tools.run_sync("caput", "-w", "3", "-c", cam + "ReverseX", "1", timeout=20)
    assert "write access denied" in result.output.lower(), result.output
    assert _caget(tools, cam + "ReverseX") == before
    assert CamClient(server.camera_url).get_camera_config(SIM)["mirror_x"] is False


def test_a_put_sent_anyway_is_refused_and_changes_nothing(server: CamiocServer) -> None:
    cam = f"{server.prefix}{SIM}:cam1:"
    context = _context("intruder")
    try:
        reverse, acquire = context.get_pvs(cam + "ReverseX", cam + "Acquire", timeout=5)
        reverse.wait_for_connection(timeout=5)
        acquire.wait_for_connection(timeout=5)
        assert reverse.access_rights == AccessRights.READ
        response = reverse.write([1], wait=True, timeout=5)
        assert response.status.name == "ECA_NOWTACCESS"
        response = acquire.write([1], wait=True, timeout=5)  # would start the camera
        assert response.status.name == "ECA_NOWTACCESS"
        acquire.write([1], wait=False)  # a plain write (no notify) too
        assert reverse.read(timeout=5).data[0] == 0
    finally:
        context.disconnect()
    assert CamClient(server.camera_url).get_camera_config(SIM)["mirror_x"] is False
    assert CamClient(server.camera_url).get_server_info()["active_instances"] == {}
    assert "Access denied: caput " + cam + "ReverseX" in server.log()
    assert "user 'intruder'" in server.log()


def test_the_user_the_policy_names_may_write(server: CamiocServer, tools: CaTools) -> None:
    cam = f"{server.prefix}{SIM}:cam1:"
    context = _context("operator")
    try:
        (reverse,) = context.get_pvs(cam + "ReverseX", timeout=5)
        reverse.wait_for_connection(timeout=5)
        assert reverse.access_rights == AccessRights.READ | AccessRights.WRITE
        try:
            assert reverse.write([1], wait=True, timeout=5).status.name == "ECA_NORMAL"
            assert CamClient(server.camera_url).get_camera_config(SIM)["mirror_x"] is True
            wait_until(lambda: _caget(tools, cam + "ReverseX_RBV") in ("1", "Reverse", "Yes"), what="ReverseX_RBV")
        finally:
            reverse.write([0], wait=True, timeout=5)
    finally:
        context.disconnect()
    assert CamClient(server.camera_url).get_camera_config(SIM)["mirror_x"] is False


def test_rest_follows_the_same_policy(server: CamiocServer) -> None:
    client = CamClient(server.camera_url)
    config = client.get_camera_config(SIM)
    with pytest.raises(ValueError, match="Access denied.*operators here|Access denied.*the default"):
        client.set_camera_config(SIM, {**config, "mirror_x": True})
    assert client.get_camera_config(SIM)["mirror_x"] is False
