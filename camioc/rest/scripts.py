"""User script upload routes, shared by the camera and pipeline APIs (cam_server ``/script``).

Routes under ``<root>`` (``/api/v1/cam`` or ``/api/v1/pipeline``):

* ``GET <root>/script`` -> ``scripts``: names of the stored scripts (``*.py``, ``*.c``), sorted;
* ``GET <root>/script/<name>/script_bytes`` -> ``script``: the file's text;
* ``PUT <root>/script/<name>/script_bytes`` (body: the file's bytes, UTF-8 text) -> stored;
* ``DELETE <root>/script/<name>/script_bytes`` -> removed.

Both servers share one folder (``<base>/user_scripts``), as in cam_server. Names are validated
with :func:`camioc.config.names.validate_name` (no path separators, no ``..``, no leading dot)
and must end in one of :attr:`ScriptStore.suffixes`; writes are atomic (temporary file in the
same folder, fsync, rename), so a pipeline importing a script never sees half a file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from camioc.config.names import validate_name
from camioc.errors import ConfigError, NotFoundError
from camioc.rest.envelope import read_body
from camioc.rest.routing import Routes


class ScriptStore:
    """A folder of user scripts: list, read, write (atomically), delete.

    The pipeline API reuses it for user libraries (``lib/``, any file name: ``suffixes=None``).
    """

    def __init__(
        self, folder: Path, suffixes: tuple[str, ...] | None = (".py", ".c"), kind: str = "Script"
    ) -> None:
        """``suffixes=None`` accepts any (valid) file name, e.g. for binary libraries."""
        self.folder = Path(folder)
        self.suffixes = suffixes
        self.kind = kind

    def _accepts(self, name: str) -> bool:
        return self.suffixes is None or name.endswith(self.suffixes)

    def path(self, name: str) -> Path:
        validate_name(name, f"{self.kind.lower()} name")
        if not self._accepts(name):
            raise ConfigError(
                f"Invalid {self.kind.lower()} name '{name}': it must end with one of {list(self.suffixes or ())}."
            )
        return self.folder / name

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.folder.iterdir()
            if entry.is_file() and self._accepts(entry.name) and not entry.name.startswith(".")
        )

    def read(self, name: str) -> bytes:
        path = self.path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{self.kind} '{name}' does not exist.") from None

    def write(self, name: str, data: bytes) -> None:
        path = self.path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFoundError(f"{self.kind} '{name}' does not exist.") from None


def add_script_routes(routes: Routes, root: str, store: ScriptStore) -> None:
    """Register the ``<root>/script`` routes on ``routes``."""

    async def list_scripts(request: web.Request) -> dict[str, Any]:
        return {"status": "List of available scripts.", "scripts": await asyncio.to_thread(store.names)}

    async def get_script(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        data = await asyncio.to_thread(store.read, name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"Script '{name}' is not UTF-8 text.") from None
        return {"status": f"Script file '{name}'.", "script": text}

    async def put_script(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        store.path(name)  # refuse a bad name before reading the body
        data = await read_body(request)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"Script '{name}' is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
        await asyncio.to_thread(store.write, name, data)
        return {"status": f"Script file {name} stored."}

    async def delete_script(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        await asyncio.to_thread(store.delete, name)
        return {"status": f"Script file {name} deleted."}

    routes.get(f"{root}/script", list_scripts)
    routes.get(f"{root}/script/{{name}}/script_bytes", get_script)
    routes.put(f"{root}/script/{{name}}/script_bytes", put_script)
    routes.delete(f"{root}/script/{{name}}/script_bytes", delete_script)


__all__ = ["ScriptStore", "add_script_routes"]
