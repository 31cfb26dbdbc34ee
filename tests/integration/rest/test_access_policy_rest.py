"""Who may write, over REST, on real camioc processes (``--access-policy``, ``--no-user-scripts``).

Two servers, one after the other: one whose policy lets 127.0.0.1 only read (every write refused
with HTTP 403 and the envelope naming the rule; nothing changes), one whose policy grants
127.0.0.1 write but runs with ``--no-user-scripts`` (writes work, uploads are refused). The
clients are the real ones: psi-camserver-client, aiohttp, and what a browser's ``<img>`` sends.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from cam_server_client import CamClient, PipelineClient

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

READ_ONLY = """\
# 127.0.0.1 may only read; everyone else (nobody, on a loopback bind) may write
default: write
rules:
  - name: loopback reads
    hosts: [127.0.0.1, "::1"]
    access: read
"""

GRANTED = """\
default: read
rules:
  - name: this machine
    hosts: [127.0.0.0/8, localhost]
    access: write
"""

CAMERA = {"name": "acc_cam", "source": "simulation", "source_type": "simulation", "size_x": 64, "size_y": 48,
          "frame_rate": 20.0, "no_client_timeout": 0}


def _server(folder: Path, policy: str, *extra: str) -> CamiocServer:
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    (folder / "policy.yaml").write_text(policy)
    return start_camioc(base, folder / "camioc.log", ["--access-policy", str(folder / "policy.yaml"), *extra])


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    server = _server(tmp_path_factory.mktemp("access_read_only"), READ_ONLY)
    try:
        yield server
    finally:
        stop_camioc(server)


def _files(base: Path) -> list[str]:
    return sorted(str(path.relative_to(base)) for path in base.rglob("*") if path.is_file()
                  and not path.name.startswith(".camioc_state"))


async def test_read_only_host_changes_nothing(read_only: CamiocServer) -> None:
    cam, pipe = read_only.camera_url, read_only.pipeline_url
    before = _files(read_only.base)
    background = pickle.dumps(np.zeros((4, 4), dtype=np.uint16), protocol=0)
    writes = [
        ("POST", f"{cam}/api/v1/cam/acc_cam/config", json.dumps(CAMERA).encode()),
        ("DELETE", f"{cam}/api/v1/cam/simulation/config", None),
        ("PUT", f"{cam}/api/v1/cam/background/bg1/image_bytes", background),
        ("PUT", f"{cam}/api/v1/cam/script/x.py/script_bytes", b"def f(): pass\n"),
        ("DELETE", f"{cam}/api/v1/cam", None),
        ("POST", f"{pipe}/api/v1/pipeline", json.dumps({"camera_name": "simulation"}).encode()),
        ("POST", f"{pipe}/api/v1/pipeline/simulation_sp", None),
        ("POST", f"{pipe}/api/v1/pipeline/instance/", json.dumps({"camera_name": "simulation"}).encode()),
        ("POST", f"{pipe}/api/v1/pipeline/new_pipe/config", json.dumps({"camera_name": "simulation"}).encode()),
        ("DELETE", f"{pipe}/api/v1/pipeline/simulation_sp/config", None),
        ("POST", f"{pipe}/api/v1/pipeline/camera/simulation/background?n_images=1", None),
        ("POST", f"{pipe}/api/v1/pipeline/background", json.dumps({"filename": "b", "data": [[1]]}).encode()),
        ("PUT", f"{pipe}/api/v1/pipeline/script/x.py/script_bytes", b"def f(): pass\n"),
        ("PUT", f"{pipe}/api/v1/pipeline/lib/x.py/lib_bytes", b"X = 1\n"),
        ("DELETE", f"{pipe}/api/v1/pipeline/simulation_sp", None),
        # GETs that would start an instance count as writes
        ("GET", f"{cam}/api/v1/cam/simulation", None),
        ("GET", f"{pipe}/api/v1/pipeline/instance/simulation_sp", None),
    ]
    async with aiohttp.ClientSession() as session:
        for method, url, body in writes:
            async with session.request(method, url, data=body) as response:
                reply = await response.json(content_type=None)
                assert response.status == 403, (method, url, reply)
                assert reply["state"] == "error"
                assert reply["status"].startswith("Access denied:"), reply
                assert "host 127.0.0.1" in reply["status"] and "'loopback reads'" in reply["status"]
        # reads still work
        async with session.get(f"{cam}/api/v1/cam/simulation/config") as response:
            assert (await response.json())["state"] == "ok"
    assert _files(read_only.base) == before
    assert CamClient(cam).get_server_info()["active_instances"] == {}
    assert PipelineClient(pipe).get_server_info()["active_instances"] == {}
    assert "who may write: access policy" in read_only.log()


def test_psi_clients_get_the_reason(read_only: CamiocServer) -> None:
    cameras = CamClient(read_only.camera_url)
    assert "simulation" in cameras.get_cameras()  # reading works
    with pytest.raises(ValueError, match="Access denied"):
        cameras.set_camera_config("acc_cam", CAMERA)
    with pytest.raises(ValueError, match="Access denied"):
        cameras.get_instance_stream("simulation")
    with pytest.raises(ValueError, match="Access denied"):
        PipelineClient(read_only.pipeline_url).create_instance_from_name("simulation_sp")
    assert "acc_cam" not in cameras.get_cameras()


@pytest.fixture(scope="module")
def granted(tmp_path_factory: pytest.TempPathFactory, read_only: CamiocServer) -> Iterator[CamiocServer]:
    stop_camioc(read_only)  # one server at a time (they share the session's CA port)
    server = _server(tmp_path_factory.mktemp("access_granted"), GRANTED, "--no-user-scripts")
    try:
        yield server
    finally:
        stop_camioc(server)


def test_granted_host_writes(granted: CamiocServer) -> None:
    cameras, pipelines = CamClient(granted.camera_url), PipelineClient(granted.pipeline_url)
    cameras.set_camera_config("acc_cam", CAMERA)
    assert "acc_cam" in cameras.get_cameras()
    instance_id, _ = pipelines.create_instance_from_config({"camera_name": "acc_cam"})
    assert instance_id in pipelines.get_server_info()["active_instances"]
    pipelines.stop_instance(instance_id)
    cameras.stop_all_instances()


async def test_no_user_scripts_refuses_uploads(granted: CamiocServer) -> None:
    async with aiohttp.ClientSession() as session:
        for url in (f"{granted.camera_url}/api/v1/cam/script/s.py/script_bytes",
                    f"{granted.pipeline_url}/api/v1/pipeline/script/s.py/script_bytes",
                    f"{granted.pipeline_url}/api/v1/pipeline/lib/l.py/lib_bytes"):
            async with session.put(url, data=b"def process_image(*a): return {}\n") as response:
                reply = await response.json()
                assert reply["state"] == "error" and "--no-user-scripts" in reply["status"], reply
        async with session.get(f"{granted.pipeline_url}/api/v1/pipeline/script") as response:
            assert (await response.json())["scripts"] == []
    assert not any((granted.base / "user_scripts").rglob("*.py"))
    assert "user scripts are switched off" in granted.log()


async def test_cross_site_get_starts_nothing(granted: CamiocServer) -> None:
    """An ``<img src=.../api/v1/cam/simulation>`` on a foreign page must not start the camera."""
    stream = f"{granted.camera_url}/api/v1/cam/simulation"
    pipeline = f"{granted.pipeline_url}/api/v1/pipeline/instance/simulation_sp"
    cameras = CamClient(granted.camera_url)
    async with aiohttp.ClientSession() as session:
        for url in (stream, pipeline):
            for headers in ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},
                            {"Sec-Fetch-Site": "same-site", "Referer": "http://other.localhost:9000/page"},
                            {"Origin": "http://evil.example"}):
                async with session.get(url, headers=headers) as response:
                    reply = await response.json()
                    assert response.status == 403, (url, headers, reply)
                    assert "Cross-site request refused" in reply["status"]
        assert cameras.get_server_info()["active_instances"] == {}
        assert PipelineClient(granted.pipeline_url).get_server_info()["active_instances"] == {}
        # an address typed into the browser, and clients without browser headers, still start it
        async with session.get(stream, headers={"Sec-Fetch-Site": "none"}) as response:
            assert (await response.json())["state"] == "ok"
        wait_until(lambda: "simulation" in cameras.get_server_info()["active_instances"], what="camera started")
        # once running, a cross-site GET starts nothing and is answered (the browser hides it)
        async with session.get(stream, headers={"Sec-Fetch-Site": "cross-site"}) as response:
            assert response.status == 200
    assert PipelineClient(granted.pipeline_url).get_instance_stream("simulation_sp").startswith("tcp://")
    PipelineClient(granted.pipeline_url).stop_all_instances()
    cameras.stop_all_instances()
