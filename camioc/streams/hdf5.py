"""Write bsread messages to an HDF5 file: a pipeline's ``mode: FILE`` output, a stream recorder.

``layout`` (case-insensitive) selects one of five layouts. The first three are cam_server's
(compat Appendix A), dataset for dataset; ``[s, ns]`` timestamps are uint64 ``(N, 2)``:

* ``DEFAULT``: ``/header{k}/pulse_id`` (uint64, N), ``/header{k}/global_timestamp``; channel
  values ``/data{k}/<ch>/value``, channel timestamps (``localtime``) ``/data{k}/<ch>/timestamp``.
* ``FLAT``: headers as ``DEFAULT``; ``/data{k}/<ch>`` and ``/data{k}/<ch>_timestamp``.
* ``BSH5``: ``/pulse_id``, ``/global_timestamp``, ``/<ch>/data``, ``/<ch>/timestamp``; for
  ``k > 1``: ``/pulse_id{k}``, ``/global_timestamp{k}``, ``/<ch>{k}/data``, ``/<ch>{k}/timestamp``.

``k`` is the dataset set, from 1. It grows only with ``change``: a record whose channel set
differs from the previous record's, or whose value no longer fits its dataset (another shape, a
type that cannot be cast within its kind), closes the current set and starts set ``k + 1``.
Without ``change`` such a record raises :class:`DataFormatChanged` ("Data format changed"): a
FILE pipeline stops with that error. Every layout also writes ``/general/created`` (local time,
``dd/mm/YYYY HH:MM:SS.ffffff``), ``/general/user``, ``/general/pid``, ``/general/host``, one
``/general/<key>`` per user attribute and, on close, ``/general/datasets`` (the last ``k``).

Values: arrays keep dtype and shape (dataset ``(N, *shape)``); numpy scalars their dtype; Python
``bool``/``int``/``float`` are ``bool``/``int64``/``float64`` (bsread's types); strings are
fixed-length ``S1000`` (UTF-8, longer ones cut). ``None`` (no value for this pulse) is written as
the fill value (NaN, 0, False, ``b""``) and never counts as a format change; a channel whose first
value is ``None`` is float64, as bsread declares it. With ``records`` N the datasets are created
with N rows and shrunk to the rows written on close; writing more is an error. Without it they
grow (in blocks, trimmed on close: the result is one row per record).

The other two layouts are camioc's own from before it had cam_server's (see
:mod:`camioc.streams.hdf5_bsread`): ``BSREAD`` (psi-bsread ``bs h5``: ``/pulse_id``,
``/<ch>/data|pulse_id|timestamp|timestamp_offset``) and ``BSREAD_COMPACT`` (``/pulse_id``,
``/data/<ch>``). ``localtime``, ``change``, ``records`` and ``attributes`` are cam_server's
options and do not apply to them.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from camioc.streams.bsread import BsreadMessage, split_timestamp
from camioc.streams.hdf5_bsread import BsreadH5Writer

__all__ = ["CAMSERVER_LAYOUTS", "LAYOUTS", "DataFormatChanged", "Hdf5Writer", "STRING_DTYPE"]

_log = logging.getLogger(__name__)

#: cam_server's layouts (compat Appendix A) and camioc's two bs-h5 layouts.
CAMSERVER_LAYOUTS: tuple[str, ...] = ("DEFAULT", "FLAT", "BSH5")
LAYOUTS: tuple[str, ...] = (*CAMSERVER_LAYOUTS, "BSREAD", "BSREAD_COMPACT")
#: cam_server stores strings as fixed-length 1000-byte strings.
STRING_DTYPE = np.dtype("S1000")
_GROW = 64  # rows added per resize when the number of records is open
_RESERVED = ("created", "user", "pid", "host", "datasets")


class DataFormatChanged(ValueError):
    """A record does not fit the current datasets and ``change`` is off (cam_server's message)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("Data format changed" + (f": {detail}" if detail else ""))


# ================================================================== values
@dataclass(frozen=True)
class _Spec:
    """Dataset type of one channel: dtype and per-record shape."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    @property
    def is_string(self) -> bool:
        return self.dtype.kind == "S"

    @property
    def fill(self) -> Any:
        kind = self.dtype.kind
        return np.nan if kind == "f" else (b"" if kind == "S" else (False if kind == "b" else 0))


def _spec_of(value: Any) -> _Spec:
    """The dataset type a channel value needs (see the module docstring)."""
    if value is None:
        return _Spec(np.dtype(np.float64), ())
    if isinstance(value, str):
        return _Spec(STRING_DTYPE, ())
    if isinstance(value, bool):
        return _Spec(np.dtype(np.bool_), ())
    if isinstance(value, int):
        return _Spec(np.dtype(np.int64), ())
    if isinstance(value, float):
        return _Spec(np.dtype(np.float64), ())
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"a value of type {type(value).__name__} ({array.dtype}) cannot be written to HDF5")
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype
    return _Spec(dtype, array.shape)


def _fits(value: Any, spec: _Spec) -> bool:
    """Can ``value`` go into a dataset of ``spec`` without changing its format?"""
    if value is None:
        return True
    if spec.is_string or isinstance(value, str):
        return spec.is_string and isinstance(value, str)
    new = _spec_of(value)
    return new.shape == spec.shape and np.can_cast(new.dtype, spec.dtype, "same_kind")


def _stored(value: Any, spec: _Spec) -> Any:
    if value is None:
        return np.full(spec.shape, spec.fill, spec.dtype) if spec.shape else spec.fill
    if spec.is_string:
        return str(value).encode("utf-8")[: spec.dtype.itemsize]
    return value


# ================================================================== datasets
class _Column:
    """One dataset with a row per record: fixed ``rows`` (``records``) or growing in blocks."""

    def __init__(self, file: h5py.File, path: str, spec: _Spec, rows: int | None) -> None:
        self.spec = spec
        self.rows = 0
        self._fixed = rows is not None
        shape = (rows if rows is not None else 0, *spec.shape)
        maxshape = (rows if rows is not None else None, *spec.shape)
        row_bytes = max(1, int(np.prod(spec.shape, dtype=np.int64)) * spec.dtype.itemsize)
        chunk_rows = max(1, min(_GROW, (1 << 20) // row_bytes))
        if rows is not None:
            chunk_rows = max(1, min(chunk_rows, rows))
        self.dataset = file.create_dataset(path, shape=shape, maxshape=maxshape, dtype=spec.dtype,
                                           chunks=(chunk_rows, *spec.shape), fillvalue=spec.fill)

    def append(self, value: Any) -> None:
        if self.rows >= self.dataset.shape[0]:
            if self._fixed:
                raise ValueError("HDF5 writer reached the total number of records")
            self.dataset.resize(self.rows + _GROW, axis=0)
        self.dataset[self.rows] = value
        self.rows += 1

    def trim(self) -> None:
        if self.dataset.shape[0] != self.rows:
            self.dataset.resize(self.rows, axis=0)


@dataclass(frozen=True)
class _Names:
    """Dataset paths of one layout for dataset set ``k``."""

    pulse_id: str
    global_timestamp: str
    value: Callable[[str], str]
    timestamp: Callable[[str], str]


def _names(layout: str, k: int) -> _Names:
    if layout == "BSH5":
        n = "" if k == 1 else str(k)
        return _Names(f"/pulse_id{n}", f"/global_timestamp{n}",
                      lambda ch: f"/{ch}{n}/data", lambda ch: f"/{ch}{n}/timestamp")
    header = f"/header{k}"
    if layout == "FLAT":
        return _Names(f"{header}/pulse_id", f"{header}/global_timestamp",
                      lambda ch: f"/data{k}/{ch}", lambda ch: f"/data{k}/{ch}_timestamp")
    return _Names(f"{header}/pulse_id", f"{header}/global_timestamp",
                  lambda ch: f"/data{k}/{ch}/value", lambda ch: f"/data{k}/{ch}/timestamp")


class _DatasetSet:
    """The header and channel datasets of one format (set ``k``), created from its first record."""

    def __init__(self, file: h5py.File, names: _Names, data: Mapping[str, Any], rows: int | None,
                 localtime: bool) -> None:
        self.specs = {name: _spec_of(value) for name, value in data.items()}
        stamp = _Spec(np.dtype(np.uint64), (2,))
        self.pulse_id = _Column(file, names.pulse_id, _Spec(np.dtype(np.uint64), ()), rows)
        self.global_timestamp = _Column(file, names.global_timestamp, stamp, rows)
        self.values = {name: _Column(file, names.value(name), spec, rows) for name, spec in self.specs.items()}
        self.timestamps = ({name: _Column(file, names.timestamp(name), stamp, rows) for name in self.specs}
                           if localtime else {})

    def mismatch(self, data: Mapping[str, Any]) -> str:
        """Why ``data`` does not fit these datasets ("" if it does)."""
        if set(data) != set(self.specs):
            added, removed = sorted(set(data) - set(self.specs)), sorted(set(self.specs) - set(data))
            return f"channels added {added}, removed {removed}"
        for name, value in data.items():
            if not _fits(value, self.specs[name]):
                new = _spec_of(value)
                old = self.specs[name]
                return f"channel '{name}' is {new.dtype} {list(new.shape)}, its dataset {old.dtype} {list(old.shape)}"
        return ""

    def append(self, data: Mapping[str, Any], pulse_id: int, stamp: tuple[int, int]) -> None:
        self.pulse_id.append(pulse_id)
        self.global_timestamp.append(stamp)
        for name, column in self.values.items():
            column.append(_stored(data[name], column.spec))
        for column in self.timestamps.values():
            column.append(stamp)

    def trim(self) -> None:
        for column in (self.pulse_id, self.global_timestamp, *self.values.values(), *self.timestamps.values()):
            column.trim()


def _process_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the uid says who
        return str(os.getuid())


class _CamserverLayoutWriter:
    """cam_server's ``DEFAULT``/``FLAT``/``BSH5`` (see the module docstring)."""

    def __init__(self, path: Path, layout: str, *, localtime: bool, change: bool, records: int | None,
                 attributes: Mapping[str, Any]) -> None:
        self._path = path
        self._layout = layout
        self._localtime = localtime
        self._change = change
        self._records = records
        self._attributes = dict(attributes)
        self._file: h5py.File | None = None
        self._set: _DatasetSet | None = None
        self.k = 0
        self.messages_written = 0

    def open(self) -> None:
        if self._file is not None:
            return
        self._file = h5py.File(self._path, "w")
        general = {**self._attributes,
                   "created": datetime.datetime.now().strftime("%d/%m/%Y %H:%M:%S.%f"),
                   "user": _process_user(), "pid": os.getpid(), "host": socket.gethostname()}
        for key, value in general.items():
            self._file.create_dataset(f"/general/{key}", data=value)

    def write(self, data: Mapping[str, Any], pulse_id: int, stamp: tuple[int, int]) -> None:
        file = self._file
        if file is None:
            raise RuntimeError("HDF5 writer is not open")
        if not data:
            raise ValueError("a record needs at least one channel")
        if self._set is not None:
            problem = self._set.mismatch(data)
            if problem:
                if not self._change:
                    raise DataFormatChanged(problem)
                _log.info("data format changed (%s): dataset set %d", problem, self.k + 1)
                self._set.trim()
                self._set = None
        if self._set is None:
            rows = None if self._records is None else self._records - self.messages_written
            if rows is not None and rows <= 0:
                raise ValueError("HDF5 writer reached the total number of records")
            self.k += 1
            self._set = _DatasetSet(file, _names(self._layout, self.k), data, rows, self._localtime)
        self._set.append(data, pulse_id, stamp)
        self.messages_written += 1

    def close(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            if self._set is not None:
                self._set.trim()
            file.create_dataset("/general/datasets", data=self.k)
        finally:
            file.close()


def _check_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise ValueError(f"attributes must be a mapping of names to values, not {type(attributes).__name__}")
    for key in attributes:
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"attribute name {key!r} is not a valid HDF5 name")
        if key in _RESERVED:
            raise ValueError(f"attribute name {key!r} is reserved ({', '.join(_RESERVED)} are written by the writer)")
    return dict(attributes)


class Hdf5Writer:
    """Writes bsread messages (or plain channel dicts) to an HDF5 file in one of :data:`LAYOUTS`.

    Args:
        path: the file (truncated on :meth:`open`).
        layout: ``DEFAULT`` (cam_server's default), ``FLAT``, ``BSH5``, ``BSREAD``, ``BSREAD_COMPACT``.
        localtime: cam_server layouts: also write each channel's timestamp (default true).
        change: cam_server layouts: a format change starts a new dataset set instead of failing.
        records: cam_server layouts: the number of records (datasets sized for it, shrunk on close).
        attributes: cam_server layouts: extra ``/general/<key>`` datasets (str, number, list).

    Raises:
        ValueError: an unknown layout, ``records`` < 1, bad attribute names.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        layout: str = "DEFAULT",
        localtime: bool = True,
        change: bool = False,
        records: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        name = layout.upper() if isinstance(layout, str) else layout
        if name not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        if records is not None and (isinstance(records, bool) or not isinstance(records, int) or records < 1):
            raise ValueError(f"records must be an integer >= 1, not {records!r}")
        self.path = Path(path)
        self.layout = name
        self._writer: _CamserverLayoutWriter | BsreadH5Writer
        if name in CAMSERVER_LAYOUTS:
            self._writer = _CamserverLayoutWriter(self.path, name, localtime=localtime, change=change,
                                                  records=records, attributes=_check_attributes(attributes))
        else:
            self._writer = BsreadH5Writer(self.path, layout="default" if name == "BSREAD" else "flat")

    @property
    def messages_written(self) -> int:
        """Records written so far."""
        return self._writer.messages_written

    def open(self) -> None:
        """Create (truncate) the file."""
        self._writer.open()
        _log.info("writing bsread messages to %s (%s layout)", self.path, self.layout)

    def close(self) -> None:
        """Shrink the datasets to the rows written and close the file (idempotent)."""
        self._writer.close()

    def __enter__(self) -> Hdf5Writer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_message(self, message: BsreadMessage) -> None:
        """Append one received message."""
        self.write(message.data, pulse_id=message.pulse_id, timestamp=message.timestamp)

    def write(self, data: Mapping[str, Any], *, pulse_id: int, timestamp: float | tuple[int, int]) -> None:
        """Append one record given as ``{channel: value}`` (``None`` = no value this pulse).

        Raises:
            DataFormatChanged: cam_server layouts without ``change``, when the record does not fit.
            ValueError: more than ``records`` records.
        """
        writer = self._writer
        if isinstance(writer, BsreadH5Writer):
            writer.write(data, pulse_id=pulse_id, timestamp=timestamp)
        else:
            writer.write(data, int(pulse_id), split_timestamp(timestamp))
