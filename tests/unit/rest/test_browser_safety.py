"""Browser safety of both REST apps, through real HTTP: CORS allow-list, cross-origin writes, Host.

A browser always sends ``Origin`` on a cross-origin request, and a ``Content-Type: text/plain``
POST is sent without preflight: these tests send what such a page's browser sends and check that
nothing happened (lists, configs and script folder unchanged), that allowed origins work and that
clients without ``Origin`` (curl, Python, ``cam_server_client``) are not affected.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from camioc.cli import build_parser
from camioc.config.store import ConfigLayout, ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.logbuffer import LogBuffer
from camioc.rest.browser import BrowserPolicy, is_loopback, normalize_origin, split_host
from camioc.rest.camera_api import create_camera_app
from camioc.rest.pipeline_api import create_pipeline_app
from tests.support.server import TEST_CONFIGS
from tests.unit.rest.fakes import VERSION, FakeCameras

CAM = "/api/v1/cam"
PIPE = "/api/v1/pipeline"
EVIL = "http://evil.example"
DASH = "http://dashboard.example:8080"
TEXT = {"Content-Type": "text/plain"}  # a "simple" request: no preflight in a browser
CAMERA_CONFIG = json.dumps({"source": "sim", "source_type": "simulation"})
PIPELINE_CONFIG = json.dumps({"camera_name": "simulation"})

ClientFactory = Callable[..., AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def camera_client(cameras: FakeCameras, log_buffer: LogBuffer, scripts_dir: Path) -> ClientFactory:
    """``async with camera_client(policy) as client``: the camera app with that policy."""

    @asynccontextmanager
    async def make(policy: BrowserPolicy | None = None) -> AsyncIterator[TestClient]:
        app = create_camera_app(cameras, version=VERSION, logs=log_buffer, scripts_dir=scripts_dir,
                                host_stats=False, browser=policy)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client

    return make


@pytest.fixture
def layout(tmp_path: Path) -> ConfigLayout:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    return ConfigLayout(base).ensure()


@pytest.fixture
async def pipeline_client(layout: ConfigLayout) -> AsyncIterator[ClientFactory]:
    """The real pipeline app over the real managers (no worker is started by these tests)."""
    cameras = CameraManager(ConfigStore(layout.camera_config), hostname="127.0.0.1",
                            background_dir=layout.background_config)
    pipelines = PipelineManager(ConfigStore(layout.pipeline_config), cameras,
                                BackgroundStore(layout.background_config), hostname="127.0.0.1",
                                scripts_dir=layout.user_scripts)

    @asynccontextmanager
    async def make(policy: BrowserPolicy | None = None) -> AsyncIterator[TestClient]:
        app = create_pipeline_app(pipelines, cameras, version=VERSION, logs=LogBuffer(),
                                  scripts_dir=layout.user_scripts, libs_dir=layout.user_libs,
                                  host_stats=False, browser=policy)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client

    yield make
    await pipelines.close()
    await cameras.close()


def own_origin(client: TestClient) -> str:
    return f"http://127.0.0.1:{client.port}"


async def names(client: TestClient, root: str = CAM) -> list[str]:
    body = await (await client.get(root + "/config_names")).json()
    assert body["state"] == "ok", body
    return body["config_names"]


async def refused(response, *words: str) -> str:
    assert response.status == 403
    body = await response.json()
    assert body["state"] == "error"
    for word in words:
        assert word in body["status"], body["status"]
    return body["status"]


# --------------------------------------------------------------------------- cross-origin writes
async def test_foreign_origin_simple_post_is_refused_and_changes_nothing(
        camera_client: ClientFactory, cameras: FakeCameras, log_buffer: LogBuffer) -> None:
    async with camera_client() as client:
        before = await names(client)
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers={"Origin": EVIL, **TEXT})
        message = await refused(response, repr(EVIL), f"--cors-origin {EVIL}", "POST")
        assert "Access-Control-Allow-Origin" not in response.headers
        assert await names(client) == before and "new_cam" not in cameras.configs
        # every other write method, on every kind of write route, is refused the same way
        for method, path in [("DELETE", f"{CAM}/simulation/config"), ("DELETE", CAM),
                             ("PUT", f"{CAM}/script/evil.py/script_bytes"),
                             ("PUT", f"{CAM}/background/x/image_bytes"), ("PATCH", f"{CAM}/nowhere")]:
            response = await client.request(method, path, data=b"print('pwned')", headers={"Origin": EVIL, **TEXT})
            assert await refused(response) == message.replace("POST", method), path
        assert await names(client) == before and "simulation" in cameras.configs
        assert cameras.calls == []
    rows = [row for row in log_buffer.records() if row[1] == "camioc.rest.envelope"]
    assert rows and rows[-1][2] == "WARNING" and "evil.example" in rows[-1][3]


async def test_foreign_origin_script_upload_is_refused(camera_client: ClientFactory, scripts_dir: Path) -> None:
    async with camera_client() as client:
        response = await client.put(f"{CAM}/script/evil.py/script_bytes", data=b"import os",
                                    headers={"Origin": "https://evil.example:8443"})
        await refused(response, "'https://evil.example:8443'", "--cors-origin https://evil.example:8443")
        assert not (scripts_dir / "evil.py").exists()
        listing = await (await client.get(f"{CAM}/script")).json()
        assert "evil.py" not in listing.get("scripts", [])


async def test_null_and_garbage_origins_are_foreign(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    async with camera_client(BrowserPolicy((DASH,))) as client:
        for origin in ("null", "", "file://", "not an origin", "http://dashboard.example:8080.evil.example"):
            response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers={"Origin": origin})
            await refused(response, "Cross-origin request refused")
        assert "new_cam" not in cameras.configs


async def test_foreign_origin_reads_are_served_but_not_readable(camera_client: ClientFactory) -> None:
    async with camera_client() as client:
        response = await client.get(CAM, headers={"Origin": EVIL})
        assert response.status == 200 and (await response.json())["state"] == "ok"
        assert "Access-Control-Allow-Origin" not in response.headers  # the browser hides the answer
        assert response.headers["Vary"] == "Origin"


async def test_pipeline_foreign_origin_writes_change_nothing(pipeline_client: ClientFactory, layout: ConfigLayout) -> None:
    async with pipeline_client() as client:
        before = await names(client, PIPE)
        files = sorted(p.name for p in layout.pipeline_config.iterdir())
        for method, path, body in [
            ("POST", f"{PIPE}/evil_pipeline/config", PIPELINE_CONFIG),  # save a config
            ("POST", PIPE, PIPELINE_CONFIG),  # create an instance
            ("POST", f"{PIPE}/instance/", json.dumps({"instance_id": "evil", "config": {"camera_name": "simulation"}})),
            ("POST", f"{PIPE}/simulation_sp", ""),
            ("PUT", f"{PIPE}/script/evil.py/script_bytes", "import os"),
            ("PUT", f"{PIPE}/lib/evil.py/lib_bytes", "import os"),
            ("DELETE", f"{PIPE}/simulation_sp/config", ""),
            ("DELETE", PIPE, ""),
        ]:
            response = await client.request(method, path, data=body, headers={"Origin": EVIL, **TEXT})
            await refused(response, repr(EVIL), "--cors-origin")
        assert await names(client, PIPE) == before
        assert sorted(p.name for p in layout.pipeline_config.iterdir()) == files
        assert not (layout.user_scripts / "evil.py").exists()
        assert not (layout.user_libs / "evil.py").exists()
        info = await (await client.get(f"{PIPE}/info")).json()
        assert info["info"]["active_instances"] == {}


# ------------------------------------------------------------------------------- allowed origins
async def test_allowed_origin_gets_cors_and_may_write(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    async with camera_client(BrowserPolicy((DASH, "https://other.example"))) as client:
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers={"Origin": DASH, **TEXT})
        assert response.status == 200 and (await response.json())["state"] == "ok"
        assert response.headers["Access-Control-Allow-Origin"] == DASH
        assert response.headers["Vary"] == "Origin"
        assert "new_cam" in await names(client)
        response = await client.get(CAM, headers={"Origin": "https://other.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://other.example"
        # another origin is still refused, and gets no CORS header
        response = await client.delete(f"{CAM}/new_cam/config", headers={"Origin": EVIL})
        await refused(response, repr(EVIL))
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "new_cam" in cameras.configs


async def test_allow_list_entries_are_normalised(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    async with camera_client(BrowserPolicy(("HTTP://Dashboard.Example:80/",))) as client:
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG,
                                     headers={"Origin": "http://dashboard.example"})
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "http://dashboard.example"
        assert "new_cam" in cameras.configs


async def test_own_origin_may_write(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    """A page the server served itself (same host and port as the Host) is no cross-origin page."""
    async with camera_client() as client:
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers={"Origin": own_origin(client)})
        assert response.status == 200 and (await response.json())["state"] == "ok"
        assert "new_cam" in cameras.configs
        # the same host on another port (e.g. the other camioc server) is another origin
        other = f"http://127.0.0.1:{client.port + 1}"
        await refused(await client.delete(f"{CAM}/new_cam/config", headers={"Origin": other}), repr(other))


async def test_preflight_for_allowed_and_refused_origins(camera_client: ClientFactory) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with camera_client(BrowserPolicy((DASH,))) as client:
        response = await client.options(f"{CAM}/simulation/config", headers={"Origin": DASH, **preflight})
        assert response.status == 200 and await response.read() == b""
        assert response.headers["Access-Control-Allow-Origin"] == DASH
        assert response.headers["Access-Control-Allow-Methods"] == "PUT, GET, POST, DELETE, OPTIONS"
        assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
        response = await client.options(f"{CAM}/simulation/config", headers={"Origin": EVIL, **preflight})
        await refused(response, repr(EVIL), "preflight", f"--cors-origin {EVIL}")
        assert not any(key.startswith("Access-Control-") for key in response.headers)


async def test_wildcard_restores_cam_servers_behaviour(camera_client: ClientFactory, cameras: FakeCameras,
                                                       log_buffer: LogBuffer) -> None:
    async with camera_client(BrowserPolicy(("*",))) as client:
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers={"Origin": EVIL, **TEXT})
        assert response.status == 200 and (await response.json())["state"] == "ok"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "new_cam" in cameras.configs
        response = await client.options(CAM, headers={"Origin": EVIL, "Access-Control-Request-Method": "DELETE"})
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    assert any(row[2] == "WARNING" and "every origin" in row[3] for row in log_buffer.records())


# ----------------------------------------------------------------------------- clients without Origin
async def test_clients_without_origin_are_unaffected(camera_client: ClientFactory, cameras: FakeCameras,
                                                     scripts_dir: Path) -> None:
    async with camera_client() as client:
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG)
        assert response.status == 200 and (await response.json())["state"] == "ok"
        assert "new_cam" in cameras.configs
        response = await client.put(f"{CAM}/script/mine.py/script_bytes", data=b"x = 1")
        assert (await response.json())["state"] == "ok" and (scripts_dir / "mine.py").exists()
        response = await client.delete(f"{CAM}/new_cam/config")
        assert (await response.json())["state"] == "ok" and "new_cam" not in cameras.configs
        # cam_server's headers, which only a browser would act upon (and a browser sends Origin)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Vary"] == "Origin"


# ------------------------------------------------------------------------------------- Host check
async def test_wrong_host_is_refused_on_loopback(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    async with camera_client() as client:
        for method in ("GET", "POST", "OPTIONS"):
            response = await client.request(method, f"{CAM}/new_cam/config", data=CAMERA_CONFIG,
                                            headers={"Host": f"rebind.evil.example:{client.port}"})
            await refused(response, f"'rebind.evil.example:{client.port}'", "DNS rebinding",
                          "--allowed-host rebind.evil.example")
        assert "new_cam" not in cameras.configs
        # even with a matching (own) Origin: a rebound page *is* same-origin for the browser
        rebound = {"Host": f"evil.example:{client.port}", "Origin": f"http://evil.example:{client.port}"}
        await refused(await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers=rebound), "Host")
        assert "new_cam" not in cameras.configs
        for host in ("localhost", f"localhost:{client.port}", "LOCALHOST.", "127.0.0.1", f"[::1]:{client.port}", "[::1]"):
            response = await client.get(CAM, headers={"Host": host})
            assert response.status == 200, host


async def test_allowed_host_and_hostname_are_accepted(camera_client: ClientFactory, cameras: FakeCameras) -> None:
    policy = BrowserPolicy(allowed_hosts=("camioc.example", "portal.example:9000"), hostname="myhost.example")
    async with camera_client(policy) as client:
        for host in (f"camioc.example:{client.port}", "camioc.example", "myhost.example:1234", "portal.example:9000"):
            assert (await client.get(CAM, headers={"Host": host})).status == 200, host
        await refused(await client.get(CAM, headers={"Host": "portal.example:9001"}), "'portal.example:9001'")
        await refused(await client.get(CAM, headers={"Host": "evil.example"}), "camioc.example", "myhost.example")
        # a page served under an allowed name may write to it (its own origin)
        headers = {"Host": f"camioc.example:{client.port}", "Origin": f"http://camioc.example:{client.port}"}
        response = await client.post(f"{CAM}/new_cam/config", data=CAMERA_CONFIG, headers=headers)
        assert response.status == 200 and "new_cam" in cameras.configs


async def test_no_host_check_on_other_interfaces_unless_asked(camera_client: ClientFactory) -> None:
    # The policy says where the server listens; the test server itself is on 127.0.0.1.
    async with camera_client(BrowserPolicy(interface="0.0.0.0")) as client:
        assert (await client.get(CAM, headers={"Host": "whatever.example"})).status == 200
        # the Origin rule holds on every interface
        await refused(await client.post(f"{CAM}/x/config", data=CAMERA_CONFIG, headers={"Origin": EVIL}), repr(EVIL))
    async with camera_client(BrowserPolicy(interface="192.0.2.7", allowed_hosts=("camioc.example",))) as client:
        assert (await client.get(CAM, headers={"Host": "camioc.example:8888"})).status == 200
        assert (await client.get(CAM, headers={"Host": "192.0.2.7:8888"})).status == 200
        await refused(await client.get(CAM, headers={"Host": "whatever.example"}), "'whatever.example'")
    async with camera_client(BrowserPolicy(allowed_hosts=("*",))) as client:
        assert (await client.get(CAM, headers={"Host": "whatever.example"})).status == 200


async def test_pipeline_app_checks_host(pipeline_client: ClientFactory) -> None:
    async with pipeline_client() as client:
        await refused(await client.post(f"{PIPE}/evil/config", data=PIPELINE_CONFIG, headers={"Host": "evil.example"}),
                      "'evil.example'")
        assert "evil" not in await names(client, PIPE)


# ---------------------------------------------------------------------------------- options, parsing
def test_command_line_options() -> None:
    args = build_parser().parse_args(["--cors-origin", "http://A.example:8080/", "--cors-origin", "*",
                                      "--allowed-host", "camioc.example", "--allowed-host", "[::1]:8888"])
    assert args.cors_origin == ["http://a.example:8080", "*"]
    assert args.allowed_host == ["camioc.example", "[::1]:8888"]
    defaults = build_parser().parse_args([])
    assert defaults.cors_origin == [] and defaults.allowed_host == []
    for bad in (["--cors-origin", "http://a.example/path"], ["--cors-origin", "null"],
                ["--cors-origin", "a.example"], ["--allowed-host", "a b"], ["--allowed-host", "a:99999"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


def test_origin_host_and_loopback_parsing() -> None:
    assert normalize_origin("https://Example.org:443") == "https://example.org"
    assert normalize_origin("http://[::1]:8888") == "http://[::1]:8888"
    with pytest.raises(ValueError, match="not an origin"):
        normalize_origin("http://user@example.org")
    assert split_host("[::1]:8888") == ("::1", 8888)
    assert split_host("Example.ORG.") == ("example.org", None)
    assert split_host("::1") == ("::1", None)
    assert all(is_loopback(name) for name in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(name) for name in ("0.0.0.0", "::", "192.0.2.7", "camioc.example"))
    assert "Host must be one of" in BrowserPolicy().describe()
    assert "Host not checked" in BrowserPolicy(interface="0.0.0.0").describe()


def test_default_app_policy_is_safe(cameras: FakeCameras, log_buffer: LogBuffer, scripts_dir: Path) -> None:
    app = create_camera_app(cameras, version=VERSION, logs=log_buffer, scripts_dir=scripts_dir, host_stats=False)
    assert isinstance(app, web.Application)
    from camioc.rest.envelope import BROWSER_POLICY

    policy = app[BROWSER_POLICY]
    assert policy == BrowserPolicy() and not policy.any_origin and policy.checks_host
