"""Native bsread (bsr_m-1.1 / bsr_d-1.1) over ZeroMQ: sender, receiver and the message types.

Why not wrap psi-bsread: its ``Sender`` copies every image twice (``tobytes()`` and pyzmq's copy),
rebuilds the data header and its MD5 on every ``send(data=...)``, and with ``block=False`` on PUSH
it emits *truncated* multipart messages when the queue is full (it sends part by part and swallows
``EAGAIN`` per part). Its ``Source`` copies every frame once more. The wire format itself is cheap,
so camioc writes it directly (reference: ``shared/reference/bsread.md`` §1, §1.10, §4, §5.2):

* one multipart message per pulse: ``[main header][data header]`` then ``[value][timestamp]`` per
  channel (``2 + 2N`` parts); empty value *and* timestamp parts mean "no value" (``None``);
* ``hash`` = MD5 hex digest of the data-header bytes as sent (after ``dh_compression``); the data
  header is sent in every message, receivers re-parse it only when the hash changes;
* shapes are fastest dimension first: a numpy image ``(height, width)`` is declared
  ``[width, height]`` and receivers reshape with ``shape[::-1]``;
* value encodings ``none`` and ``bitshuffle_lz4`` (HDF5-bitshuffle framing: ``>Q`` uncompressed
  bytes, ``>I`` block size in bytes, then the block stream). ``lz4`` is decoded (its size-prefix byte
  order differs between implementations, so the order is inferred) but never sent.

The pure encoder/decoder (:class:`BsreadEncoder`, :class:`BsreadDecoder`) are separate from the
sockets (:class:`BsreadSender`, :class:`BsreadReceiver`) so the format and the header policy can be
unit-tested without ZeroMQ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import zmq

from camioc.errors import InstanceError
from camioc.streams.zmq_monitor import PeerMonitor

__all__ = [
    "BITSHUFFLE_LZ4",
    "SUPPORTED_COMPRESSIONS",
    "SUPPORTED_TYPES",
    "BsreadDecoder",
    "BsreadEncoder",
    "BsreadMessage",
    "BsreadReceiver",
    "BsreadSender",
    "ChannelSpec",
    "CreateHeader",
    "HeaderPolicy",
    "MalformedMessageError",
    "split_timestamp",
]

_log = logging.getLogger(__name__)

MAIN_HTYPE: Final = "bsr_m-1.1"
DATA_HTYPE: Final = "bsr_d-1.1"
BITSHUFFLE_LZ4: Final = "bitshuffle_lz4"
LZ4: Final = "lz4"

#: bsread type name -> numpy dtype (without byte order). The 12 names every implementation knows.
SUPPORTED_TYPES: Final[Mapping[str, str]] = {
    "bool": "?",
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "int64": "i8",
    "uint64": "u8",
    "float32": "f4",
    "float64": "f8",
    "string": "u1",
}
#: Compressions a sender may use. ``lz4`` is refused on purpose (size-prefix interop bug, §1.7).
SUPPORTED_COMPRESSIONS: Final = (None, BITSHUFFLE_LZ4)

_DTYPE_TO_TYPE: Final[dict[tuple[str, int], str]] = {
    (np.dtype(code).kind, np.dtype(code).itemsize): name
    for name, code in SUPPORTED_TYPES.items()
    if name != "string"
}
_STRUCT_CODES: Final = {"?": "?", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i",
                        "u4": "I", "i8": "q", "u8": "Q", "f4": "f", "f8": "d"}
_NATIVE_ENCODING: Final = sys.byteorder  # "little" on every platform camioc runs on
_EMPTY: Final = b""
_LARGE_PART: Final = 65536  # pyzmq's COPY_THRESHOLD: below it a zero-copy frame costs more than a copy
_MAX_HEADER_BYTES: Final = 1 << 20  # a main header is ~150 bytes; anything huge is not a header


# ================================================================== public data types
@dataclass(frozen=True)
class ChannelSpec:
    """One channel of a bsread data header.

    ``shape`` is in bsread order (fastest dimension first: ``[width, height]`` for an image);
    ``compression`` is ``None`` for uncompressed (written as ``"none"`` on the wire).
    """

    name: str
    type: str
    shape: tuple[int, ...]
    compression: str | None = None
    encoding: str = "little"

    def to_header(self) -> dict[str, Any]:
        """The channel descriptor as it appears in the data-header JSON."""
        return {
            "name": self.name,
            "type": self.type,
            "shape": list(self.shape),
            "encoding": self.encoding,
            "compression": self.compression or "none",
        }

    @classmethod
    def from_header(cls, entry: Mapping[str, Any]) -> ChannelSpec:
        """Parse a channel descriptor, applying the protocol defaults (float64, shape [1], little)."""
        name = entry["name"]
        if not isinstance(name, str):
            raise ValueError(f"channel name must be a string, got {name!r}")
        ctype = str(entry.get("type") or "float64").lower()
        raw_shape = entry.get("shape") or [1]
        shape = tuple(int(n) for n in raw_shape)
        compression = entry.get("compression")
        if compression in ("none", ""):
            compression = None
        encoding = "big" if entry.get("encoding") == "big" else "little"
        return cls(name, ctype, shape, compression, encoding)

    @property
    def numpy_shape(self) -> tuple[int, ...]:
        """Shape in numpy (C) order: the bsread shape reversed."""
        return self.shape[::-1]

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy dtype including the byte order (``uint8`` for strings)."""
        code = SUPPORTED_TYPES.get(self.type)
        if code is None:
            raise ValueError(f"unsupported bsread type {self.type!r}")
        return np.dtype(code).newbyteorder("<" if self.encoding == "little" else ">")


#: The ``create_header`` modes of :class:`HeaderPolicy`.
CreateHeader: TypeAlias = Literal["once", "always", "on_change"]


@dataclass(frozen=True)
class HeaderPolicy:
    """When the data header is rebuilt (cam_server's pipeline ``create_header`` semantics).

    * ``on_change`` (default): infer the layout from the values and rebuild only when a channel
      appears, disappears or changes type/shape. Scalar width changes within one kind
      (``np.float32`` vs ``float``, ``np.int32`` vs ``int``) do not count: the value is cast to
      the declared type if it fits. With ``allow_type_changes``/``allow_shape_changes`` False an
      offending channel is sent as ``None`` and its declaration is kept.
    * ``once``: the first message fixes the layout forever; values are cast to it, channels that
      do not fit are sent as ``None`` and unknown channels are ignored (logged once).
    * ``always``: rebuild header and MD5 on every message (costs ~25 µs; mirrors
      ``check_data=True``).
    """

    create_header: CreateHeader = "on_change"
    allow_type_changes: bool = True
    allow_shape_changes: bool = True

    def __post_init__(self) -> None:
        if self.create_header not in ("once", "always", "on_change"):
            raise ValueError(
                f"create_header must be 'once', 'always' or 'on_change', not {self.create_header!r}"
            )


@dataclass
class BsreadMessage:
    """One received bsread message.

    ``data`` maps channel name to a read-only numpy array (numpy order, i.e. ``shape[::-1]``), a
    numpy scalar (1-element channels), a ``str`` or ``None`` (no value for this pulse, or a value
    that could not be decoded). ``format_changed`` is True when this message carried a data
    header different from the previous one (always True for the first message).
    """

    pulse_id: int
    timestamp: tuple[int, int]
    data: dict[str, Any]
    channels: tuple[ChannelSpec, ...]
    format_changed: bool
    hash: str = ""

    @property
    def timestamp_float(self) -> float:
        """Global timestamp as float seconds since the epoch (loses sub-µs precision)."""
        sec, ns = self.timestamp
        return sec + ns * 1e-9


class MalformedMessageError(ValueError):
    """A multipart message is not valid bsread (raised by :class:`BsreadDecoder` only)."""


# ================================================================== helpers
def split_timestamp(timestamp: float | tuple[int, int]) -> tuple[int, int]:
    """Return ``(sec, ns)`` from float seconds or an exact ``(sec, ns)`` pair."""
    if isinstance(timestamp, tuple):
        sec, ns = timestamp
        return int(sec), int(ns)
    frac, whole = math.modf(float(timestamp))
    sec = int(whole)
    ns = int(round(frac * 1e9))
    if ns < 0:
        sec -= 1
        ns += 1_000_000_000
    if ns >= 1_000_000_000:
        sec += 1
        ns -= 1_000_000_000
    return sec, ns


def _encoding_of(dtype: np.dtype[Any]) -> str:
    order = dtype.byteorder
    if order == ">":
        return "big"
    if order == "<":
        return "little"
    return _NATIVE_ENCODING


def _type_of_dtype(dtype: np.dtype[Any]) -> str:
    name = _DTYPE_TO_TYPE.get((dtype.kind, dtype.itemsize))
    if name is None:
        raise TypeError(
            f"dtype {dtype} cannot be sent over bsread (supported: bool, int8..uint64, float32/64, str)"
        )
    return name


def _block_elements(itemsize: int) -> int:
    """bitshuffle's default block: 8192 bytes worth of elements, a multiple of 8, at least 128."""
    return max(128, (8192 // itemsize) // 8 * 8)


def _bitshuffle_pack(arr: np.ndarray) -> bytes:
    import bitshuffle  # imported lazily: only compressed channels pay for it

    arr = np.ascontiguousarray(arr)
    block = _block_elements(arr.dtype.itemsize)
    body = bitshuffle.compress_lz4(arr, block)
    return struct.pack(">QI", arr.nbytes, block * arr.dtype.itemsize) + body.tobytes()


def _bitshuffle_unpack(buf: memoryview, dtype: np.dtype[Any]) -> np.ndarray | None:
    import bitshuffle

    if buf.nbytes < 12:
        raise ValueError(f"bitshuffle_lz4 value of {buf.nbytes} bytes is shorter than its header")
    nbytes, block_bytes = struct.unpack_from(">QI", buf, 0)
    if nbytes == 0:
        return None
    itemsize = dtype.itemsize
    if nbytes % itemsize or block_bytes % itemsize:
        raise ValueError(f"bitshuffle_lz4 sizes {nbytes}/{block_bytes} do not fit {dtype}")
    body = np.frombuffer(buf, dtype=np.uint8, offset=12)
    return bitshuffle.decompress_lz4(body, (nbytes // itemsize,), dtype, block_bytes // itemsize)


def _lz4_unpack(buf: memoryview, expected: int | None) -> bytes:
    """Decode a ``uint32 size + LZ4 block`` value whose prefix byte order is not standardised.

    C++ writes the prefix big-endian, Python little-endian, Java/Rust in the channel encoding:
    take the order whose size matches ``expected`` (known for numeric channels), else the
    plausible one.
    """
    import lz4.block

    if buf.nbytes < 4:
        raise ValueError("lz4 value shorter than its size prefix")
    little, big = struct.unpack_from("<I", buf)[0], struct.unpack_from(">I", buf)[0]
    payload = bytes(buf[4:])
    if expected is not None and expected in (little, big):
        size = expected
    else:
        limit = max(1 << 16, 256 * len(payload))  # LZ4 never expands by more than ~255x
        size = little if little <= limit else big
    return lz4.block.decompress(payload, uncompressed_size=size)


class _RateLimitedWarning:
    """Log a warning at most once per ``interval`` seconds, counting what was suppressed."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._last = -math.inf
        self._suppressed = 0

    def __call__(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            msg += " (%d similar warnings suppressed)"
            args = (*args, self._suppressed)
        self._last = now
        self._suppressed = 0
        _log.warning(msg, *args)


# ================================================================== encoder
class _Mismatch(Exception):
    """A value does not fit its declared channel (internal control flow of the encoder)."""


_Part = bytes | np.ndarray
_ValueEncoder = Callable[[Any], _Part]


def _value_encoder(spec: ChannelSpec) -> _ValueEncoder:
    """Build the function turning a value into the value part of ``spec`` (raises ``_Mismatch``)."""
    if spec.type == "string":

        def encode_string(value: Any) -> _Part:
            if not isinstance(value, str):
                raise _Mismatch
            raw = value.encode("utf-8")
            if spec.compression == BITSHUFFLE_LZ4:
                return _bitshuffle_pack(np.frombuffer(raw, dtype=np.uint8))
            return raw

        return encode_string

    dtype = spec.dtype
    nshape = spec.numpy_shape
    scalar = spec.shape == (1,)
    order = "<" if spec.encoding == "little" else ">"
    packer = struct.Struct(order + _STRUCT_CODES[SUPPORTED_TYPES[spec.type]])
    kind = dtype.kind

    def as_array(value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, np.generic | bool | int | float):
            arr = np.asarray(value)
        else:
            raise _Mismatch
        if arr.dtype != dtype:
            src = arr.dtype.kind
            if src not in "biuf" or (kind == "b") != (src == "b") or (src == "f" and kind in "iu"):
                raise _Mismatch  # never bool<->number or float->int (NaN, truncation)
            if arr.dtype.kind in "iu" and kind in "iu" and arr.size:
                info = np.iinfo(dtype)
                if arr.min() < info.min or arr.max() > info.max:
                    raise _Mismatch
            arr = arr.astype(dtype)
        if scalar:
            if arr.size != 1:
                raise _Mismatch
            arr = arr.reshape(1)
        elif arr.shape != nshape:
            raise _Mismatch
        return np.ascontiguousarray(arr)

    if spec.compression == BITSHUFFLE_LZ4:
        return lambda value: _bitshuffle_pack(as_array(value))

    if scalar:

        def encode_scalar(value: Any) -> _Part:
            if isinstance(value, np.ndarray):
                return as_array(value).tobytes()
            if kind != "b" and isinstance(value, bool | np.bool_):
                raise _Mismatch
            if kind in "iub" and isinstance(value, float | np.floating):
                raise _Mismatch
            try:
                return packer.pack(value)
            except (struct.error, OverflowError, TypeError) as exc:
                raise _Mismatch from exc

        return encode_scalar

    def encode_array(value: Any) -> _Part:
        if (
            type(value) is np.ndarray
            and value.dtype == dtype
            and value.shape == nshape
            and value.flags.c_contiguous
        ):
            return value  # the zero-copy fast path: handed to libzmq as is
        return as_array(value)

    return encode_array


def _infer_spec(name: str, value: Any, compression: str | None) -> ChannelSpec | None:
    """The channel a value would declare on its own (``None`` for a ``None`` value)."""
    if value is None:
        return None
    if isinstance(value, str):
        return ChannelSpec(name, "string", (1,), compression, "little")
    if isinstance(value, bool | np.bool_):
        return ChannelSpec(name, "bool", (1,), compression, "little")
    if isinstance(value, int):
        return ChannelSpec(name, "int64", (1,), compression, "little")
    if isinstance(value, float):
        return ChannelSpec(name, "float64", (1,), compression, "little")
    if isinstance(value, np.generic):
        return ChannelSpec(name, _type_of_dtype(value.dtype), (1,), compression, _encoding_of(value.dtype))
    if isinstance(value, np.ndarray):
        shape = tuple(value.shape[::-1]) if value.ndim else (1,)
        return ChannelSpec(name, _type_of_dtype(value.dtype), shape, compression, _encoding_of(value.dtype))
    raise TypeError(f"channel {name!r}: values of type {type(value).__name__} cannot be sent over bsread")


def _same_kind(a: str, b: str) -> bool:
    def kind(t: str) -> str:
        return "s" if t == "string" else np.dtype(SUPPORTED_TYPES[t]).kind

    return kind(a) == kind(b) and kind(a) != "s"


class _Layout:
    """One data header: channel specs, their encoders and the cached header bytes + MD5."""

    __slots__ = ("specs", "names", "by_name", "encoders", "header", "hash", "main_template")

    def __init__(self, specs: Sequence[ChannelSpec], dh_compression: str | None) -> None:
        self.specs = tuple(specs)
        self.names = tuple(s.name for s in self.specs)
        self.by_name = {s.name: s for s in self.specs}
        self.encoders = tuple(_value_encoder(s) for s in self.specs)
        doc = {"htype": DATA_HTYPE, "channels": [s.to_header() for s in self.specs]}
        header = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        if dh_compression == BITSHUFFLE_LZ4:
            header = _bitshuffle_pack(np.frombuffer(header, dtype=np.uint8))
        self.header = header
        self.hash = hashlib.md5(header).hexdigest()
        dh = f',"dh_compression":"{dh_compression}"' if dh_compression else ""
        # %-template: formatting three ints into bytes is ~10x cheaper than json.dumps per message.
        self.main_template = (
            f'{{"htype":"{MAIN_HTYPE}","pulse_id":%d,"global_timestamp":{{"sec":%d,"ns":%d}},"hash":"{self.hash}"{dh}}}'
        ).encode("ascii")


@dataclass(frozen=True)
class _Plan:
    """A layout plus the channels forced to ``None`` for this value signature."""

    layout: _Layout
    force_none: frozenset[str] = frozenset()
    lenient: bool = False


class BsreadEncoder:
    """Turns ``{channel: value}`` into the parts of one bsread message (no sockets involved).

    The data header, its MD5 and the per-channel encoders are cached per layout and looked up by
    a cheap signature of the values (names, Python types, dtypes and shapes), so a steady stream
    costs a dict lookup plus the value packing per message.
    """

    def __init__(
        self,
        *,
        header_policy: HeaderPolicy = HeaderPolicy(),
        data_compression: str | None = None,
        channel_compression: Mapping[str, str | None] | None = None,
        data_header_compression: str | None = None,
    ) -> None:
        for comp in (data_compression, data_header_compression, *(channel_compression or {}).values()):
            _check_compression(comp)
        self._policy = header_policy
        self._compression = _normalise_compression(data_compression)
        self._channel_compression = {
            k: _normalise_compression(v) for k, v in (channel_compression or {}).items()
        }
        self._dh_compression = _normalise_compression(data_header_compression)
        self._layout: _Layout | None = None
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._warn = _RateLimitedWarning()
        self._ignored: set[str] = set()
        #: How many times the data header was (re)built; "always" rebuilds on every message.
        self.header_changes = 0

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """The channels of the current data header (empty before the first message)."""
        return self._layout.specs if self._layout else ()

    @property
    def data_header_hash(self) -> str | None:
        """MD5 of the current data header, or None before the first message."""
        return self._layout.hash if self._layout else None

    def encode(
        self, data: Mapping[str, Any], *, pulse_id: int, timestamp: float | tuple[int, int]
    ) -> list[_Part]:
        """Return the ``2 + 2N`` parts of one message (arrays are referenced, not copied)."""
        if not data:
            raise ValueError("a bsread message needs at least one channel")
        values: Mapping[str, Any] = data
        if any(type(v) in (list, tuple) for v in data.values()):
            values = {k: (np.asarray(v) if type(v) in (list, tuple) else v) for k, v in data.items()}
        signature = tuple(
            (k, type(v), v.dtype, v.shape) if type(v) is np.ndarray else (k, type(v))
            for k, v in values.items()
        )
        plan = None if self._policy.create_header == "always" else self._plans.get(signature)
        value_parts = None
        if plan is not None:
            try:
                value_parts = self._encode_values(plan, values)
            except _Mismatch:
                plan = None  # e.g. an int that no longer fits a narrowed scalar type
        if plan is None or value_parts is None:
            plan = self._resolve(values)
            if len(self._plans) > 64:
                self._plans.clear()
            if self._policy.create_header != "always":
                self._plans[signature] = plan
            value_parts = self._encode_values(plan, values)

        sec, ns = split_timestamp(timestamp)
        layout = plan.layout
        parts: list[_Part] = [layout.main_template % (int(pulse_id), sec, ns), layout.header]
        ts_little = struct.pack("<qq", sec, ns)
        ts_big: bytes | None = None
        for spec, value in zip(layout.specs, value_parts, strict=True):
            if value is None:
                parts += (_EMPTY, _EMPTY)
            elif spec.encoding == "little":
                parts += (value, ts_little)
            else:
                ts_big = ts_big or struct.pack(">qq", sec, ns)
                parts += (value, ts_big)
        return parts

    # ------------------------------------------------------------------ internals
    def _compression_for(self, name: str) -> str | None:
        return self._channel_compression.get(name, self._compression)

    def _encode_values(self, plan: _Plan, values: Mapping[str, Any]) -> list[_Part | None]:
        out: list[_Part | None] = []
        force_none = plan.force_none
        for name, encoder in zip(plan.layout.names, plan.layout.encoders, strict=True):
            value = values.get(name)
            if value is None or name in force_none:
                out.append(None)
                continue
            try:
                out.append(encoder(value))
            except _Mismatch:
                if not plan.lenient:
                    raise
                self._warn("channel %r: value does not fit its declared type/shape; sent as None", name)
                out.append(None)
        return out

    def _set_layout(self, specs: Sequence[ChannelSpec]) -> _Layout:
        layout = _Layout(specs, self._dh_compression)
        if self._layout is not None and self._layout.hash != layout.hash:
            self._plans.clear()
            _log.debug("bsread data header changed (%d channels)", len(layout.specs))
        self._layout = layout
        self.header_changes += 1
        return layout

    def _infer(self, name: str, value: Any) -> ChannelSpec | None:
        return _infer_spec(name, value, self._compression_for(name))

    def _resolve(self, values: Mapping[str, Any]) -> _Plan:
        policy = self._policy
        current = self._layout
        if policy.create_header == "always" or current is None:
            specs = [self._infer(k, v) or ChannelSpec(k, "float64", (1,), self._compression_for(k))
                     for k, v in values.items()]
            return _Plan(self._set_layout(specs), lenient=policy.create_header == "once")
        if policy.create_header == "once":
            unknown = set(values) - set(current.names) - self._ignored
            if unknown:
                self._ignored |= unknown
                _log.warning("header policy 'once': channels %s are not in the header and are not sent",
                             sorted(unknown))
            return _Plan(current, lenient=True)
        return self._resolve_on_change(current, values)

    def _resolve_on_change(self, current: _Layout, values: Mapping[str, Any]) -> _Plan:
        policy = self._policy
        order: Iterable[str] = current.names if set(values) == set(current.names) else values.keys()
        specs: list[ChannelSpec] = []
        force_none: set[str] = set()
        for name in order:
            value = values[name]
            old = current.by_name.get(name)
            new = self._infer(name, value)
            if old is None:
                specs.append(new or ChannelSpec(name, "float64", (1,), self._compression_for(name)))
                continue
            if new is None or (new.type, new.shape, new.encoding) == (old.type, old.shape, old.encoding):
                specs.append(old)
                continue
            if old.shape == new.shape == (1,) and _same_kind(old.type, new.type):
                try:  # "width changes don't count": keep the declared scalar type if the value fits
                    _value_encoder(old)(value)
                    specs.append(old)
                    continue
                except _Mismatch:
                    pass
            type_changed = (new.type, new.encoding) != (old.type, old.encoding)
            shape_changed = new.shape != old.shape
            if (type_changed and not policy.allow_type_changes) or (
                shape_changed and not policy.allow_shape_changes
            ):
                self._warn("channel %r changed %s; change not allowed, sent as None", name,
                           "type" if type_changed else "shape")
                specs.append(old)
                force_none.add(name)
                continue
            specs.append(new)
        layout = current if tuple(specs) == current.specs else self._set_layout(specs)
        return _Plan(layout, frozenset(force_none))


def _normalise_compression(compression: str | None) -> str | None:
    return None if compression in (None, "none", "") else compression


def _check_compression(compression: str | None) -> None:
    if _normalise_compression(compression) not in SUPPORTED_COMPRESSIONS:
        raise ValueError(
            f"unsupported bsread compression {compression!r} (use None or 'bitshuffle_lz4'; "
            "'lz4' is not sent because implementations disagree on its size prefix)"
        )


# ================================================================== decoder
_ValueReader = Callable[[memoryview], Any]


def _value_reader(spec: ChannelSpec) -> _ValueReader:
    """Build the function turning a (non-empty) value part into a Python/numpy value."""
    if spec.type not in SUPPORTED_TYPES:
        raise ValueError(f"unsupported type {spec.type!r}")
    if spec.compression not in (None, BITSHUFFLE_LZ4, LZ4):
        raise ValueError(f"unsupported compression {spec.compression!r}")
    dtype = spec.dtype
    nshape = spec.numpy_shape
    count = math.prod(spec.shape)
    compression = spec.compression

    def raw_array(buf: memoryview) -> np.ndarray | None:
        if compression is None:
            arr = np.frombuffer(buf, dtype=dtype)
        elif compression == BITSHUFFLE_LZ4:
            arr = _bitshuffle_unpack(buf, dtype)
            if arr is None:
                return None
        else:
            expected = None if spec.type == "string" else count * dtype.itemsize
            arr = np.frombuffer(_lz4_unpack(buf, expected), dtype=dtype)
        arr.flags.writeable = False
        return arr

    if spec.type == "string":

        def read_string(buf: memoryview) -> str | None:
            arr = raw_array(buf)
            return None if arr is None else arr.tobytes().decode("utf-8", errors="replace")

        return read_string

    def read_number(buf: memoryview) -> Any:
        arr = raw_array(buf)
        if arr is None or arr.size == 0:
            return None
        if arr.size == 1:
            return arr[0]
        if spec.shape == (1,):  # lenient like psi-bsread: a "scalar" carrying several elements
            return arr
        if arr.size != count:
            raise ValueError(f"{arr.size} elements do not fit shape {list(spec.shape)}")
        return arr.reshape(nshape)

    return read_number


def _buffer(part: Any) -> memoryview:
    return part.buffer if isinstance(part, zmq.Frame) else memoryview(part)


class BsreadDecoder:
    """Decodes bsread multipart messages, caching channel readers per data-header hash.

    :meth:`decode` raises :class:`MalformedMessageError` for messages that are not bsread; a
    single channel that cannot be decoded becomes ``None`` (counted in ``channel_errors``), like
    psi-bsread does, so one bad channel does not cost the whole pulse.
    """

    def __init__(self) -> None:
        self._hash: str | None = None
        self._channels: tuple[ChannelSpec, ...] = ()
        self._readers: tuple[_ValueReader | None, ...] = ()
        self._warn = _RateLimitedWarning()
        #: Values that could not be decoded and were returned as None.
        self.channel_errors = 0

    def decode(self, parts: Sequence[Any]) -> BsreadMessage:
        """Decode one message given as a sequence of zmq Frames or bytes-like parts."""
        if len(parts) < 2:
            raise MalformedMessageError(f"message of {len(parts)} part(s), need at least 2")
        main = self._main_header(_buffer(parts[0]))
        digest = main["hash"]
        format_changed = digest != self._hash
        if format_changed:
            channels, readers = self._data_header(_buffer(parts[1]), main.get("dh_compression"))
        else:
            channels, readers = self._channels, self._readers
        if len(parts) != 2 + 2 * len(channels):
            raise MalformedMessageError(
                f"message has {len(parts)} parts, its data header declares {len(channels)} channels "
                f"({2 + 2 * len(channels)} parts)"
            )
        if format_changed:  # commit the cache only for a well-formed message
            self._hash, self._channels, self._readers = digest, channels, readers

        data: dict[str, Any] = {}
        for i, (spec, reader) in enumerate(zip(channels, readers, strict=True)):
            buf = _buffer(parts[2 + 2 * i])
            if buf.nbytes == 0 or reader is None:
                data[spec.name] = None
                continue
            try:
                data[spec.name] = reader(buf)
            except Exception as exc:  # noqa: BLE001 - one bad channel must not lose the pulse
                self.channel_errors += 1
                self._warn("cannot decode channel %r (%s %s %s): %s", spec.name, spec.type,
                           list(spec.shape), spec.compression or "none", exc)
                data[spec.name] = None
        return BsreadMessage(
            pulse_id=main["pulse_id"],
            timestamp=main["timestamp"],
            data=data,
            channels=channels,
            format_changed=format_changed,
            hash=digest,
        )

    @staticmethod
    def _main_header(buf: memoryview) -> dict[str, Any]:
        if buf.nbytes > _MAX_HEADER_BYTES or buf.nbytes < 2 or buf[0] != ord("{"):
            raise MalformedMessageError("first part is not a JSON main header")
        try:
            main = json.loads(bytes(buf))
        except ValueError as exc:
            raise MalformedMessageError(f"main header is not JSON: {exc}") from exc
        if not isinstance(main, dict) or not str(main.get("htype", "")).startswith("bsr_m"):
            raise MalformedMessageError("main header htype is not bsr_m")
        pulse_id, digest = main.get("pulse_id"), main.get("hash")
        if not isinstance(pulse_id, int) or isinstance(pulse_id, bool) or not isinstance(digest, str):
            raise MalformedMessageError("main header lacks an integer pulse_id or a hash")
        stamp = main.get("global_timestamp")
        if isinstance(stamp, dict):
            sec = stamp.get("sec", stamp.get("epoch", 0))
            ns = stamp.get("ns", 0)
            try:
                main["timestamp"] = (int(sec), int(ns))
            except (TypeError, ValueError) as exc:
                raise MalformedMessageError(f"invalid global_timestamp {stamp!r}") from exc
        else:
            main["timestamp"] = (0, 0)
        return main

    def _data_header(
        self, buf: memoryview, dh_compression: str | None
    ) -> tuple[tuple[ChannelSpec, ...], tuple[_ValueReader | None, ...]]:
        try:
            compression = _normalise_compression(dh_compression)
            if compression is None:
                raw = bytes(buf)
            elif compression == BITSHUFFLE_LZ4:
                arr = _bitshuffle_unpack(buf, np.dtype(np.uint8))
                raw = b"" if arr is None else arr.tobytes()
            elif compression == LZ4:
                raw = _lz4_unpack(buf, None)
            else:
                raise ValueError(f"unsupported dh_compression {dh_compression!r}")
            doc = json.loads(raw)
            if not str(doc.get("htype", "")).startswith("bsr_d"):
                raise ValueError("htype is not bsr_d")
            channels = tuple(ChannelSpec.from_header(c) for c in doc["channels"])
        except MalformedMessageError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure means "not bsread"
            raise MalformedMessageError(f"invalid data header: {exc}") from exc
        if not channels:
            raise MalformedMessageError("data header declares no channels")
        readers: list[_ValueReader | None] = []
        for spec in channels:
            try:
                readers.append(_value_reader(spec))
            except ValueError as exc:
                _log.warning("channel %r cannot be decoded and is returned as None: %s", spec.name, exc)
                readers.append(None)
        return channels, tuple(readers)


# ================================================================== sockets
def _socket_type(mode: str, allowed: Mapping[str, int]) -> int:
    try:
        return allowed[mode.upper()]
    except KeyError:
        raise ValueError(f"mode must be one of {sorted(allowed)}, not {mode!r}") from None


def _base_send(sock: zmq.Socket) -> Callable[[Any, int, bool], Any]:
    """The backend's ``send`` of ``sock``, skipping pyzmq's Python-level wrapper.

    The wrapper only adds DRAFT routing-id/group handling, yet doubles the cost of a part
    (~1.1 vs ~0.5 µs); a pipeline message with 70 channels has 142 parts.
    """
    try:
        return super(zmq.Socket, sock).send  # type: ignore[return-value]
    except (AttributeError, TypeError):  # a different pyzmq layout: the public method works too
        return sock.send


def _unopened(*_: Any) -> Any:
    raise InstanceError("bsread sender is not open")


#: Buffered PUSH streams: how long (at least) the first client may take to accept the buffer.
FLUSH_WAIT: Final = 2.0


class BsreadSender:
    """Publishes bsread messages on a PUB or PUSH socket, binding (default) or connecting.

    Zero-copy: arrays of 64 KiB or more are handed to libzmq without copying; **the caller must
    not modify an array after passing it to** :meth:`send` (allocate a new one per frame, or copy
    first). Non-contiguous arrays are made contiguous (one copy).

    Atomic: the first part decides. PUB never blocks (a slow subscriber loses whole messages at
    its high-water mark); PUSH either blocks (``block=True``, optionally bounded by
    ``send_timeout`` seconds) or drops the message when the queue is full (``block=False``).
    Once the first part is accepted libzmq accepts the rest (HWM counts whole messages), so the
    remaining parts are sent blocking and a truncated or unterminated message is impossible.

    Buffered (``buffer_size`` N > 0, cam_server's pipeline ``buffer_size``): until the first client
    is there, :meth:`send` keeps the last N messages instead of sending them; the first
    :meth:`send` that finds the client there delivers them, oldest first, before its own message.
    So a client that connects after the stream started still gets the N frames made just before
    it connected.
    "The client is there" is exact for both modes: PUB uses an XPUB socket (wire-compatible with
    PUB) and waits for the first subscription (a SUB client receives from then on, no
    slow-joiner loss); PUSH waits for a connected peer and delivers the buffer with a bounded
    blocking send (at least :data:`FLUSH_WAIT` s; a peer not ready by then keeps the buffer for
    the next send). After the first delivery the stream behaves as an unbuffered one.

    Not thread-safe for sending (one sending thread); :meth:`client_count` and
    :meth:`seconds_without_clients` may be called from any thread.
    """

    def __init__(
        self,
        *,
        mode: str = "PUB",
        port: int | None = None,
        host: str = "127.0.0.1",
        conn_type: str = "bind",
        address: str | None = None,
        queue_size: int = 10,
        block: bool = False,
        send_timeout: float | None = None,
        data_compression: str | None = None,
        header_policy: HeaderPolicy = HeaderPolicy(),
        context: zmq.Context | None = None,
        channel_compression: Mapping[str, str | None] | None = None,
        data_header_compression: str | None = None,
        buffer_size: int = 0,
    ) -> None:
        self._sock_type = _socket_type(mode, {"PUB": zmq.PUB, "PUSH": zmq.PUSH})
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0:
            raise ValueError(f"buffer_size must be an integer >= 0, not {buffer_size!r}")
        self._publishing = self._sock_type == zmq.PUB
        #: messages kept until the first client is there (None: not buffering, or done)
        self._buffer: deque[list[_Part]] | None = deque(maxlen=buffer_size) if buffer_size else None
        self._subscribed = False
        if self._buffer is not None and self._publishing:
            self._sock_type = zmq.XPUB  # tells us when the first subscription arrives
        if conn_type not in ("bind", "connect"):
            raise ValueError(f"conn_type must be 'bind' or 'connect', not {conn_type!r}")
        if conn_type == "connect" and address is None and not port:
            raise ValueError("conn_type='connect' needs an address or a port")
        self._mode = mode.upper()
        self._port_arg = port
        self._host = host
        self._conn_type = conn_type
        self._address = address
        self._queue_size = int(queue_size)
        self._block = block
        self._send_timeout = send_timeout
        self._context = context
        self._encoder = BsreadEncoder(
            header_policy=header_policy,
            data_compression=data_compression,
            channel_compression=channel_compression,
            data_header_compression=data_header_compression,
        )
        self._socket: zmq.Socket | None = None
        self._monitor: PeerMonitor | None = None
        self._send_part: Callable[[Any, int, bool], Any] = _unopened
        self._owned_context: zmq.Context | None = None
        self._endpoint = ""
        #: Messages handed to libzmq (PUB: includes those a slow subscriber later drops).
        self.messages_sent = 0
        #: Messages dropped because the PUSH queue was full / the send timed out.
        self.messages_dropped = 0
        #: Bytes of the messages handed to libzmq (cam_server's ``total_bytes`` statistic).
        self.bytes_sent = 0

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Create the socket, start peer counting, bind or connect."""
        if self._socket is not None:
            return
        # A private context unless one is given: close() terminates it, which returns only once
        # libzmq has released every zero-copy frame. With the shared global context, libzmq's I/O
        # thread could still be reading a numpy buffer (during LINGER) while the interpreter
        # exits and frees it: observed as a SIGSEGV at worker exit.
        context = self._context or zmq.Context()
        self._owned_context = None if self._context else context
        sock = context.socket(self._sock_type)
        hwm = self._queue_size
        if self._buffer is not None and self._publishing:
            hwm += self._buffer.maxlen or 0  # PUB drops at HWM: room for the buffer delivered at once
        sock.setsockopt(zmq.SNDHWM, hwm)
        # Never LINGER 0 on a sender: closing with LINGER 0 while a peer drops mid-way through a
        # multipart message can abort the process in libzmq 4.3.x (errno_assert in
        # session_base.cpp clean_pipes: the half-sent message can no longer be drained). A short
        # linger keeps the pipe drainable; PUSH gets longer to deliver what it queued.
        sock.setsockopt(zmq.LINGER, 200 if self._publishing else 1000)
        monitor = PeerMonitor(sock, name=f"bsread-{self._mode.lower()}")
        try:
            if self._conn_type == "bind":
                endpoint = self._address or f"tcp://{self._host}:{self._port_arg or '*'}"
                sock.bind(endpoint)
                self._endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            else:
                endpoint = self._address or f"tcp://{self._host}:{self._port_arg}"
                sock.connect(endpoint)
                self._endpoint = endpoint
        except zmq.ZMQError as exc:
            monitor.close()
            sock.close(linger=0)
            if self._owned_context is not None:
                self._owned_context.term()
                self._owned_context = None
            raise InstanceError(f"Cannot {self._conn_type} bsread stream on {endpoint}: {exc}") from exc
        self._socket, self._monitor = sock, monitor
        self._send_part = _base_send(sock)
        _log.info("bsread %s stream %s on %s", self._mode, self._conn_type, self._endpoint)

    def close(self) -> None:
        """Stop peer counting and close the socket (idempotent); call it from the sending thread.

        With the sender's own context (``context=None``) this blocks until queued messages are
        delivered or LINGER expires (0.2 s PUB, 1 s PUSH), so every array passed to :meth:`send`
        is released by libzmq when it returns. With a caller-provided context that guarantee
        comes only from terminating that context.
        """
        sock, monitor, context = self._socket, self._monitor, self._owned_context
        self._socket = self._monitor = self._owned_context = None
        self._send_part = _unopened
        if monitor is not None:
            monitor.close()
        if sock is not None:
            sock.close()
        if context is not None:
            context.term()

    def __enter__(self) -> BsreadSender:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ properties
    @property
    def endpoint(self) -> str:
        """The bound (port resolved) or connected endpoint, e.g. ``tcp://127.0.0.1:10100``."""
        return self._endpoint

    @property
    def port(self) -> int:
        """TCP port of :attr:`endpoint` (0 for non-TCP endpoints such as ``ipc://``)."""
        if self._endpoint.startswith("tcp://"):
            return int(self._endpoint.rsplit(":", 1)[1])
        return 0

    @property
    def header_changes(self) -> int:
        """How many times the data header was (re)built (see :class:`HeaderPolicy`)."""
        return self._encoder.header_changes

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """Channels of the current data header."""
        return self._encoder.channels

    # ------------------------------------------------------------------ sending
    def send(
        self, data: Mapping[str, Any], *, pulse_id: int, timestamp: float | tuple[int, int]
    ) -> bool:
        """Send one message; True if handed to libzmq, False if dropped (PUSH queue full/timeout).

        Python ``int`` -> int64, ``float`` -> float64, ``str`` -> string, ``bool`` -> bool, numpy
        scalars and arrays keep their dtype, lists become arrays, ``None`` -> empty value and
        timestamp parts. Every channel timestamp equals the global ``timestamp`` (float seconds or
        exact ``(sec, ns)``). Raises ``TypeError`` for values bsread cannot carry.
        """
        sock = self._socket
        if sock is None:
            raise InstanceError("bsread sender is not open")
        parts = self._encoder.encode(data, pulse_id=pulse_id, timestamp=timestamp)
        buffer = self._buffer
        if buffer is not None:
            if not (self._client_arrived(sock) and self._flush(sock, buffer)):
                buffer.append(parts)  # beyond buffer_size the oldest message is forgotten
                return True
            self._buffer = None
        if not self._send_parts(sock, parts):
            self.messages_dropped += 1
            return False
        return True

    @property
    def buffered(self) -> int:
        """Messages kept for the first client (``buffer_size``); 0 once they were delivered."""
        return len(self._buffer) if self._buffer is not None else 0

    def _send_parts(self, sock: zmq.Socket, parts: list[_Part], wait: float | None = None) -> bool:
        """One whole message, or nothing (False) if its first part is not accepted."""
        if not self._send_first(sock, parts[0], wait):
            return False
        send = self._send_part
        more = zmq.SNDMORE
        for part in parts[1:-1]:
            send(part, more, type(part) is bytes)
        send(parts[-1], 0, type(parts[-1]) is bytes)
        self.messages_sent += 1
        self.bytes_sent += sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
        return True

    def _client_arrived(self, sock: zmq.Socket) -> bool:
        """Buffering: is the first client there? PUB (XPUB socket): a subscription was received;
        PUSH: a peer is connected."""
        if not self._publishing:
            return self.client_count() > 0
        while not self._subscribed and sock.poll(0, zmq.POLLIN):
            try:
                event = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._subscribed = event[:1] == b"\x01"  # 1 = subscribe, 0 = unsubscribe
        return self._subscribed

    def _flush(self, sock: zmq.Socket, buffer: deque[list[_Part]]) -> bool:
        """Deliver the buffered messages oldest first; False (rest kept) if the PUSH peer could
        not take one within the flush wait."""
        wait = max(FLUSH_WAIT, self._send_timeout or 0.0)
        while buffer:
            if not self._send_parts(sock, buffer[0], wait):
                return False
            buffer.popleft()
        return True

    def _send_first(self, sock: zmq.Socket, part: _Part, wait: float | None = None) -> bool:
        """Send the first part: PUB always; PUSH blocking (``block``), bounded by ``send_timeout``,
        or without waiting; ``wait`` (seconds) overrides for the buffered delivery."""
        # The pyright ignores below: pyzmq types ``data`` as a PEP 688 ``Buffer``, and numpy's stubs
        # give ndarray ``__buffer__`` only for Python >= 3.12; every ndarray is a buffer at runtime.
        if self._publishing:
            # PUB never blocks: at HWM libzmq drops the whole message
            sock.send(part, zmq.SNDMORE)  # pyright: ignore[reportCallIssue, reportArgumentType]
            return True
        if wait is None and self._block and self._send_timeout is None:
            sock.send(part, zmq.SNDMORE)  # pyright: ignore[reportCallIssue, reportArgumentType]
            return True
        if wait is not None:
            timeout = wait
        else:
            timeout = (self._send_timeout or 0.0) if self._block else 0.0
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock.send(part, zmq.SNDMORE | zmq.NOBLOCK)  # pyright: ignore[reportCallIssue, reportArgumentType]
                return True
            except zmq.Again:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sock.poll(max(1, int(remaining * 1000)), zmq.POLLOUT):
                    return False

    # ------------------------------------------------------------------ clients
    def client_count(self) -> int:
        """Number of connected peers (SUB/PULL clients), from the socket monitor."""
        return self._monitor.count() if self._monitor else 0

    def seconds_without_clients(self) -> float:
        """0.0 while a client is connected; seconds since the last one left (or since open)."""
        return self._monitor.seconds_without_clients() if self._monitor else 0.0

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait (event-driven) until at least ``count`` peers are connected; return whether so."""
        if self._monitor is None:
            return False
        return self._monitor.wait_for(lambda n: n >= count, timeout)


class BsreadReceiver:
    """Receives bsread messages on a SUB (default) or PULL socket, zero-copy.

    Arrays in the returned messages are read-only views into the received ZMQ frames (they keep
    the frame alive); ``.copy()`` them before modifying. Malformed messages are dropped with a
    rate-limited warning and counted in :attr:`malformed`; :meth:`receive` never raises for bad
    input and keeps waiting until its deadline.
    """

    def __init__(
        self,
        address: str,
        *,
        mode: str = "SUB",
        conn_type: str = "connect",
        queue_size: int = 10,
        receive_timeout: float = 1.0,
        context: zmq.Context | None = None,
    ) -> None:
        self._sock_type = _socket_type(mode, {"SUB": zmq.SUB, "PULL": zmq.PULL})
        if conn_type not in ("bind", "connect"):
            raise ValueError(f"conn_type must be 'bind' or 'connect', not {conn_type!r}")
        self._address = address
        self._conn_type = conn_type
        self._queue_size = int(queue_size)
        self.receive_timeout = receive_timeout
        self._context = context
        self._socket: zmq.Socket | None = None
        self._decoder = BsreadDecoder()
        self._warn = _RateLimitedWarning()
        #: Messages dropped because they were not valid bsread.
        self.malformed = 0
        #: Valid messages returned.
        self.messages_received = 0

    @property
    def channel_errors(self) -> int:
        """Channel values that could not be decoded (returned as None)."""
        return self._decoder.channel_errors

    @property
    def address(self) -> str:
        """The endpoint connected to (or bound, with the port resolved)."""
        return self._address

    @property
    def socket(self) -> zmq.Socket | None:
        """The ZMQ socket (None until connected): to poll several receivers together."""
        return self._socket

    def connect(self) -> None:
        """Create the socket and connect (or bind)."""
        if self._socket is not None:
            return
        context = self._context or zmq.Context.instance()
        sock = context.socket(self._sock_type)
        sock.setsockopt(zmq.RCVHWM, self._queue_size)
        sock.setsockopt(zmq.LINGER, 0)
        if self._sock_type == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            if self._conn_type == "connect":
                sock.connect(self._address)
            else:
                sock.bind(self._address)
                self._address = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise InstanceError(f"Cannot {self._conn_type} to bsread stream {self._address}: {exc}") from exc
        self._socket = sock

    def close(self) -> None:
        """Close the socket (idempotent)."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close(linger=0)

    def __enter__(self) -> BsreadReceiver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receive(self, timeout: float | None = None) -> BsreadMessage | None:
        """Return the next valid message, or None after ``timeout`` s (default ``receive_timeout``).

        ``timeout=0`` polls without waiting; a negative timeout waits forever.
        """
        sock = self._socket
        if sock is None:
            raise InstanceError("bsread receiver is not connected")
        wait = self.receive_timeout if timeout is None else timeout
        deadline = math.inf if wait < 0 else time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            poll_ms = -1 if remaining == math.inf else max(0, int(math.ceil(remaining * 1000)))
            if not sock.poll(poll_ms, zmq.POLLIN):
                return None
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                continue
            try:
                message = self._decoder.decode(parts)
            except MalformedMessageError as exc:
                self.malformed += 1
                self._warn("dropped a malformed bsread message from %s: %s", self._address, exc)
                if time.monotonic() >= deadline:
                    return None
                continue
            self.messages_received += 1
            return message
