"""Confinement, through real HTTP: functions, libs, scripts and FILE outputs stay inside their folders.

Real parts: the real pipeline REST app (aiohttp, served on 127.0.0.1 and called with aiohttp's
client) over the real managers. Every refusal is checked to name the allowed
root and to leave nothing behind: no saved config, no instance, no file written, no outside code run
(the outside function leaves a marker file when it is imported).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
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
from camioc.errors import ConfigError
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
                                port_range=(start + 100, start + 200), scripts_dir=layout.user_scripts,
                                data_dir=data_dir)
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


# --------------------------------------------------------------------------- FILE outputs
async def wait_completed(stack: Stack, instance_id: str) -> None:
    deadline = time.monotonic() + 30
    while stack.pipelines.exit_code(instance_id) is None:
        assert time.monotonic() < deadline, "FILE pipeline did not complete"
        await asyncio.sleep(0.1)
    assert stack.pipelines.exit_code(instance_id) == 0


async def test_relative_file_is_written_inside_the_data_folder(stack: Stack) -> None:
    config = {"camera_name": "sim", "mode": "FILE", "file": "runs/%Y/rec.h5", "records": 5}
    created = await ok(await stack.pipe.post(PIPE, json=config))
    await wait_completed(stack, created["instance_id"])
    path = stack.data_dir / "runs" / time.strftime("%Y") / "rec.h5"
    with h5py.File(path, "r") as f:
        assert f["header1/pulse_id"].shape == (5,) and f["data1/image/value"].shape == (5, 48, 64)
    assert not path.with_name("rec.h5.partial").exists()
    # an absolute path that lies inside the data folder is accepted too
    inside = {**config, "file": str(stack.data_dir / "abs.h5")}
    await ok(await stack.pipe.post(f"{PIPE}/inside/config", json=inside))
    created = await ok(await stack.pipe.post(PIPE, json=inside))
    await wait_completed(stack, created["instance_id"])
    assert (stack.data_dir / "abs.h5").is_file()


def outside_names(stack: Stack) -> list[tuple[str, str]]:
    (stack.data_dir / "sub").mkdir(parents=True, exist_ok=True)
    (stack.data_dir / "out_link").symlink_to(stack.outside, target_is_directory=True)
    (stack.data_dir / "sub" / "file_link.h5").symlink_to(stack.outside / "target.h5")
    return [(str(stack.outside / "x.h5"), "an absolute path elsewhere"),
            ("/etc/camioc_x.h5", "an absolute path elsewhere"),
            ("../outside/x.h5", "'..' leads out of it"),
            ("sub/../../outside/x.h5", "'..' leads out of it"),
            ("~/camioc_x.h5", "'~' is the home folder"),
            ("out_link/x.h5", "a symlink leads out of it"),
            ("sub/file_link.h5", "a symlink leads out of it")]


async def test_file_outside_the_data_folder_is_refused_on_save_create_and_update(stack: Stack) -> None:
    root = str(real_path(stack.data_dir))
    await ok(await stack.pipe.post(f"{PIPE}/rec/config", json={"camera_name": "sim", "mode": "FILE",
                                                                "file": "good.h5"}))
    saved_before = (stack.layout.pipeline_config / "rec.json").read_text()
    running = await ok(await stack.pipe.post(PIPE, json={"camera_name": "sim"}))
    for name, how in outside_names(stack):
        config = {"camera_name": "sim", "mode": "FILE", "file": name}
        for response in (await stack.pipe.post(f"{PIPE}/rec/config", json=config),
                         await stack.pipe.post(f"{PIPE}/new_rec/config", json=config),
                         await stack.pipe.post(PIPE, json=config),
                         await stack.pipe.post(f"{PIPE}/instance/", json=config),
                         await stack.pipe.post(f"{PIPE}/instance/{running['instance_id']}/config",
                                               json={"mode": "FILE", "file": name})):
            message = await refused(response, f"Output file '{name}' is outside the data folder {root}", how,
                                    "use a name relative to it")
        assert "--data-dir" in message
    assert (stack.layout.pipeline_config / "rec.json").read_text() == saved_before
    assert "new_rec" not in await saved(stack)
    assert list(await active(stack)) == [running["instance_id"]]
    shown = (await ok(await stack.pipe.get(f"{PIPE}/instance/{running['instance_id']}/config")))["config"]
    assert shown.get("mode") != "FILE" and not shown.get("file")
    assert sorted(p.name for p in stack.outside.iterdir()) == ["evil.py", "secret.txt"]
    assert not Path("/etc/camioc_x.h5").exists() and not Path("~/camioc_x.h5").expanduser().exists()


async def test_a_symlink_swapped_in_after_the_check_is_not_followed(stack: Stack) -> None:
    """The worker resolves the name again right before opening: a folder of the data folder that
    became a link out since the config was saved is refused at start, nothing is written outside."""
    root = str(real_path(stack.data_dir))
    (stack.data_dir / "late").mkdir(parents=True)
    await ok(await stack.pipe.post(f"{PIPE}/late/config", json={"camera_name": "sim", "mode": "FILE",
                                                                 "file": "late/x.h5", "records": 3}))
    (stack.data_dir / "late").rmdir()
    (stack.data_dir / "late").symlink_to(stack.outside, target_is_directory=True)  # the swap
    await refused(await stack.pipe.get(f"{PIPE}/instance/late"), "outside the data folder", root)
    assert sorted(p.name for p in stack.outside.iterdir()) == ["evil.py", "secret.txt"]
    # the worker's own check (the control process's check bypassed): the output refuses to open
    from camioc.config.pipeline import PipelineConfig
    from camioc.core.pipeline_worker import _FileOutput
    from camioc.errors import ConfigError

    (stack.data_dir / "late").unlink()
    (stack.data_dir / "late").mkdir()
    output = _FileOutput(PipelineConfig.from_dict({"camera_name": "sim", "mode": "FILE", "file": "late/x.h5"}),
                         str(stack.data_dir))
    (stack.data_dir / "late").rmdir()
    (stack.data_dir / "late").symlink_to(stack.outside, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside the data folder"):
        output.open()
    # a .partial that became a link out is replaced, never written through
    (stack.data_dir / "late").unlink()
    (stack.data_dir / "late").mkdir()
    (stack.data_dir / "late" / "x.h5.partial").symlink_to(stack.outside / "partial_target")
    output = _FileOutput(PipelineConfig.from_dict({"camera_name": "sim", "mode": "FILE", "file": "late/x.h5"}),
                         str(stack.data_dir))
    output.open()
    output.close()
    assert (stack.data_dir / "late" / "x.h5").is_file() and not (stack.data_dir / "late" / "x.h5").is_symlink()
    assert sorted(p.name for p in stack.outside.iterdir()) == ["evil.py", "secret.txt"]


async def test_without_a_data_folder_file_outputs_are_refused(stack: Stack) -> None:
    bare = PipelineManager(ConfigStore(stack.layout.pipeline_config), stack.cameras,
                           BackgroundStore(stack.layout.background_config), hostname="127.0.0.1",
                           scripts_dir=stack.scripts)
    with pytest.raises(ConfigError, match="no data folder is configured"):
        await bare.save_config("nodata", {"camera_name": "sim", "mode": "FILE", "file": "x.h5"})
    assert "nodata" not in bare.pipeline_names()


# --------------------------------------------------------------------------- --no-user-scripts
@pytest.fixture
async def no_scripts(stack: Stack) -> AsyncIterator[TestClient]:
    stack.pipelines._user_scripts = False  # what --no-user-scripts builds (checked over real servers below)
    app = create_pipeline_app(stack.pipelines, stack.cameras, version=VERSION, logs=LogBuffer(),
                              scripts_dir=stack.scripts, libs_dir=stack.libs, host_stats=False, user_scripts=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_no_user_scripts_refuses_user_functions_and_keeps_builtins(stack: Stack,
                                                                         no_scripts: TestClient) -> None:
    (stack.libs / "mylib.py").write_text("X = 1\n")
    await ok(await no_scripts.post(f"{PIPE}/kept/config", json={"camera_name": "sim"}))
    kept = (stack.layout.pipeline_config / "kept.json").read_text()
    running = await ok(await no_scripts.post(PIPE, json={"camera_name": "sim"}))
    for function in ("good", "good.py", str(stack.scripts / "good.py"), "no_such_function"):
        config = {"camera_name": "sim", "function": function}
        expected = f"user scripts are disabled on this server (--no-user-scripts): function '{function}'"
        for response in (await no_scripts.post(f"{PIPE}/kept/config", json=config),
                         await no_scripts.post(f"{PIPE}/other/config", json=config),
                         await no_scripts.post(PIPE, json=config),
                         await no_scripts.post(f"{PIPE}/instance/", json=config),
                         await no_scripts.post(f"{PIPE}/instance/{running['instance_id']}/config",
                                               json={"function": function})):
            await refused(response, expected, "transparent")
    await refused(await no_scripts.post(f"{PIPE}/kept/config", json={"camera_name": "sim", "libs": ["mylib"]}),
                  "user scripts are disabled on this server (--no-user-scripts): libs ['mylib']")
    assert (stack.layout.pipeline_config / "kept.json").read_text() == kept
    assert "other" not in await saved(stack)
    assert list(await active(stack)) == [running["instance_id"]]
    # a config with a user function saved before (or by hand) does not start
    (stack.layout.pipeline_config / "handmade.json").write_text(json.dumps(
        {"name": "handmade", "camera_name": "sim", "function": "good"}))
    await refused(await no_scripts.get(f"{PIPE}/instance/handmade"), "--no-user-scripts")
    assert list(await active(stack)) == [running["instance_id"]]
    # built-ins keep working, and a user file shadowing a built-in's name is not run
    (stack.scripts / "transparent.py").write_text(EVIL)
    for function in ("default", "transparent", "transparent.py", None):
        await ok(await no_scripts.post(f"{PIPE}/kept/config", json={"camera_name": "sim", "function": function}))
    created = await ok(await no_scripts.post(PIPE, json={"camera_name": "sim", "function": "transparent"}))
    stream = created["stream"]
    message = await asyncio.to_thread(receive_one, stream)
    assert "evil" not in message and "image" in message
    assert not (stack.scripts / "EVIL_RAN").exists()


def receive_one(address: str) -> dict[str, Any]:
    from tests.support.waiting import receive

    return dict(receive(address)[0].data.data)


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
