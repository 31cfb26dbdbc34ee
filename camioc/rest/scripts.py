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

Confinement (:mod:`camioc.config.paths`): a file of the folder that is a symlink leading out of it
is neither listed, served nor overwritten (refused with an error naming the folder; ``DELETE``
removes the link itself, never its target). An upload larger than :attr:`ScriptStore.max_bytes`
(default :data:`~camioc.config.paths.DEFAULT_MAX_UPLOAD_BYTES`, 10 MB; ``camioc
--max-upload-size``) is refused with an error naming the limit, before more than the limit is read.

User scripts can be switched off (``camioc --no-user-scripts``: :attr:`ScriptStore.uploads` false):
then every upload (``PUT``) is refused with :class:`UserScriptsDisabledError` before the body is
read; listing, reading and deleting stay possible (deleting removes code, it never adds any).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from camioc.config.names import validate_name
from camioc.config.paths import DEFAULT_MAX_UPLOAD_BYTES, confined_path, format_bytes, is_inside
from camioc.errors import CamiocError, ConfigError, NotFoundError
from camioc.rest.routing import Routes

#: Bytes read from an upload body at a time.
UPLOAD_CHUNK = 64 * 1024


class UserScriptsDisabledError(PermissionError, CamiocError):
    """A script or lib upload while user scripts are switched off (``--no-user-scripts``)."""


class ScriptStore:
    """A folder of user scripts: list, read, write (atomically), delete.

    The pipeline API reuses it for user libraries (``lib/``, any file name: ``suffixes=None``).
    """

    def __init__(
        self, folder: Path, suffixes: tuple[str, ...] | None = (".py", ".c"), kind: str = "Script",
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, uploads: bool = True,
    ) -> None:
        """``suffixes=None`` accepts any (valid) file name, e.g. for binary libraries; ``max_bytes``
        is the largest upload accepted; ``uploads=False`` refuses every upload (user scripts off)."""
        self.folder = Path(folder)
        self.suffixes = suffixes
        self.kind = kind
        self.max_bytes = max_bytes
        self.uploads = uploads

    def check_uploads(self, name: str) -> None:
        """Refuse an upload when user scripts are switched off."""
        if not self.uploads:
            raise UserScriptsDisabledError(
                f"{self.kind} '{name}' refused: user scripts are switched off on this server "
                f"(camioc --no-user-scripts); nothing was stored.")

    def _accepts(self, name: str) -> bool:
        return self.suffixes is None or name.endswith(self.suffixes)

    def _entry(self, name: str) -> Path:
        """The folder entry of a valid name (not resolved: may be a symlink)."""
        validate_name(name, f"{self.kind.lower()} name")
        if not self._accepts(name):
            raise ConfigError(
                f"Invalid {self.kind.lower()} name '{name}': it must end with one of {list(self.suffixes or ())}."
            )
        return self.folder / name

    def path(self, name: str) -> Path:
        """The file of ``name``; refused if it is a symlink leading out of the folder."""
        entry = self._entry(name)
        confined_path(entry, self.folder, what=f"{self.kind} '{name}'", root_name=f"{self.kind.lower()}s folder")
        return entry

    def check_size(self, name: str, size: int) -> None:
        """Refuse an upload of ``size`` bytes above :attr:`max_bytes`."""
        if size > self.max_bytes:
            raise ConfigError(f"{self.kind} '{name}' refused: the upload is larger than the limit of "
                              f"{format_bytes(self.max_bytes)} (camioc --max-upload-size).")

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.folder.iterdir()
            if entry.is_file() and self._accepts(entry.name) and not entry.name.startswith(".")
            and is_inside(entry, self.folder)
        )

    def read(self, name: str) -> bytes:
        path = self.path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{self.kind} '{name}' does not exist.") from None

    def write(self, name: str, data: bytes) -> None:
        self.check_uploads(name)
        self.check_size(name, len(data))
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
        path = self._entry(name)  # unlink removes a symlink itself, never what it points to
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFoundError(f"{self.kind} '{name}' does not exist.") from None


async def read_upload(request: web.Request, store: ScriptStore, name: str) -> bytes:
    """The body of an upload to ``store``, refused (``ConfigError`` naming the limit) as soon as it
    is known to exceed :attr:`ScriptStore.max_bytes`: from ``Content-Length`` before anything is
    read, else once more than the limit arrived. Refused at once if uploads are switched off."""
    store.check_uploads(name)
    if request.content_length is not None:
        store.check_size(name, request.content_length)
    data = bytearray()
    async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
        data += chunk
        store.check_size(name, len(data))
    return bytes(data)


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
        data = await read_upload(request, store, name)
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


__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "UPLOAD_CHUNK",
    "ScriptStore",
    "UserScriptsDisabledError",
    "add_script_routes",
    "read_upload",
]
