"""The put log: every accepted write over CA, PV Access or REST, with who made it (caPutLog's job).

An EPICS IOC runs caPutLog so that "who changed the exposure at 03:12?" has an answer. camioc's
transports call :func:`record` once per write that succeeded (a refused write changes nothing and
is not a put; it is logged as a refusal where it is refused). :func:`record` logs one line to the
logger ``camioc.putlog`` (so it is in the service log and the ``/api/v1/logs`` ring), and
:class:`PutLogFile` — attached to that logger by ``camioc --put-log FILE`` — appends the same
line with its time to a file.

The line, caPutLog's ``<date> <time> <host> <user> <pv> new=<v> old=<v>`` with the time as one
ISO 8601 token (local time with its UTC offset: unambiguous across DST changes) and the protocol::

    2026-12-04T22:36:01.123+01:00 192.168.1.7 alice ca CAMIOC:cam1:ReverseX new="Yes" old="No"
    2026-12-04T22:36:05.002+01:00 127.0.0.1 - rest POST /api/v1/pipeline/instance/p1/config
        new={"image_threshold":5} old={"image_threshold":null}   (one line in the file)

``host`` is the address the client connects from (what the access policy judges, not the name a
CA client claims), ``user`` the CA/PVA account (``-`` over REST, which has none). ``new``/``old``
are compact JSON (one line whatever the value holds; long values are cut to a JSON string ending
in ``…``); a REST config write logs only the keys that changed. A write with nothing to compare
(a stop, an upload) has neither.

The file is opened in append mode and each line is written with one ``write`` call, so lines of
concurrent writers never interleave; if a crash (power loss) left a last line without its
newline, the next start begins with a newline, so a half line never merges with the next one.

This module imports only the standard library: every transport may use it (it lies outside
DESIGN.md's layers, like :mod:`camioc.errors`).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The logger every put goes to (level INFO whatever ``--log-level`` says: a put log is not noise).
LOGGER_NAME = "camioc.putlog"
log = logging.getLogger(LOGGER_NAME)
log.setLevel(logging.INFO)

#: Longest JSON text of one value in a line; longer values are cut (images are never put).
MAX_VALUE_CHARS = 2000
#: Marks "no value to show" (a write with nothing to compare).
_NOTHING: Any = object()
#: The attribute of a log record that holds the put-log line (without the time).
LINE_ATTRIBUTE = "putlog_line"


def _json_default(value: Any) -> Any:
    for converter in ("tolist", "item"):  # numpy arrays and scalars, without importing numpy
        method = getattr(value, converter, None)
        if callable(method):
            return method()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def value_text(value: Any) -> str:
    """``value`` as compact one-line JSON, cut to :data:`MAX_VALUE_CHARS` (a JSON string then)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        text = json.dumps(repr(value), ensure_ascii=False)
    if len(text) > MAX_VALUE_CHARS:
        text = json.dumps(text[: MAX_VALUE_CHARS - 1] + "…", ensure_ascii=False)
    return text


def _token(text: str | None) -> str:
    """A host or user as one token (``-`` when unknown)."""
    clean = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in str(text or ""))
    return clean or "-"


def format_line(
    protocol: str, host: str | None, user: str | None, target: str, *, old: Any = _NOTHING, new: Any = _NOTHING
) -> str:
    """The line of one put, without its time (see the module doc)."""
    target = " ".join(str(target).split())  # a route is "METHOD /path": no newlines, single spaces
    parts = [_token(host), _token(user), protocol, target]
    if new is not _NOTHING:
        parts.append(f"new={value_text(new)}")
    if old is not _NOTHING:
        parts.append(f"old={value_text(old)}")
    return " ".join(parts)


def record(
    protocol: str, host: str | None, user: str | None, target: str, *, old: Any = _NOTHING, new: Any = _NOTHING
) -> None:
    """Log one accepted write (``protocol`` ``ca``, ``pva`` or ``rest``; ``target`` the PV name or
    ``METHOD /route``; ``old``/``new`` the value before and after, when there is one)."""
    line = format_line(protocol, host, user, target, old=old, new=new)
    log.info("put %s", line, extra={LINE_ATTRIBUTE: line})


def config_change(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """The compact form of a config write: the keys that differ, before and after.

    A config that did not exist (or no longer exists) is ``null`` on that side and complete on
    the other."""
    if old is None or new is None:
        return (None if old is None else dict(old)), (None if new is None else dict(new))
    keys = [key for key in dict.fromkeys([*old, *new]) if old.get(key, _NOTHING) != new.get(key, _NOTHING)]
    return {key: old.get(key) for key in keys}, {key: new.get(key) for key in keys}


def local_time(created: float) -> str:
    """A record's time as one ISO 8601 token with milliseconds and the UTC offset."""
    moment = datetime.datetime.fromtimestamp(created).astimezone()
    return moment.isoformat(timespec="milliseconds")


class PutLogFile(logging.Handler):
    """Appends ``<time> <line>`` for every put record to a file (see the module doc)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(level=logging.INFO)
        self.path = Path(path)
        self._write_lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._end_last_line()

    def _end_last_line(self) -> None:
        """Begin with a newline if the file's last line was cut short (a crash during a write)."""
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                return
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                last = handle.read(1)
        except OSError:
            return
        if last != b"\n":
            self._write(b"\n")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        with self._write_lock:
            while view:  # one call writes it all on a regular file; loop in case of a short write
                written = os.write(self._fd, view)
                view = view[written:]

    def emit(self, record: logging.LogRecord) -> None:
        line = getattr(record, LINE_ATTRIBUTE, None)
        if line is None:
            return
        try:
            self._write(f"{local_time(record.created)} {line}\n".encode())
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)

    def close(self) -> None:
        with self._write_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        super().close()


def open_put_log(path: Path | str) -> PutLogFile:
    """Attach a :class:`PutLogFile` for ``path`` to the put logger (``--put-log``); returns it."""
    handler = PutLogFile(path)
    log.addHandler(handler)
    return handler


def close_put_log(handler: PutLogFile) -> None:
    log.removeHandler(handler)
    handler.close()


__all__ = [
    "LOGGER_NAME",
    "PutLogFile",
    "close_put_log",
    "config_change",
    "format_line",
    "open_put_log",
    "record",
    "value_text",
]
