"""The input-side pipeline parameters: checked when a config is saved or started, applied by the worker.

cam_server accepts many input keys that camioc honours here (compat §2.1, §2.2 item 4, §3.3):

* ``bsread_*`` / ``*2`` / ``merge_*`` / ``dispatcher_url``: a second bsread input merged by pulse
  id (:mod:`camioc.core.merge`). ``bsread_channels`` without ``bsread_address`` reads from the
  dispatcher: camioc's dispatcher is a **bsread stream address** given with ``--dispatcher-url``
  (or the config's ``dispatcher_url``), not the SwissFEL HTTP dispatcher API; the listed channels
  are the ones merged.
* ``enforce_pid``, ``enforce_timestamp``, ``check_timestamp``: :class:`OutputOrder`.
* ``stream_timeout``: a stream input (``input_stream``, a stream pipeline's ``bsread_address``)
  silent for that long is reconnected (:func:`is_stream_input`).
* ``receive_timeout`` (ms): how long one receive waits (:func:`receive_wait`).
* ``libs``: uploaded libraries importable by the function (:func:`prepare_libs`).

It also confines what a config names (:mod:`camioc.config.paths`): ``function`` and ``libs`` only
inside the user scripts folder (and the built-ins), ``file`` (``mode: FILE``) only inside the data
folder (:func:`data_file`); anything leading out is refused with an error naming the allowed root.

:func:`check_input_config` refuses, with a message naming the key, every input key camioc cannot
honour for the given config, so nothing is stored and then ignored.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from camioc.config.paths import confined_path, real_path
from camioc.core.merge import (
    IMAGE_PIPELINE_TYPES,
    MAX_DATA_BUFFER,
    MAX_IMAGE_BUFFER,
    Settings,
    channel_list,
    merge_settings,
    setting,
)
from camioc.errors import ConfigError, ProcessingError

#: Keys of the bsread merge into an image pipeline (besides bsread_address/bsread_channels).
BSDATA_KEYS: tuple[str, ...] = ("bsread_image_buf", "bsread_data_buf")
#: Keys of the second input of a stream pipeline.
STREAM2_KEYS: tuple[str, ...] = ("bsread_address2", "bsread_channels2", "bsread_mode2", "input_stream2",
                                 "input_mode2", "merge_queue_size", "merge_buffer_size")
#: Options of the SwissFEL HTTP dispatcher client; camioc's dispatcher is a bsread stream.
HTTP_DISPATCHER_KEYS: dict[str, bool] = {"dispatcher_verify_request": True, "dispatcher_disable_compression": False}
#: Library files put on sys.path themselves (zip imports), not just their folder.
ZIP_LIBS: tuple[str, ...] = (".zip", ".egg", ".whl")
#: Longest wait of one receive: the worker handles commands (stop, config) between receives.
MAX_RECEIVE_WAIT = 1.0
DEFAULT_RECEIVE_WAIT = 0.1
#: cam_server's ``stream_timeout`` default (seconds).
DEFAULT_STREAM_TIMEOUT = 10.0


def _set(config: Settings, key: str) -> bool:
    """cam_server's "given": not None and not an empty list/string."""
    value = setting(config, key)
    return value is not None and value != [] and value != () and value != ""


def check_input_config(config: Mapping[str, Any], *, dispatcher_url: str | None, libs_dir: Path | None,
                       scripts_dir: Path | None = None, data_dir: Path | None = None,
                       user_scripts: bool = True) -> None:
    """Refuse a config whose input keys camioc cannot honour; return None if it is fine.

    ``scripts_dir`` (default: the parent of ``libs_dir``) confines ``function``; ``data_dir``
    confines ``file`` of a ``mode: FILE`` config (None: a FILE output is refused, there is no
    folder it may write in); ``user_scripts=False`` (``--no-user-scripts``) refuses every
    ``function`` that is not a built-in and every ``libs`` (:func:`check_user_scripts`).

    Raises:
        ConfigError: naming the key and why (wrong pipeline type, a dispatcher needed but none
            configured, a buffer above cam_server's maximum, a lib that was never uploaded, a
            function, lib or file outside its folder, ...).
    """
    pipeline_type = str(config.get("pipeline_type") or "processing")
    image = pipeline_type in IMAGE_PIPELINE_TYPES
    stream = pipeline_type == "stream"
    merges = image and (_set(config, "bsread_address") or _set(config, "bsread_channels"))
    if not image and not stream:
        for key in ("bsread_address", "bsread_channels", "bsread_mode", *BSDATA_KEYS, *STREAM2_KEYS):
            if _set(config, key):
                raise ConfigError(f"'{key}' is not supported by {pipeline_type} pipelines: camioc merges bsread "
                                  "data only into processing, custom and script pipelines and stream pipelines.")
    for key in BSDATA_KEYS + (("bsread_mode",) if image else ()):
        if _set(config, key) and not merges:
            raise ConfigError(f"'{key}' needs 'bsread_address' or 'bsread_channels' on a processing pipeline; "
                              "camioc does not use it otherwise.")
    if not stream:
        for key in STREAM2_KEYS:
            if _set(config, key):
                raise ConfigError(f"'{key}' is supported by stream pipelines only (the second input of a "
                                  "stream pipeline); camioc does not use it here.")
    else:
        second = _set(config, "bsread_address2") or _set(config, "input_stream2") or _set(config, "bsread_channels2")
        for key in STREAM2_KEYS:
            if _set(config, key) and not second:
                raise ConfigError(f"'{key}' needs a second input ('bsread_address2' or 'bsread_channels2').")
        if _set(config, "bsread_channels") and not (_set(config, "bsread_address") or _set(config, "input_stream")
                                                     or _set(config, "input_pipeline")):
            if not (config.get("dispatcher_url") or dispatcher_url):
                raise ConfigError("'bsread_channels' without 'bsread_address' needs a dispatcher: start camioc "
                                  "with --dispatcher-url (a bsread stream address), or give 'bsread_address'.")
    for key, maximum in (("bsread_image_buf", MAX_IMAGE_BUFFER), ("bsread_data_buf", MAX_DATA_BUFFER)):
        value = config.get(key)
        if isinstance(value, int) and value > maximum:
            raise ConfigError(f"Invalid value for '{key}': {value} (must be <= {maximum}, cam_server's maximum)")
    for key, default in HTTP_DISPATCHER_KEYS.items():
        if config.get(key) is not None and config.get(key) != default:
            raise ConfigError(f"'{key}' is not supported: camioc's dispatcher is a bsread stream "
                              "(--dispatcher-url), not the HTTP dispatcher API.")
    url = config.get("dispatcher_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("tcp://", "ipc://"))):
        raise ConfigError(f"Invalid value for 'dispatcher_url': {url!r} (camioc's dispatcher is a bsread stream "
                          "address, tcp://host:port; it reads no HTTP dispatcher)")
    merge_settings(config, dispatcher_url)  # raises for channels without address or dispatcher
    if not user_scripts:
        check_user_scripts(config)
    check_libs(config.get("libs") or (), libs_dir)
    check_function(config.get("function"), scripts_dir if scripts_dir is not None else
                   (libs_dir.parent if libs_dir is not None else None))
    if str(config.get("mode") or "").upper() == "FILE" and config.get("file"):
        data_file(str(config["file"]), data_dir)


#: How a refusal under ``--no-user-scripts`` starts.
USER_SCRIPTS_DISABLED = "user scripts are disabled on this server (--no-user-scripts)"


def check_user_scripts(config: Mapping[str, Any]) -> None:
    """``--no-user-scripts``: only the built-in functions run (:data:`BUILTIN_FUNCTIONS
    <camioc.processing.functions.BUILTIN_FUNCTIONS>`, never a user file of the same name) and no
    ``libs`` are put on the import path (a lib could shadow a module camioc imports).

    Raises:
        ConfigError: ``"user scripts are disabled on this server (--no-user-scripts): function 'x'"``
            (or ``libs [...]``), naming the built-ins that may be used.
    """
    from camioc.processing.functions import BUILTIN_FUNCTIONS, builtin_name

    function = config.get("function")
    if function is not None and (not isinstance(function, str) or builtin_name(function) is None):
        raise ConfigError(f"{USER_SCRIPTS_DISABLED}: function '{function}'; only the built-in functions run "
                          f"({', '.join(sorted(BUILTIN_FUNCTIONS))}).")
    libs = config.get("libs") or ()
    if isinstance(libs, str):
        libs = [libs]
    if libs:
        raise ConfigError(f"{USER_SCRIPTS_DISABLED}: libs {[str(name) for name in libs]}; built-in functions "
                          "use no libs.")


def check_function(function: Any, scripts_dir: Path | None) -> None:
    """Refuse a ``function`` that leads out of the user scripts folder (see
    :func:`camioc.processing.functions.function_file`); a name of no file is left to the start."""
    if function is None or not isinstance(function, str):
        return
    from camioc.processing.functions import function_file

    try:
        function_file(function, scripts_dir, must_exist=False)
    except ProcessingError as exc:
        raise ConfigError(str(exc)) from None


def data_file(name: str, data_dir: Path | None, *, now: float | None = None) -> Path:
    """The real path a ``mode: FILE`` pipeline writes for ``file`` = ``name``: its ``strftime``
    fields expanded (local time), ``~`` expanded, a relative name taken inside ``data_dir``
    (an absolute path is accepted if it lies inside it). ``..`` is collapsed and every symlink
    followed before the path is judged, so nothing outside the folder is ever named.

    Raises:
        ConfigError: ``"Output file '/etc/x.h5' is outside the data folder /srv/camioc/data (...);
            use a name relative to it ..."``, or there is no data folder.
    """
    if data_dir is None:
        raise ConfigError(f"Output file '{name}' refused: no data folder is configured for FILE output "
                          "(camioc --data-dir).")
    if "\0" in name:
        raise ConfigError(f"Output file {name!r} refused: the name contains a NUL character.")
    try:
        expanded = time.strftime(name, time.localtime(now))
    except ValueError as exc:
        raise ConfigError(f"Invalid value for 'file': {name!r} ({exc})") from None
    home = expanded.startswith("~")
    expanded = os.path.expanduser(expanded)
    root = real_path(data_dir)
    resolved = real_path(root / expanded)  # an absolute name stays itself
    if resolved.is_relative_to(root) and resolved != root:
        return resolved
    if resolved == root:
        how = "it names the folder itself, not a file in it"
    elif home:
        how = f"'~' is the home folder {os.path.expanduser('~')}"
    elif Path(os.path.normpath(root / expanded)).is_relative_to(root):
        how = "a symlink leads out of it"
    elif Path(expanded).is_absolute():
        how = "an absolute path elsewhere"
    else:
        how = "'..' leads out of it"
    raise ConfigError(f"Output file '{name}' is outside the data folder {root} ({how}); use a name relative "
                      "to it, e.g. 'run_%Y%m%d.h5' or 'sub/folder/x.h5' (camioc --data-dir sets the folder).")


def check_libs(libs: Any, libs_dir: Path | None) -> None:
    """Every listed lib must have been uploaded (``PUT /api/v1/pipeline/lib/<name>/lib_bytes``),
    be a plain file name and lie inside ``libs_dir`` (no symlink leading out)."""
    if isinstance(libs, str):
        libs = [libs]
    for name in libs:
        text = str(name)
        where = str(libs_dir) if libs_dir is not None else "(no scripts folder configured)"
        if not _plain_name(text):
            raise ConfigError(f"Lib '{text}' is outside the libs folder {where}: a lib is a plain file name "
                              "(no path separators, no '..', no leading dot) of a file inside it.")
        if lib_path(text, libs_dir) is None:
            raise ConfigError(f"Lib '{text}' does not exist in {where}: upload it first with "
                              f"PUT /api/v1/pipeline/lib/{text}/lib_bytes.")


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def lib_path(name: str, libs_dir: Path | None) -> Path | None:
    """The file of lib ``name`` (the exact file name, or ``<name>.py``), None if there is none.

    Raises:
        ConfigError: the file is a symlink leading out of ``libs_dir`` (naming the folder).
    """
    if libs_dir is None or not _plain_name(name):
        return None
    for candidate in (libs_dir / name, libs_dir / f"{name}.py"):
        if candidate.is_file():
            return confined_path(candidate, libs_dir, what=f"Lib '{name}'", root_name="libs folder")
    return None


def prepare_libs(libs: Any, libs_dir: Path | None, *, reload: bool = False) -> list[str]:
    """Make the uploaded libraries importable by the user function; return the paths added.

    The lib folder goes first on ``sys.path`` (so ``import mylib`` finds ``lib/mylib.py`` or
    ``lib/mylib.so``), a listed ``.zip``/``.egg``/``.whl`` goes on it itself. With ``reload``
    the listed Python modules are forgotten, so a re-imported function sees a re-uploaded lib.
    """
    if libs_dir is None:
        return []
    if isinstance(libs, str):
        libs = [libs]
    added = []
    entries = [str(libs_dir)]
    for name in libs:
        path = lib_path(str(name), libs_dir)
        if path is not None and path.suffix in ZIP_LIBS:
            entries.append(str(path))
        if reload and path is not None and path.suffix == ".py":
            sys.modules.pop(path.stem, None)
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
            added.append(entry)
    return added


def is_stream_input(config: Settings) -> bool:
    """True if the input is a bsread stream address (``stream_timeout`` applies), not a camera,
    another instance or a fan-in."""
    pipeline_type = setting(config, "pipeline_type") or "processing"
    if pipeline_type == "fanin" or _set(config, "input_pipeline"):
        return False
    return _set(config, "input_stream") or pipeline_type == "stream"


def stream_channels(data: Mapping[str, Any], config: Settings, merged: Any = ()) -> dict[str, Any]:
    """The channels of a stream pipeline's input 1 that ``bsread_channels`` selects (cam_server
    asks the source for them; camioc filters what arrives), plus the channels merged from input 2.
    Without ``bsread_channels`` every channel is kept."""
    channels = channel_list(setting(config, "bsread_channels"))
    if not channels:
        return dict(data)
    keep = set(channels) | set(merged)
    return {name: value for name, value in data.items() if name in keep}


def stream_timeout(config: Settings) -> float:
    """``stream_timeout`` in seconds (cam_server's default 10 when unset; 0 or less: never)."""
    value = setting(config, "stream_timeout")
    return DEFAULT_STREAM_TIMEOUT if value is None else float(value)


def receive_wait(config: Settings) -> float:
    """Seconds one receive waits: ``receive_timeout`` (ms, cam_server's key) capped at
    :data:`MAX_RECEIVE_WAIT` so that commands stay responsive; default 0.1 s."""
    value = setting(config, "receive_timeout")
    if value is None:
        return DEFAULT_RECEIVE_WAIT
    return min(MAX_RECEIVE_WAIT, max(0.001, float(value) / 1000.0))


class OutputOrder:
    """``enforce_pid``, ``enforce_timestamp`` and ``check_timestamp`` on the messages sent.

    * ``enforce_pid``: a message whose pulse id is not greater than the last sent one is dropped
      (cam_server: "Sending invalid PID"), counted in :attr:`pid_dropped`;
    * ``enforce_timestamp``: the same for the global timestamp (:attr:`timestamp_dropped`);
    * ``check_timestamp``: a message breaking the SwissFEL convention
      ``pulse_id % 1e6 == ns % 1e6`` is dropped (:attr:`timestamp_invalid`).
    """

    def __init__(self, enforce_pid: bool = False, enforce_timestamp: bool = False,
                 check_timestamp: bool = False) -> None:
        self.enforce_pid = enforce_pid
        self.enforce_timestamp = enforce_timestamp
        self.check_timestamp = check_timestamp
        self.last_pid: int | None = None
        self.last_timestamp: tuple[int, int] | None = None
        self.pid_dropped = 0
        self.timestamp_dropped = 0
        self.timestamp_invalid = 0

    @classmethod
    def from_config(cls, config: Settings) -> OutputOrder | None:
        """None when none of the three keys is set (nothing to check)."""
        flags = [bool(setting(config, k)) for k in ("enforce_pid", "enforce_timestamp", "check_timestamp")]
        return cls(*flags) if any(flags) else None

    def update(self, config: Settings) -> None:
        """A config change: new flags, the history (last pid/timestamp) is kept."""
        self.enforce_pid = bool(setting(config, "enforce_pid"))
        self.enforce_timestamp = bool(setting(config, "enforce_timestamp"))
        self.check_timestamp = bool(setting(config, "check_timestamp"))

    def admit(self, pulse_id: int, timestamp: Any) -> bool:
        """True if the message may be sent (and remember it), False if it is dropped (counted)."""
        stamp = _sec_ns(timestamp)
        if self.check_timestamp and pulse_id % 1_000_000 != stamp[1] % 1_000_000:
            self.timestamp_invalid += 1
            return False
        if self.enforce_pid and self.last_pid is not None and pulse_id <= self.last_pid:
            self.pid_dropped += 1
            return False
        if self.enforce_timestamp and self.last_timestamp is not None and stamp <= self.last_timestamp:
            self.timestamp_dropped += 1
            return False
        self.last_pid, self.last_timestamp = pulse_id, stamp
        return True

    def statistics(self) -> dict[str, int]:
        """The counters of the enabled checks."""
        out = {}
        if self.enforce_pid:
            out["pid_dropped"] = self.pid_dropped
        if self.enforce_timestamp:
            out["timestamp_dropped"] = self.timestamp_dropped
        if self.check_timestamp:
            out["timestamp_invalid"] = self.timestamp_invalid
        return out


def _sec_ns(timestamp: float | tuple[int, int] | None) -> tuple[int, int]:
    if isinstance(timestamp, tuple | list) and len(timestamp) == 2:
        return int(timestamp[0]), int(timestamp[1])
    value = float(timestamp or 0.0)
    sec = int(value)
    return sec, int(round((value - sec) * 1e9))


__all__ = [
    "OutputOrder",
    "check_function",
    "check_input_config",
    "check_libs",
    "check_user_scripts",
    "data_file",
    "is_stream_input",
    "lib_path",
    "prepare_libs",
    "receive_wait",
    "stream_channels",
    "stream_timeout",
]
