"""The camera REST app's write checks through real HTTP (aiohttp client and server on 127.0.0.1):
the access policy on every write and on GETs that would start an instance, the browser rule for
cross-site starts (with ``Origin``, ``Sec-Fetch-Site``, ``Referer``) and the user-scripts switch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from camioc.config.access import AccessPolicy, parse_policy
from camioc.logbuffer import LogBuffer
from camioc.rest.browser import BrowserPolicy
from camioc.rest.camera_api import create_camera_app
from tests.unit.rest.fakes import VERSION, FakeCameras

CAM = "/api/v1/cam"
DASH = "http://dashboard.example:8080"
READ_ONLY_HERE = parse_policy({"default": "write", "rules": [{"hosts": "127.0.0.1", "access": "read", "name": "ro"}]})

Factory = Callable[..., AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def camera_app(cameras: FakeCameras, log_buffer: LogBuffer, scripts_dir: Path) -> Factory:
    @asynccontextmanager
    async def make(*, access: AccessPolicy | None = None, browser: BrowserPolicy | None = None,
                   user_scripts: bool = True) -> AsyncIterator[TestClient]:
        app = create_camera_app(cameras, version=VERSION, logs=log_buffer, scripts_dir=scripts_dir, host_stats=False,
                                browser=browser, access=access, user_scripts=user_scripts)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client

    return make


async def test_read_only_client_may_read_and_see_a_running_camera(camera_app: Factory, cameras: FakeCameras) -> None:
    async with camera_app(access=READ_ONLY_HERE) as client:
        for method in ("GET", "HEAD"):
            response = await client.request(method, f"{CAM}/simulation")
            assert response.status == 403, method
        assert cameras.running == {}
        assert (await (await client.get(f"{CAM}/simulation/config")).json())["state"] == "ok"
        cameras.running["simulation"] = "tcp://127.0.0.1:10100"  # started by someone who may
        reply = await (await client.get(f"{CAM}/SIM")).json()  # an alias of the running camera
        assert reply["state"] == "ok" and reply["stream"] == "tcp://127.0.0.1:10100"
        response = await client.delete(f"{CAM}/simulation")
        assert response.status == 403 and "'ro'" in (await response.json())["status"]
        assert "simulation" in cameras.running
        # an unknown camera counts as a start: refused, not looked up
        assert (await client.get(f"{CAM}/no_such_camera")).status == 403


async def test_no_policy_lets_everyone_write(camera_app: Factory, cameras: FakeCameras) -> None:
    async with camera_app() as client:
        assert (await (await client.get(f"{CAM}/simulation")).json())["state"] == "ok"
        assert "simulation" in cameras.running
        assert (await (await client.delete(f"{CAM}/simulation")).json())["state"] == "ok"


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Sec-Fetch-Site": "same-origin"}, False),
    ({"Sec-Fetch-Site": "cross-site"}, True),
    ({"Sec-Fetch-Site": "same-site"}, True),
    ({"Origin": "http://evil.example"}, True),
    ({"Origin": DASH, "Sec-Fetch-Site": "cross-site"}, False),
    ({"Sec-Fetch-Site": "cross-site", "Referer": f"{DASH}/panel.html?x=1"}, False),
    ({"Sec-Fetch-Site": "cross-site", "Referer": "http://evil.example/"}, True),
    ({"Sec-Fetch-Site": "cross-site", "Referer": "not a url"}, True),
])
async def test_cross_site_get_that_would_start(camera_app: Factory, cameras: FakeCameras,
                                               headers: dict[str, str], refused: bool) -> None:
    async with camera_app(browser=BrowserPolicy(cors_origins=(DASH,))) as client:
        response = await client.get(f"{CAM}/simulation", headers=headers)
        reply = await response.json()
        assert (response.status == 403) is refused, reply
        assert ("simulation" in cameras.running) is not refused
        if refused:
            assert "Cross-site request refused" in reply["status"] and "--cors-origin" in reply["status"]


async def test_any_origin_keeps_cam_servers_behaviour(camera_app: Factory, cameras: FakeCameras) -> None:
    async with camera_app(browser=BrowserPolicy(cors_origins=("*",))) as client:
        response = await client.get(f"{CAM}/simulation", headers={"Sec-Fetch-Site": "cross-site"})
        assert response.status == 200 and "simulation" in cameras.running


async def test_non_starting_gets_are_not_affected(camera_app: Factory) -> None:
    async with camera_app(access=READ_ONLY_HERE) as client:
        for path in ("", "/aliases", "/simulation/config", "/simulation/is_online", "/script", "/info"):
            response = await client.get(CAM + path, headers={"Sec-Fetch-Site": "cross-site"})
            assert response.status == 200, path


async def test_user_scripts_off(camera_app: Factory, scripts_dir: Path) -> None:
    scripts_dir.mkdir(parents=True, exist_ok=True)
    (scripts_dir / "old.py").write_text("x = 1\n")
    async with camera_app(user_scripts=False) as client:
        reply = await (await client.put(f"{CAM}/script/new.py/script_bytes", data=b"x = 2\n")).json()
        assert reply["state"] == "error" and "--no-user-scripts" in reply["status"]
        assert not (scripts_dir / "new.py").exists()
        assert (await (await client.get(f"{CAM}/script")).json())["scripts"] == ["old.py"]
        assert (await (await client.delete(f"{CAM}/script/old.py/script_bytes")).json())["state"] == "ok"
