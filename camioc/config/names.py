"""Validation of names that end up as file names (cameras, pipelines, backgrounds, scripts).

camioc decision 5: a name used as a file name is refused with a clear error, never silently mapped.
A valid name is a non-empty string with no path separator, no ``..``, no control character (NUL
included), no leading dot (hidden files and temp files of the store), no leading or trailing
whitespace, and at most :data:`MAX_NAME_BYTES` bytes in UTF-8 (file names are limited to 255 bytes
and the background store appends ``_YYYYmmdd_HHMMSS_ffffff.npy`` to camera names).
"""

from __future__ import annotations

from camioc.errors import InvalidNameError

#: Longest accepted name, in UTF-8 bytes.
MAX_NAME_BYTES = 200


def validate_name(name: str, kind: str = "name") -> str:
    """Return ``name`` unchanged if it is safe to use as a file name, else raise.

    Args:
        name: the name to check.
        kind: what the name is ("camera name", "pipeline name", ...), used in the message.

    Raises:
        InvalidNameError: naming the problem, e.g. ``Invalid camera name '../x': must not contain '..'.``
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"Invalid {kind}: must be a string, got {type(name).__name__}.")
    if not name:
        raise InvalidNameError(f"Invalid {kind}: must not be empty.")
    problem = name_problem(name)
    if problem is not None:
        raise InvalidNameError(f"Invalid {kind} {name!r}: {problem}.")
    return name


def is_valid_name(name: object) -> bool:
    """Whether :func:`validate_name` would accept ``name``."""
    return isinstance(name, str) and bool(name) and name_problem(name) is None


def name_problem(name: str) -> str | None:
    """What is wrong with a non-empty ``name`` (a phrase for a message), or None if it is valid."""
    if "\x00" in name:
        return "must not contain NUL characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "must not contain control characters"
    if "/" in name or "\\" in name:
        return "must not contain path separators ('/' or '\\')"
    if ".." in name:
        return "must not contain '..'"
    if name.startswith("."):
        return "must not start with '.'"
    if name != name.strip():
        return "must not start or end with whitespace"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"must not be longer than {MAX_NAME_BYTES} bytes"
    return None


__all__ = ["MAX_NAME_BYTES", "is_valid_name", "name_problem", "validate_name"]
