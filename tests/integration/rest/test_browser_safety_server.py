"""Browser safety on a real camioc process started with ``--cors-origin`` and ``--allowed-host``.

What a web page's browser sends (a foreign ``Origin``, a ``text/plain`` POST that skips preflight,
a rebound ``Host``) is refused with HTTP 403 before anything happens; an allowed origin works;
``cam_server_client`` (no ``Origin``) is not affected.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import aiohttp
import pytest
from cam_server_client import CamClient, PipelineClient

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc

DASH = "http://dash.example:8080"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("browser_safety")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, folder / "camioc.log",
                          ["--cors-origin", DASH, "--allowed-host", "camioc.example"])
    try:
        yield server
    finally:
        stop_camioc(server)


async def test_foreign_page_can_change_nothing(server: CamiocServer) -> None:
    cameras_before = CamClient(server.camera_url).get_cameras()
    pipelines_before = PipelineClient(server.pipeline_url).get_pipelines()
    camera_files = sorted(p.name for p in (server.base / "camera_config").iterdir())
    page = {"Origin": EVIL, "Content-Type": "text/plain"}
    async with aiohttp.ClientSession() as session:
        for url, body in [
            (f"{server.camera_url}/api/v1/cam/evil_cam/config", {"source": "x", "source_type": "simulation"}),
            (f"{server.pipeline_url}/api/v1/pipeline", {"camera_name": "simulation"}),
            (f"{server.pipeline_url}/api/v1/pipeline/evil_pipeline/config", {"camera_name": "simulation"}),
        ]:
            async with session.post(url, data=json.dumps(body), headers=page) as response:
                assert response.status == 403
                reply = await response.json()
                assert reply["state"] == "error"
                assert f"'{EVIL}'" in reply["status"] and f"--cors-origin {EVIL}" in reply["status"]
                assert "Access-Control-Allow-Origin" not in response.headers
        async with session.put(f"{server.pipeline_url}/api/v1/pipeline/script/evil.py/script_bytes",
                               data=b"import os", headers=page) as response:
            assert response.status == 403
    assert CamClient(server.camera_url).get_cameras() == cameras_before
    assert PipelineClient(server.pipeline_url).get_pipelines() == pipelines_before
    assert PipelineClient(server.pipeline_url).get_server_info()["active_instances"] == {}
    assert sorted(p.name for p in (server.base / "camera_config").iterdir()) == camera_files
    assert not (server.base / "user_scripts" / "evil.py").exists()
    assert "Cross-origin request refused" in server.log()


async def test_allowed_origin_and_preflight(server: CamiocServer) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{server.camera_url}/api/v1/cam/simulation/config"
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        async with session.options(url, headers={"Origin": DASH, **preflight}) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == DASH
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with session.options(url, headers={"Origin": EVIL, **preflight}) as response:
            assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
        async with session.get(url, headers={"Origin": DASH}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == DASH
            config = (await response.json())["config"]
        async with session.post(url, data=json.dumps(config), headers={"Origin": DASH}) as response:
            assert response.status == 200 and (await response.json())["state"] == "ok"
            assert response.headers["Access-Control-Allow-Origin"] == DASH
    assert "CORS for http://dash.example:8080" in server.log()


async def test_host_checked_on_loopback(server: CamiocServer) -> None:
    port = server.camera_url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.camera_url}/api/v1/cam", headers={"Host": f"rebind.evil.example:{port}"}) as r:
            assert r.status == 403
            assert "'rebind.evil.example:" in (await r.json())["status"]
        for host in (f"camioc.example:{port}", f"localhost:{port}", f"127.0.0.1:{port}"):
            async with session.get(f"{server.camera_url}/api/v1/cam", headers={"Host": host}) as r:
                assert r.status == 200, host


def test_cam_server_clients_are_unaffected(server: CamiocServer) -> None:
    cameras = CamClient(server.camera_url)
    assert "simulation" in cameras.get_cameras()
    config = cameras.get_camera_config("simulation")
    cameras.set_camera_config("browser_safety_copy", config)
    assert "browser_safety_copy" in cameras.get_cameras()
    cameras.delete_camera_config("browser_safety_copy")
    assert "browser_safety_copy" not in cameras.get_cameras()
    pipelines = PipelineClient(server.pipeline_url)
    pipelines.save_pipeline_config("browser_safety_pipe", {"camera_name": "simulation"})
    assert "browser_safety_pipe" in pipelines.get_pipelines()
    pipelines.delete_pipeline_config("browser_safety_pipe")
