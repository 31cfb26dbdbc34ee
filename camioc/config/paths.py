"""Confinement: the folders a client may name files in, and nothing outside them.

A client names files in three places; each resolves only inside one root folder of the server:

* ``function`` and ``libs`` of a pipeline config: the user scripts folder (``<base>/user_scripts``,
  libs in its ``lib/``) and camioc's built-in functions (see :mod:`camioc.processing.functions`);
* the REST script and lib routes (``.../script/<name>/script_bytes``, ``.../lib/<name>/lib_bytes``):
  the same folders, plain file names only, never through a symlink that leads out;
* ``file`` of a ``mode: FILE`` pipeline: the data folder (``--data-dir``, default
  :func:`default_data_dir`, a ``data`` folder beside the configuration folder). A relative name is
  resolved inside it (cam_server's bare file names keep working), an absolute path is accepted only
  if it lies inside it.

"Inside" is decided on the real path: ``..`` components are collapsed and every symlink is
followed (:func:`os.path.realpath`), so ``../../x``, ``/etc/x`` and a symlink in the folder that
points elsewhere are all refused with :class:`ConfigError` naming the allowed root. A path that
does not exist yet (an HDF5 file about to be written) is judged by the real path of its existing
part.
"""

from __future__ import annotations

import os
from pathlib import Path

from camioc.errors import ConfigError

#: Default limit of one script or lib upload (bytes).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: The name of the default data folder, beside the configuration folder.
DATA_FOLDER_NAME = "data"

__all__ = [
    "DATA_FOLDER_NAME",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "confined_path",
    "default_data_dir",
    "format_bytes",
    "is_inside",
    "real_path",
]


def real_path(path: Path | str) -> Path:
    """``path`` made absolute with ``..`` collapsed and every symlink followed (also for a path
    whose last components do not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def is_inside(path: Path | str, root: Path | str) -> bool:
    """Whether the real path of ``path`` is ``root`` or below it (both resolved, symlinks followed)."""
    return real_path(path).is_relative_to(real_path(root))


def default_data_dir(base: Path | str) -> Path:
    """The default data folder of a server whose configuration folder is ``base``: ``data`` beside
    it (``/srv/camioc/configs`` -> ``/srv/camioc/data``)."""
    return real_path(base).parent / DATA_FOLDER_NAME


def confined_path(name: str | Path, root: Path | str, *, what: str, root_name: str) -> Path:
    """The real path of ``name`` inside ``root``; refuse anything that leads out of it.

    A relative ``name`` is taken relative to ``root``; an absolute one must already point inside
    it. ``what`` names the thing in the message (``"File 'x.h5'"``), ``root_name`` the folder
    (``"data folder"``, ``"user scripts folder"``).

    Raises:
        ConfigError: ``"<what> is outside the <root_name> <root>: ..."`` for a traversal
            (``../x``), an absolute path elsewhere or a symlink leading out; or for a name with
            a NUL character.
    """
    text = os.fspath(name)
    if "\0" in text:
        raise ConfigError(f"{what} refused: the name contains a NUL character.")
    top = real_path(root)
    candidate = Path(text)
    resolved = real_path(top / candidate)  # an absolute candidate stays itself
    if not resolved.is_relative_to(top):
        if Path(os.path.normpath(top / candidate)).is_relative_to(top):
            how = "a symlink leads out of it"
        elif candidate.is_absolute():
            how = "an absolute path elsewhere"
        else:
            how = "'..' leads out of it"
        raise ConfigError(f"{what} is outside the {root_name} {top} ({how}): only files inside {top} are allowed.")
    return resolved


def format_bytes(size: int) -> str:
    """``10485760`` -> ``"10 MB (10485760 bytes)"`` (MB = 2**20 bytes), for limit messages."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MB ({size} bytes)"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} kB ({size} bytes)"
    return f"{size} bytes"
