"""In-memory log rings behind cam_server's ``/api/v1/logs`` routes.

:class:`LogBuffer` is a :class:`logging.Handler` that keeps the last records of the whole
service (500 by default) and, separately, the last records of every instance logger (100 by
default). Instance loggers follow camioc's naming convention: ``camioc.camera.<name>`` and
``camioc.pipeline.<name>``; everything after the kind is the instance name (names may contain
dots). Records are stored as cam_server's ``[asctime, logger, level, message]`` rows.

The number of instances remembered is bounded too (least recently logged instance forgotten
first), so thousands of short-lived uuid pipelines cannot grow memory without bound.

The handler has no level of its own: what reaches it is decided by the levels of the loggers,
which the composition root sets (``--log-level``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

#: Logger-name prefixes of per-instance loggers, mapped to the instance kind.
INSTANCE_LOGGER_PREFIXES: dict[str, str] = {
    "camioc.camera.": "camera",
    "camioc.pipeline.": "pipeline",
}

LogRow = list[str]


class LogBuffer(logging.Handler):
    """Keep the most recent log records, globally and per instance logger.

    Thread-safe: records may be emitted from any thread; a private lock guards the rings.
    """

    def __init__(self, capacity: int = 500, instance_capacity: int = 100, max_instances: int = 1000) -> None:
        super().__init__()
        if capacity < 1 or instance_capacity < 1 or max_instances < 1:
            raise ValueError("LogBuffer capacities must be positive")
        self._records: deque[tuple[str, str, str, str]] = deque(maxlen=capacity)
        self._instance_capacity = instance_capacity
        self._max_instances = max_instances
        self._instances: OrderedDict[tuple[str, str], deque[tuple[str, str, str, str]]] = OrderedDict()
        self._time_formatter = logging.Formatter()
        self._guard = threading.Lock()

    # --- logging.Handler ------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            row = self._row(record)
            key = instance_key(record.name)
            with self._guard:
                self._records.append(row)
                if key is not None:
                    self._append_instance(key, row)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def _append_instance(self, key: tuple[str, str], row: tuple[str, str, str, str]) -> None:
        ring = self._instances.get(key)
        if ring is None:
            ring = deque(maxlen=self._instance_capacity)
            self._instances[key] = ring
            while len(self._instances) > self._max_instances:
                self._instances.popitem(last=False)
        else:
            self._instances.move_to_end(key)
        ring.append(row)

    def _row(self, record: logging.LogRecord) -> tuple[str, str, str, str]:
        message = record.getMessage()
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self._time_formatter.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        return (self._time_formatter.formatTime(record), record.name, record.levelname, message)

    # --- readers --------------------------------------------------------------------------
    def records(self) -> list[LogRow]:
        """The service-wide ring, oldest first, as ``[asctime, logger, level, message]`` rows."""
        with self._guard:
            return [list(row) for row in self._records]

    def instance_records(self, kind: str, name: str) -> list[LogRow]:
        """The ring of instance ``name`` of ``kind`` (``camera``/``pipeline``); empty if unknown."""
        with self._guard:
            ring = self._instances.get((kind, name))
            return [list(row) for row in ring] if ring is not None else []

    def instance_names(self, kind: str) -> list[str]:
        """Names of the instances of ``kind`` that have records."""
        with self._guard:
            return [name for (k, name) in self._instances if k == kind]

    @staticmethod
    def as_text(rows: Iterable[LogRow]) -> str:
        """cam_server's text form: one line per record, fields joined with ``" - "``."""
        return "\n".join(" - ".join(row) for row in rows)


def instance_key(logger_name: str) -> tuple[str, str] | None:
    """``(kind, name)`` for an instance logger name, else None."""
    for prefix, kind in INSTANCE_LOGGER_PREFIXES.items():
        if logger_name.startswith(prefix) and len(logger_name) > len(prefix):
            return kind, logger_name[len(prefix):]
    return None


def install_log_buffer(logger_name: str = "camioc", **kwargs: int) -> LogBuffer:
    """Attach a :class:`LogBuffer` to logger ``logger_name`` and return it.

    Idempotent: if that logger already has a LogBuffer, it is returned (``kwargs`` are then
    ignored), so calling this twice never duplicates records.
    """
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, LogBuffer):
            return handler
    buffer = LogBuffer(**kwargs)
    logger.addHandler(buffer)
    return buffer


__all__ = ["INSTANCE_LOGGER_PREFIXES", "LogBuffer", "LogRow", "install_log_buffer", "instance_key"]
