"""Confinement, through real HTTP: functions, libs, scripts and FILE outputs stay inside their folders.

Real parts: the real pipeline REST app (aiohttp, served on 127.0.0.1 and called with aiohttp's
client) over the real managers. Every refusal is checked to name the allowed
root and to leave nothing behind: no saved config, no instance, no file written, no outside code run
(the outside function leaves a marker file when it is imported).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from camioc.app import Settings
from camioc.cli import build_parser
from camioc.config.paths import DEFAULT_MAX_UPLOAD_BYTES, default_data_dir, real_path
from camioc.config.store import ConfigLayout, ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.logbuffer import LogBuffer
from camioc.rest.camera_api import create_camera_app
from camioc.rest.pipeline_api import create_pipeline_app

PIPE = "/api/v1/pipeline"
CAM = "/api/v1/cam"
VERSION = "test"
SIM = {"name": "sim", "source": "simulation", "source_type": "simulation", "size_x": 64, "size_y": 48,
       "dtype": "uint16", "image_type": "beam", "frame_rate": 50.0, "no_client_timeout": 0}
#: The function outside the scripts folder: importing it leaves a marker beside it.
EVIL = ("from pathlib import Path\n"
        "Path(__file__).with_name('EVIL_RAN').write_text('ran')\n"
        "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n"
        "    return {'evil': 1}\n")
GOOD = "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n" \
       "    return {'good': 1}\n"
SECRET = "root:x:0:0:secret\n"


@dataclass
class Stack:
    layout: ConfigLayout
    outside: Path
    data_dir: Path
    cameras: CameraManager
    pipelines: PipelineManager
    pipe: TestClient
    cam: TestClient

    @property
    def scripts(self) -> Path:
        return self.layout.user_scripts

    @property
    def libs(self) -> Path:
        return self.layout.user_libs

    def evil_ran(self) -> bool:
        return (self.outside / "EVIL_RAN").exists()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    layout = ConfigLayout(tmp_path / "configs").ensure()
    (layout.camera_config / "sim.json").write_text(json.dumps(SIM))
    (layout.user_scripts / "good.py").write_text(GOOD)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text(EVIL)
    (outside / "secret.txt").write_text(SECRET)
    data_dir = tmp_path / "data"
    start = random.randrange(52000, 60000, 200)
    cameras = CameraManager(ConfigStore(layout.camera_config), hostname="127.0.0.1",
                            port_range=(start, start + 100), background_dir=layout.background_config)
    pipelines = PipelineManager(ConfigStore(layout.pipeline_config), cameras,
                                BackgroundStore(layout.background_config), hostname="127.0.0.1",
                                port_range=(start + 100, start + 200), scripts_dir=layout.user_scripts)
    pipe_app = create_pipeline_app(pipelines, cameras, version=VERSION, logs=LogBuffer(),
                                   scripts_dir=layout.user_scripts, libs_dir=layout.user_libs, host_stats=False)
    cam_app = create_camera_app(cameras, version=VERSION, logs=LogBuffer(), scripts_dir=layout.user_scripts,
                                host_stats=False)
    try:
        async with TestClient(TestServer(pipe_app, host="127.0.0.1")) as pipe, \
                TestClient(TestServer(cam_app, host="127.0.0.1")) as cam:
            yield Stack(layout, outside, data_dir, cameras, pipelines, pipe, cam)
    finally:
        await pipelines.close()
        await cameras.close()


async def answer(response: ClientResponse) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    return await response.json()


async def ok(response: ClientResponse) -> dict[str, Any]:
    body = await answer(response)
    assert body["state"] == "ok", body
    return body


async def refused(response: ClientResponse, *words: str) -> str:
    body = await answer(response)
    assert body["state"] == "error", body
    for word in words:
        assert word in body["status"], body["status"]
    return body["status"]


async def active(stack: Stack) -> dict[str, Any]:
    return (await ok(await stack.pipe.get(f"{PIPE}/info")))["info"]["active_instances"]


async def saved(stack: Stack) -> list[str]:
    return (await ok(await stack.pipe.get(PIPE)))["pipelines"]


# --------------------------------------------------------------------------- functions
@pytest.mark.parametrize("function", ["../outside/evil.py", "../../configs/../outside/evil", "../outside/evil"])
async def test_function_traversal_is_refused_on_save_and_create(stack: Stack, function: str) -> None:
    root = str(real_path(stack.scripts))
    config = {"camera_name": "sim", "function": function}
    message = await refused(await stack.pipe.post(f"{PIPE}/trav/config", json=config),
                            "outside the user scripts folder", root)
    assert "'..' leads out of it" in message
    await refused(await stack.pipe.post(f"{PIPE}/instance/", json=config), "outside the user scripts folder", root)
    await refused(await stack.pipe.post(PIPE, json=config), "outside the user scripts folder", root)
    assert "trav" not in await saved(stack)
    assert await active(stack) == {}
    assert not stack.evil_ran()


async def test_absolute_function_outside_is_refused_inside_is_accepted(stack: Stack) -> None:
    root = str(real_path(stack.scripts))
    config = {"camera_name": "sim", "function": str(stack.outside / "evil.py")}
    message = await refused(await stack.pipe.post(f"{PIPE}/abs/config", json=config),
                            "outside the user scripts folder", root)
    assert "an absolute path elsewhere" in message
    await refused(await stack.pipe.post(f"{PIPE}/instance/", json=config), root)
    assert "abs" not in await saved(stack) and await active(stack) == {}
    # cam_server's way (a bare name of a file in the scripts folder) and an absolute path inside it work
    for function in ("good", "good.py", str(stack.scripts / "good.py")):
        await ok(await stack.pipe.post(f"{PIPE}/abs/config", json={"camera_name": "sim", "function": function}))
    assert not stack.evil_ran()


async def test_function_symlink_out_of_the_folder_is_refused_on_save_and_start(stack: Stack) -> None:
    root = str(real_path(stack.scripts))
    (stack.scripts / "linked.py").symlink_to(stack.outside / "evil.py")
    config = {"camera_name": "sim", "function": "linked.py"}
    message = await refused(await stack.pipe.post(f"{PIPE}/link/config", json=config),
                            "outside the user scripts folder", root)
    assert "a symlink leads out of it" in message
    await refused(await stack.pipe.post(f"{PIPE}/instance/", json=config), root)
    assert "linked.py" not in (await ok(await stack.pipe.get(f"{PIPE}/script")))["scripts"]
    # a config file edited by hand on the server is refused when its instance starts
    (stack.layout.pipeline_config / "handmade.json").write_text(json.dumps({"name": "handmade", **config}))
    (stack.layout.pipeline_config / "handmade2.json").write_text(json.dumps(
        {"name": "handmade2", "camera_name": "sim", "function": "../outside/evil.py"}))
    for name in ("handmade", "handmade2"):
        await refused(await stack.pipe.get(f"{PIPE}/instance/{name}"), "outside the user scripts folder", root)
    assert await active(stack) == {}
    assert not stack.evil_ran()


async def test_live_update_to_a_function_outside_is_refused(stack: Stack) -> None:
    created = await ok(await stack.pipe.post(PIPE, json={"camera_name": "sim"}))  # a private instance
    instance_id = created["instance_id"]
    await refused(await stack.pipe.post(f"{PIPE}/instance/{instance_id}/config",
                                        json={"function": "../outside/evil.py"}),
                  "outside the user scripts folder", str(real_path(stack.scripts)))
    shown = (await ok(await stack.pipe.get(f"{PIPE}/instance/{instance_id}/config")))["config"]
    assert shown.get("function") is None
    assert not stack.evil_ran()


# --------------------------------------------------------------------------- libs
async def test_lib_traversal_and_symlink_out_are_refused(stack: Stack) -> None:
    libs_root = str(stack.libs)
    (stack.libs / "passwd").symlink_to(stack.outside / "secret.txt")
    (stack.libs / "mylib.py").write_text("X = 1\n")
    for libs in (["../../outside/evil.py"], ["/etc/passwd"]):
        await refused(await stack.pipe.post(f"{PIPE}/lib_trav/config", json={"camera_name": "sim", "libs": libs}),
                      "outside the libs folder", libs_root)
    await refused(await stack.pipe.post(f"{PIPE}/lib_link/config", json={"camera_name": "sim", "libs": ["passwd"]}),
                  "outside the libs folder", str(real_path(stack.libs)), "a symlink leads out of it")
    await refused(await stack.pipe.post(f"{PIPE}/instance/", json={"camera_name": "sim", "libs": ["passwd"]}),
                  "outside the libs folder")
    assert not {"lib_trav", "lib_link"} & set(await saved(stack))
    await ok(await stack.pipe.post(f"{PIPE}/lib_ok/config", json={"camera_name": "sim", "libs": ["mylib"]}))


async def test_lib_and_script_bytes_never_go_through_a_symlink_out(stack: Stack) -> None:
    (stack.libs / "passwd").symlink_to(stack.outside / "secret.txt")
    (stack.scripts / "passwd.py").symlink_to(stack.outside / "secret.txt")
    # GET: refused, the secret is not in the answer (the attack of issue 11)
    for url in (f"{PIPE}/lib/passwd/lib_bytes", f"{PIPE}/script/passwd.py/script_bytes",
                f"{CAM}/script/passwd.py/script_bytes"):
        client = stack.cam if url.startswith(CAM) else stack.pipe
        response = await client.get(url)
        message = await refused(response, "outside the", "a symlink leads out of it")
        assert "root:x" not in message and str(stack.outside) not in message  # neither content nor target
    # PUT: refused, the target is unchanged
    await refused(await stack.pipe.put(f"{PIPE}/lib/passwd/lib_bytes", data=b"overwritten"), "libs folder")
    await refused(await stack.pipe.put(f"{PIPE}/script/passwd.py/script_bytes", data=b"x = 1\n"), "scripts folder")
    assert (stack.outside / "secret.txt").read_text() == SECRET
    # listings do not offer them; DELETE removes the link only
    assert "passwd" not in (await ok(await stack.pipe.get(f"{PIPE}/lib")))["libs"]
    assert "passwd.py" not in (await ok(await stack.pipe.get(f"{PIPE}/script")))["scripts"]
    await ok(await stack.pipe.delete(f"{PIPE}/lib/passwd/lib_bytes"))
    assert not (stack.libs / "passwd").is_symlink() and (stack.outside / "secret.txt").read_text() == SECRET
    # names are confined to the folder (path separators, '..': refused before anything is touched)
    for name in ("..%2F..%2Foutside%2Fevil.py", "%2Fetc%2Fevil.py", ".hidden.py"):
        await refused(await stack.pipe.put(f"{PIPE}/script/{name}/script_bytes", data=b"x = 1\n"))
    assert (stack.outside / "evil.py").read_text() == EVIL


# --------------------------------------------------------------------------- upload sizes
async def test_uploads_above_the_default_limit_are_refused(stack: Stack) -> None:
    big = b"#" * (DEFAULT_MAX_UPLOAD_BYTES + 1)
    for client, url in ((stack.pipe, f"{PIPE}/script/big.py/script_bytes"),
                        (stack.cam, f"{CAM}/script/big.py/script_bytes"),
                        (stack.pipe, f"{PIPE}/lib/big.so/lib_bytes")):
        await refused(await client.put(url, data=big), "larger than the limit of 10 MB (10485760 bytes)",
                      "--max-upload-size")
    assert not (stack.scripts / "big.py").exists() and not (stack.libs / "big.so").exists()
    at_limit = b"#" * DEFAULT_MAX_UPLOAD_BYTES
    await ok(await stack.pipe.put(f"{PIPE}/script/fits.py/script_bytes", data=at_limit))
    assert (stack.scripts / "fits.py").stat().st_size == DEFAULT_MAX_UPLOAD_BYTES


async def test_a_configured_limit_also_holds_for_chunked_uploads(stack: Stack) -> None:
    app = create_pipeline_app(stack.pipelines, stack.cameras, version=VERSION, logs=LogBuffer(),
                              scripts_dir=stack.scripts, libs_dir=stack.libs, host_stats=False,
                              max_upload_bytes=4096)

    async def chunks(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // 1024):
            yield b"#" * 1024

    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await refused(await client.put(f"{PIPE}/script/small.py/script_bytes", data=b"#" * 4097),
                      "larger than the limit of 4 kB (4096 bytes)")
        # no Content-Length: refused once more than the limit arrived
        await refused(await client.put(f"{PIPE}/lib/chunked.bin/lib_bytes", data=chunks(64 * 1024)),
                      "larger than the limit of 4 kB")
        assert not (stack.scripts / "small.py").exists() and not (stack.libs / "chunked.bin").exists()
        await ok(await client.put(f"{PIPE}/lib/chunked.bin/lib_bytes", data=chunks(4096)))
        assert (stack.libs / "chunked.bin").stat().st_size == 4096


# --------------------------------------------------------------------------- command line
def test_data_dir_and_upload_limit_options(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--base", str(tmp_path / "configs")])
    assert args.data_dir is None and args.max_upload_size == DEFAULT_MAX_UPLOAD_BYTES
    assert Settings(base=tmp_path / "configs").effective_data_dir == default_data_dir(tmp_path / "configs") \
        == real_path(tmp_path) / "data"
    args = build_parser().parse_args(["--data-dir", str(tmp_path / "d"), "--max-upload-size", "2M"])
    assert args.data_dir == tmp_path / "d" and args.max_upload_size == 2 * 1024 * 1024
    assert Settings(base=tmp_path, data_dir=tmp_path / "d").effective_data_dir == tmp_path / "d"
    helptext = build_parser().format_help()
    assert "--data-dir" in helptext and "--max-upload-size" in helptext
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-upload-size", "lots"])
