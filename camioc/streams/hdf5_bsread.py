"""camioc's own HDF5 layouts of bsread messages (``layout: BSREAD`` / ``BSREAD_COMPACT``).

cam_server's layouts (``DEFAULT``, ``FLAT``, ``BSH5``) are in :mod:`camioc.streams.hdf5`, which
also selects between all five. These two are what camioc wrote before it had cam_server's, kept
for their readers; both are readable by the tools PSI users have for ``bs h5`` files:

* ``BSREAD`` (psi-bsread ``bs h5``): a top-level ``/pulse_id`` with one row per message, and one
  group per channel with ``data``, ``pulse_id``, ``timestamp`` (s) and ``timestamp_offset`` (ns).
  A channel gets a row only when it has a value, so ``None`` values and channels that appear
  late cost nothing and stay aligned through the channel's own ``pulse_id``.
* ``BSREAD_COMPACT`` (``bs h5 --compact``): ``/pulse_id`` and ``/data/<channel>``, one row per
  message for every channel; rows without a value hold the fill value (NaN for floats, 0 for
  integers, "" for strings, False for bool).

Neither is cam_server's ``BSH5`` (that one has ``/global_timestamp`` and ``/<ch>/timestamp`` as
``[s, ns]`` pairs and no per-channel ``pulse_id``).

Data rows have the numpy shape of the value (an image ``(height, width)``), scalars are stored as
``(N, 1)`` like ``bs h5`` does. A value whose shape or type differs from its dataset's is skipped
with a warning (an HDF5 dataset cannot change shape). Datasets grow in blocks and are trimmed on
:meth:`BsreadH5Writer.close`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from camioc.streams.bsread import BsreadMessage, split_timestamp

__all__ = ["BsreadH5Writer"]

_log = logging.getLogger(__name__)
_GROW = 64  # rows added per resize: resizing per row costs more than the write itself


class _Column:
    """One appendable dataset with amortised growth."""

    def __init__(self, group: h5py.Group, name: str, dtype: Any, row_shape: tuple[int, ...],
                 fill: Any = None, compression: str | None = None) -> None:
        self.row_shape = row_shape
        self.dtype = dtype
        self.rows = 0
        self.dataset = group.create_dataset(
            name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype,
            chunks=(max(1, min(_GROW, (1 << 20) // max(1, int(np.prod(row_shape)) * 8))), *row_shape),
            fillvalue=fill, compression=compression,
        )

    def append(self, value: Any) -> None:
        if self.rows >= self.dataset.shape[0]:
            self.dataset.resize(self.rows + _GROW, axis=0)
        self.dataset[self.rows] = value
        self.rows += 1

    def pad_to(self, rows: int) -> None:
        """Extend with fill values up to ``rows`` (flat layout: a late channel or a missing value)."""
        if rows > self.dataset.shape[0]:
            self.dataset.resize(rows + _GROW, axis=0)
        self.rows = max(self.rows, rows)

    def trim(self) -> None:
        self.dataset.resize(self.rows, axis=0)


def _as_row(value: Any) -> tuple[Any, Any, tuple[int, ...]]:
    """(value to store, dtype, row shape) of one channel value."""
    if isinstance(value, str):
        return value, h5py.string_dtype(), ()
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return arr, arr.dtype.newbyteorder("=") if arr.dtype.byteorder == ">" else arr.dtype, arr.shape


def _fill_for(dtype: Any) -> Any:
    if dtype == h5py.string_dtype():
        return None
    kind = np.dtype(dtype).kind
    return np.nan if kind == "f" else (False if kind == "b" else 0)


class BsreadH5Writer:
    """Writes bsread messages (or plain channel dicts) to an HDF5 file, one row per message;
    ``layout`` ``"default"`` is ``BSREAD``, ``"flat"`` is ``BSREAD_COMPACT``."""

    def __init__(
        self,
        path: str | Path,
        *,
        layout: Literal["default", "flat"] = "default",
        compression: str | None = None,
    ) -> None:
        if layout not in ("default", "flat"):
            raise ValueError(f"layout must be 'default' or 'flat', not {layout!r}")
        self.path = Path(path)
        self.layout = layout
        self._compression = compression  # h5py filter for data columns, e.g. "gzip"
        self._file: h5py.File | None = None
        self._pulse_ids: _Column | None = None
        self._columns: dict[str, dict[str, _Column]] = {}
        self._mismatch_warned: set[str] = set()
        #: Messages written so far.
        self.messages_written = 0

    def open(self) -> None:
        """Create (truncate) the file."""
        if self._file is not None:
            return
        self._file = h5py.File(self.path, "w")
        self._pulse_ids = _Column(self._file, "pulse_id", np.int64, ())
        _log.info("writing bsread messages to %s (%s layout)", self.path, self.layout)

    def close(self) -> None:
        """Trim the datasets to their rows and close the file (idempotent)."""
        if self._file is None:
            return
        try:
            assert self._pulse_ids is not None
            self._pulse_ids.trim()
            for columns in self._columns.values():
                for column in columns.values():
                    if self.layout == "flat":
                        column.pad_to(self.messages_written)
                    column.trim()
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> BsreadH5Writer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_message(self, message: BsreadMessage) -> None:
        """Append one received message."""
        self.write(message.data, pulse_id=message.pulse_id, timestamp=message.timestamp)

    def write(self, data: Mapping[str, Any], *, pulse_id: int, timestamp: float | tuple[int, int]) -> None:
        """Append one message given as ``{channel: value}`` (``None`` = no value this pulse)."""
        if self._file is None or self._pulse_ids is None:
            raise RuntimeError("HDF5 writer is not open")
        sec, ns = split_timestamp(timestamp)
        row = self.messages_written
        for name, value in data.items():
            if value is None:
                continue
            stored, dtype, shape = _as_row(value)
            columns = self._columns.get(name) or self._create(name, dtype, shape)
            column = columns["data"]
            if shape != column.row_shape or (np.dtype(dtype) != np.dtype(column.dtype)
                                             and not np.can_cast(dtype, column.dtype, "same_kind")):
                if name not in self._mismatch_warned:
                    self._mismatch_warned.add(name)
                    _log.warning("channel %r changed to %s %s; its dataset is %s %s, value not written",
                                 name, dtype, shape, column.dtype, column.row_shape)
                continue
            if self.layout == "flat":
                column.pad_to(row)
                column.append(stored)
            else:
                column.append(stored)
                columns["pulse_id"].append(pulse_id)
                columns["timestamp"].append(sec)
                columns["timestamp_offset"].append(ns)
        self._pulse_ids.append(pulse_id)
        self.messages_written += 1

    def _create(self, name: str, dtype: Any, shape: tuple[int, ...]) -> dict[str, _Column]:
        assert self._file is not None
        compression = self._compression if dtype != h5py.string_dtype() else None
        if self.layout == "flat":
            group = self._file.require_group("data")
            columns = {"data": _Column(group, name, dtype, shape, _fill_for(dtype), compression)}
        else:
            group = self._file.require_group(name)
            columns = {"data": _Column(group, "data", dtype, shape, _fill_for(dtype), compression)}
            for meta in ("pulse_id", "timestamp", "timestamp_offset"):
                columns[meta] = _Column(group, meta, np.int64, ())
        self._columns[name] = columns
        return columns
