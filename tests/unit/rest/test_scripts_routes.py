"""User script routes: list, get, put (atomic), delete, name checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from camioc.rest.scripts import ScriptStore

ROOT = "/api/v1/cam/script"


async def call(client: TestClient, method: str, path: str, **kwargs) -> dict:
    response = await client.request(method, path, **kwargs)
    assert response.status == 200
    return await response.json()


async def test_put_get_list_delete(client: TestClient, scripts_dir: Path) -> None:
    assert await call(client, "GET", ROOT) == {"state": "ok", "status": "List of available scripts.", "scripts": []}
    text = "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n    return {'é': 1}\n"
    reply = await call(client, "PUT", f"{ROOT}/my_func.py/script_bytes", data=text.encode())
    assert reply == {"state": "ok", "status": "Script file my_func.py stored."}
    assert (scripts_dir / "my_func.py").read_text(encoding="utf-8") == text
    await call(client, "PUT", f"{ROOT}/other.c/script_bytes", data=b"int f(void) { return 0; }\n")
    (scripts_dir / "notes.txt").write_text("not listed")

    assert (await call(client, "GET", ROOT))["scripts"] == ["my_func.py", "other.c"]
    reply = await call(client, "GET", f"{ROOT}/my_func.py/script_bytes")
    assert reply == {"state": "ok", "status": "Script file 'my_func.py'.", "script": text}

    # Overwrite is atomic and leaves no temporary file behind.
    await call(client, "PUT", f"{ROOT}/my_func.py/script_bytes", data=b"x = 2\n")
    assert (await call(client, "GET", f"{ROOT}/my_func.py/script_bytes"))["script"] == "x = 2\n"
    assert sorted(p.name for p in scripts_dir.iterdir()) == ["my_func.py", "notes.txt", "other.c"]

    assert await call(client, "DELETE", f"{ROOT}/my_func.py/script_bytes") == {
        "state": "ok", "status": "Script file my_func.py deleted."}
    assert (await call(client, "GET", ROOT))["scripts"] == ["other.c"]


@pytest.mark.parametrize(
    ("method", "name", "status"),
    [
        ("GET", "missing.py", "Script 'missing.py' does not exist."),
        ("DELETE", "missing.py", "Script 'missing.py' does not exist."),
        ("PUT", "..evil.py", "Invalid script name '..evil.py': must not contain '..'."),
        ("GET", "..evil.py", "Invalid script name '..evil.py': must not contain '..'."),
        ("PUT", ".hidden.py", "Invalid script name '.hidden.py': must not start with '.'."),
        ("PUT", "run.sh", "Invalid script name 'run.sh': it must end with one of ['.py', '.c']."),
        ("PUT", "%2E%2E%2Fx.py", "Invalid script name '../x.py': must not contain path separators ('/' or '\\')."),
    ],
)
async def test_refusals(client: TestClient, scripts_dir: Path, method: str, name: str, status: str) -> None:
    reply = await call(client, method, f"{ROOT}/{name}/script_bytes", data=b"x = 1\n")
    assert reply == {"state": "error", "status": status}
    assert not scripts_dir.exists() or not any(scripts_dir.iterdir())


async def test_binary_script_is_refused(client: TestClient, scripts_dir: Path) -> None:
    reply = await call(client, "PUT", f"{ROOT}/lib.py/script_bytes", data=b"\x7fELF\xff\xfe")
    assert reply == {"state": "error", "status": "Script 'lib.py' is not UTF-8 text (invalid start byte at byte 4)."}
    assert not (scripts_dir / "lib.py").exists()


def test_store_other_suffixes(tmp_path: Path) -> None:
    store = ScriptStore(tmp_path / "lib", suffixes=(".so",), kind="Library")
    store.write("libx.so", b"\x00\x01")
    assert store.names() == ["libx.so"] and store.read("libx.so") == b"\x00\x01"
    with pytest.raises(ValueError, match=r"Invalid library name 'x\.py': it must end with one of \['\.so'\]\."):
        store.write("x.py", b"")
