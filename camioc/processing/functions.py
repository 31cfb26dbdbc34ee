"""Pipeline functions: the built-ins and user Python files.

The config key ``function`` names what runs after pre-processing:

* nothing, ``"default"`` → :mod:`camioc.processing.default` (cam_server's default function);
* ``"transparent"`` → :mod:`camioc.processing.transparent`;
* a Python file defining ``process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters,
  bsdata)`` (image pipelines) or ``process(stream_data, pulse_id, timestamp, parameters)``
  (stream pipelines), returning a dict of output channels.

Lookup order (a user file shadows a built-in of the same name, as in cam_server): an absolute
path is used as is if it lies inside the scripts folder; otherwise ``<scripts_dir>/<name>`` and
``<scripts_dir>/<name>.py``; otherwise the built-in whose name is the file stem (so
``"transparent.py"`` still works without a file).

Confinement: user files run only from inside the scripts folder (:func:`function_file`). A name
whose real path (``..`` collapsed, symlinks followed) leaves the folder — ``"../../x.py"``, an
absolute path elsewhere, a file in the folder that is a symlink to somewhere else — is refused
with an error naming the folder, whether or not such a file exists. Without a scripts folder only
the built-ins run.
The scripts folder is passed in by the caller: there is no global search path and no global cache;
every call imports the file afresh (the pipeline keeps the loaded function and calls this again
only when ``function`` changes or ``reload`` is set). ``.c`` functions (compiled on the fly by
cam_server) are not supported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from camioc.errors import ProcessingError
from camioc.processing import default, transparent

__all__ = ["BUILTIN_FUNCTIONS", "LoadedFunction", "builtin_name", "function_file", "load_function",
           "load_stream_function"]

#: Built-in function names → cam_server-signature callables.
BUILTIN_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "default": default.process_image,
    "transparent": transparent.process_image,
}

FunctionKind = Literal["image", "stream"]


def builtin_name(name: str | None) -> str | None:
    """The built-in a ``function`` value names without any user file (``None``, ``""``,
    ``"default"``, ``"transparent"``, ``"transparent.py"``), None if it names no built-in.

    Used where user scripts are switched off (``--no-user-scripts``): then only these run, and a
    user file of the same name is not looked for."""
    text = (name or "default").strip() or "default"
    stem = text[:-3] if text.endswith(".py") else text
    return stem if stem in BUILTIN_FUNCTIONS else None


@dataclass(frozen=True, slots=True)
class LoadedFunction:
    """A resolved pipeline function.

    ``func`` has cam_server's signature for its ``kind``: ``process_image(image, pulse_id,
    timestamp, x_axis, y_axis, parameters, bsdata)`` for ``"image"``, ``process(stream_data,
    pulse_id, timestamp, parameters)`` for ``"stream"``. ``path`` is the imported file (None for
    built-ins); ``builtin`` the built-in's name (None for user files).
    """

    name: str
    kind: FunctionKind
    func: Callable[..., Any]
    path: Path | None = None
    builtin: str | None = None


def load_function(
    name: str | None, scripts_dir: Path | None = None, *, reload: bool = True
) -> LoadedFunction:
    """Resolve ``name`` to a built-in or import a user file.

    Every call imports the file afresh (``reload`` is accepted for cam_server's vocabulary; there
    is no cache to bypass — the caller keeps the result as long as it wants it). Raises
    :class:`ProcessingError` if nothing matches, the file cannot be imported, or it defines
    neither ``process_image`` nor ``process``.
    """
    del reload
    text = (name or "default").strip() or "default"
    path = function_file(text, scripts_dir)
    if path is None:
        stem = Path(text).stem if text.endswith(".py") else text
        if stem in BUILTIN_FUNCTIONS:
            return LoadedFunction(stem, "image", BUILTIN_FUNCTIONS[stem], builtin=stem)
        where = f" in {scripts_dir}" if scripts_dir is not None else " (no scripts folder configured)"
        raise ProcessingError(
            f"Function '{text}' not found: no file '{text}'{where} and no built-in of that name "
            f"(built-ins: {', '.join(sorted(BUILTIN_FUNCTIONS))})"
        )
    if path.suffix == ".c":
        raise ProcessingError(f"Function '{text}': C functions (.c) are not supported by camioc")
    return _import_file(text, path)


def function_file(name: str | None, scripts_dir: Path | None, *, must_exist: bool = True) -> Path | None:
    """The real path of the user file ``name`` names, None if it names none (then it may be a
    built-in); refuses a name that leads out of ``scripts_dir``.

    ``must_exist=False`` (the check when a config is saved) refuses only what leads out of the
    folder, not an absolute path inside it that does not exist (yet).

    Raises:
        ProcessingError: the name leads out of the scripts folder (``..``, an absolute path
            elsewhere, a symlink), has a NUL, is a path without a scripts folder configured, or
            (``must_exist``) is an absolute path to no file.
    """
    text = (name or "default").strip() or "default"
    if "\0" in text:
        raise ProcessingError(f"Function {text!r} refused: the name contains a NUL character.")
    candidate = Path(text).expanduser()
    builtins = ", ".join(sorted(BUILTIN_FUNCTIONS))
    if scripts_dir is None:
        if candidate.is_absolute() or len(candidate.parts) > 1:
            raise ProcessingError(f"Function '{text}' refused: no user scripts folder is configured, only the "
                                  f"built-ins run ({builtins}).")
        return None
    root = Path(os.path.realpath(scripts_dir))
    options = [candidate] if candidate.is_absolute() else [root / text, root / f"{text}.py"]
    for option in options:
        real = Path(os.path.realpath(option))
        if not real.is_relative_to(root):
            if Path(os.path.normpath(option)).is_relative_to(root):
                how = "a symlink leads out of it"
            elif candidate.is_absolute():
                how = "an absolute path elsewhere"
            else:
                how = "'..' leads out of it"
            raise ProcessingError(
                f"Function '{text}' is outside the user scripts folder {root} ({how}): functions run only "
                f"from files inside {root} or are built-ins ({builtins}).")
        if real.is_file():
            return real
    if candidate.is_absolute() and must_exist:
        raise ProcessingError(f"Function file not found: {candidate}")
    return None


def _import_file(name: str, path: Path) -> LoadedFunction:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"camioc_user_function_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ProcessingError(f"Function '{name}': cannot import {resolved} (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    # Registered while executing so that dataclasses/pickle in the user file can find their module;
    # re-imports replace the entry, and every pipeline keeps its own module object.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: anything can fail at import
        sys.modules.pop(module_name, None)
        raise ProcessingError(f"Function '{name}': importing {resolved} failed: {exc!r}") from exc
    image_function = getattr(module, "process_image", None)
    if callable(image_function):
        return LoadedFunction(name, "image", image_function, resolved)
    stream_function = getattr(module, "process", None)
    if callable(stream_function):
        return LoadedFunction(name, "stream", stream_function, resolved)
    raise ProcessingError(
        f"Function '{name}': {resolved} defines neither process_image(image, pulse_id, timestamp, "
        "x_axis, y_axis, parameters, bsdata) nor process(stream_data, pulse_id, timestamp, parameters)"
    )


def load_stream_function(
    name: str, scripts_dir: Path | None = None, *, reload: bool = True
) -> Callable[..., dict[str, Any] | None]:
    """The ``process(stream_data, pulse_id, timestamp, parameters)`` of a stream-pipeline file."""
    loaded = load_function(name, scripts_dir, reload=reload)
    if loaded.kind != "stream":
        raise ProcessingError(
            f"Function '{loaded.name}' has no process(stream_data, pulse_id, timestamp, parameters) "
            "for stream pipelines"
        )
    return loaded.func
