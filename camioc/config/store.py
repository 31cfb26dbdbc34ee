"""Config files on disk: one file per camera / pipeline, cam_server's folder layout (compat §1.6).

``ConfigStore(folder)`` holds ``<name>.json`` files (also reads ``<name>.yaml``/``<name>.yml``).
It stores raw mappings; validation into :class:`~camioc.config.camera.CameraConfig` /
:class:`~camioc.config.pipeline.PipelineConfig` is the caller's business (one place per concern).

Decisions:

* Names are validated with :func:`~camioc.config.names.validate_name` before any file access, in
  every method (camioc decision 5); names that are not configs in cam_server's layout
  (``servers``, ``permanent_instances``, ``*_parameters``, ``*_background``) are refused by
  :meth:`ConfigStore.save` and never listed.
* Writes are atomic: the new content goes to a hidden temp file in the same folder, is flushed and
  fsync'ed, then ``os.replace``'d over the old file (and the folder is fsync'ed). A failing write
  leaves the old file intact and no temp file behind. The file mode of an existing file is kept
  (new files get ``0o666 & ~umask``, as a plain ``open`` would).
* JSON is written as cam_server does (``indent=1``), non-ASCII kept as is, UTF-8.
* YAML: a config whose file is ``.yaml``/``.yml`` is saved back to that same file as YAML (the
  operator chose the format; YAML comments are not preserved); new configs are JSON. If both a
  JSON and a YAML file exist for one name, the JSON file wins (``.json`` > ``.yaml`` > ``.yml``)
  and :meth:`ConfigStore.delete` removes all of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from camioc.config.names import is_valid_name, validate_name
from camioc.errors import ConfigError, InvalidNameError, NotFoundError

log = logging.getLogger(__name__)
#: What an interrupted atomic write leaves: ``tempfile.mkstemp(prefix='.<name>.', suffix='.tmp')``
#: (config, background, script saves) or the server state's ``.camioc_state.<random>``.
_LEFTOVER = re.compile(r"\.(?:.+\.[A-Za-z0-9_]{8}\.tmp|camioc_state\.[A-Za-z0-9_]{8})")

#: File suffixes of configs, in order of precedence.
CONFIG_SUFFIXES: tuple[str, ...] = (".json", ".yaml", ".yml")
#: Names in a config folder that are not configs (cam_server's manager files).
RESERVED_NAMES: frozenset[str] = frozenset({"servers", "permanent_instances"})
#: Name endings that are not configs (cam_server's ``get_available_configs``).
RESERVED_SUFFIXES: tuple[str, ...] = ("_parameters", "_background")

_YAML_SUFFIXES = (".yaml", ".yml")


def is_config_name(name: str) -> bool:
    """Whether ``name`` may name a config file (valid and not one of cam_server's other files)."""
    return is_valid_name(name) and name not in RESERVED_NAMES and not name.endswith(RESERVED_SUFFIXES)


class ConfigStore:
    """A folder of config files, one per name. Not cached: every call reads the disk."""

    def __init__(self, folder: Path | str, kind: str = "config") -> None:
        """Args:
        folder: the folder (created by :meth:`save` if missing).
        kind: what the configs are ("camera", "pipeline"), used in name-error messages.
        """
        self.folder = Path(folder)
        self.kind = kind

    def __repr__(self) -> str:
        return f"ConfigStore({str(self.folder)!r}, kind={self.kind!r})"

    # ---------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Sorted names of the configs in the folder (hidden, temp and non-config files excluded)."""
        try:
            entries = list(self.folder.iterdir())
        except FileNotFoundError:
            return []
        names = {
            entry.stem
            for entry in entries
            if entry.suffix in CONFIG_SUFFIXES and is_config_name(entry.stem) and entry.is_file()
        }
        return sorted(names)

    def exists(self, name: str) -> bool:
        """Whether a config ``name`` exists. Raises InvalidNameError for an invalid name."""
        return self._find(name) is not None

    def path(self, name: str) -> Path:
        """The file of config ``name``: the existing one, else where :meth:`save` would write it."""
        found = self._find(name)
        return found if found is not None else self.folder / f"{name}.json"

    def load(self, name: str) -> dict[str, Any]:
        """The raw mapping stored for ``name`` (not validated, not expanded).

        Raises:
            InvalidNameError: invalid name.
            NotFoundError: ``Config '<name>' does not exist.``
            ConfigError: the file is not valid JSON/YAML or does not hold a mapping (names the file).
        """
        path = self._find(name)
        if path is None:
            raise NotFoundError(f"Config '{name}' does not exist.")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:  # deleted since _find
            raise NotFoundError(f"Config '{name}' does not exist.") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"Config file '{path}' is not valid UTF-8: {exc}") from exc
        return _parse(path, text)

    def save(self, name: str, config: Mapping[str, Any]) -> None:
        """Write ``config`` as config ``name`` atomically, with ``config["name"] = name``.

        Raises:
            InvalidNameError: invalid or reserved name (nothing written).
            ConfigError: ``config`` is not a mapping or holds values JSON cannot represent.
            OSError: the write failed; the previous file, if any, is unchanged.
        """
        self._check_name(name)
        if name in RESERVED_NAMES or name.endswith(RESERVED_SUFFIXES):
            raise InvalidNameError(
                f"Invalid {self.kind} name {name!r}: reserved (servers, permanent_instances, "
                "*_parameters and *_background files are not configs)."
            )
        if not isinstance(config, Mapping):
            raise ConfigError(f"Config object must be a JSON object (mapping), got {type(config).__name__}.")
        data = dict(config)
        data["name"] = name
        target = self._find(name) or self.folder / f"{name}.json"
        text = _dump(target, data)
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, text)

    def delete(self, name: str) -> None:
        """Delete config ``name`` (every file of it).

        Raises:
            InvalidNameError: invalid name.
            NotFoundError: ``Config '<name>' does not exist.``
        """
        self._check_name(name)
        paths = [p for p in self._candidates(name) if p.is_file()] if is_config_name(name) else []
        if not paths:
            raise NotFoundError(f"Config '{name}' does not exist.")
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        _fsync_dir(self.folder)

    # ---------------------------------------------------------------------------------------
    def _check_name(self, name: str) -> None:
        validate_name(name, f"{self.kind} name")

    def _candidates(self, name: str) -> list[Path]:
        return [self.folder / f"{name}{suffix}" for suffix in CONFIG_SUFFIXES]

    def _find(self, name: str) -> Path | None:
        self._check_name(name)
        if not is_config_name(name):
            return None
        for path in self._candidates(name):
            if path.is_file():
                return path
        return None


@dataclass(frozen=True)
class ConfigLayout:
    """cam_server's configuration folder layout under ``base`` (compat §1.6)."""

    base: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", Path(self.base))

    @property
    def camera_config(self) -> Path:
        return self.base / "camera_config"

    @property
    def pipeline_config(self) -> Path:
        return self.base / "pipeline_config"

    @property
    def background_config(self) -> Path:
        return self.base / "background_config"

    @property
    def user_scripts(self) -> Path:
        return self.base / "user_scripts"

    @property
    def user_libs(self) -> Path:
        return self.user_scripts / "lib"

    def ensure(self) -> ConfigLayout:
        """Create every folder (parents included) and remove what interrupted saves left; returns self."""
        for folder in (self.camera_config, self.pipeline_config, self.background_config, self.user_libs):
            folder.mkdir(parents=True, exist_ok=True)
        self.remove_leftover_temporaries()
        return self

    def remove_leftover_temporaries(self) -> list[Path]:
        """Delete the temporary files of saves a crash interrupted (``.<name>.<random>.tmp``, written
        beside their target and renamed over it when complete). Call at start only, when no save
        can be running. Returns what was removed (each is logged)."""
        removed: list[Path] = []
        folders = (self.base, self.camera_config, self.pipeline_config, self.background_config, self.user_scripts,
                   self.user_libs)
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _LEFTOVER.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed.append(path)
                        log.warning("removed %s, left by an interrupted save", path)
        return removed

    def camera_store(self) -> ConfigStore:
        return ConfigStore(self.camera_config, kind="camera")

    def pipeline_store(self) -> ConfigStore:
        return ConfigStore(self.pipeline_config, kind="pipeline")


# ------------------------------------------------------------------------------------------------
# file formats and atomic writes


def _parse(path: Path, text: str) -> dict[str, Any]:
    if path.suffix in _YAML_SUFFIXES:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Config file '{path}' is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config file '{path}' does not hold a mapping (got {type(data).__name__}).")
    if path.suffix in _YAML_SUFFIXES:
        try:  # YAML can hold what JSON cannot (dates, sets, non-string keys)
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Config file '{path}' holds values that cannot be represented in JSON: {exc}") from exc
        if not all(isinstance(k, str) for k in data):
            raise ConfigError(f"Config file '{path}' has non-string keys.")
    return data


def _dump(path: Path, data: Mapping[str, Any]) -> str:
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Config cannot be written: a value cannot be represented in JSON: {exc}") from exc
    if path.suffix in _YAML_SUFFIXES:
        return yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _atomic_write(target: Path, text: str) -> None:
    """Replace ``target`` by ``text``: hidden temp file in the same folder, fsync, os.replace."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename/unlink in ``folder`` durable (best effort; not all platforms allow it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where possible (os.umask is process-wide)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


__all__ = [
    "CONFIG_SUFFIXES",
    "RESERVED_NAMES",
    "RESERVED_SUFFIXES",
    "ConfigLayout",
    "ConfigStore",
    "is_config_name",
]
