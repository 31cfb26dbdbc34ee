"""Merging a second bsread stream into a pipeline's input, frame by frame, by pulse id.

Two uses (compat §2.2 item 4 and §2.1):

* a **processing** pipeline with ``bsread_address`` (or ``bsread_channels`` read from the
  dispatcher): every camera frame waits for the bsread message of the same pulse id; the matched
  channels reach the function as ``bsdata`` and the output message;
* a **stream** pipeline with ``bsread_address2``/``bsread_channels2``: the messages of its two
  inputs are merged into one message per pulse id.

:class:`PidMatcher` is the pure pulse-id matching (no sockets; unit-tested alone);
:class:`MergedInput` is the socket side: two :class:`BsreadReceiver` polled together, with the
``receive(timeout)``/``close()``/``address`` interface of a single receiver, so the worker loop
treats a merged input like any other.

Both buffers are bounded. A primary message (camera frame, stream 1) whose partner can no longer
arrive is **missing**: it was evicted from a full buffer, or it is older than the newest secondary
pulse id (streams are in pulse-id order, so the partner was lost). Missing messages are counted
(:attr:`PidMatcher.missing`), logged (rate-limited) and reported in the worker statistics; they are
not processed, as in cam_server, whose merged output only ever holds matched frames. Secondary
messages that no primary message asked for (bsread data at 100 Hz for a 10 Hz camera) are normal:
they are counted as :attr:`PidMatcher.unused`, not as an error.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import zmq

from camioc.config.pipeline import PipelineConfig
from camioc.errors import ConfigError
from camioc.streams.bsread import BsreadMessage, BsreadReceiver

log = logging.getLogger(__name__)

#: Pipeline types whose function receives ``bsdata`` (``bsread_address``/``bsread_channels``).
IMAGE_PIPELINE_TYPES: tuple[str, ...] = ("processing", "custom", "script")

#: Camera frames waiting for their bsread message (cam_server: 1000, max 5000). camioc's default
#: is 100: at 100 Hz that is one second of data delay, and 1000 frames of a 1280x960 16-bit camera
#: would hold 2.4 GB while the bsread source is late.
DEFAULT_IMAGE_BUFFER = 100
MAX_IMAGE_BUFFER = 5000
#: bsread messages waiting for their camera frame (cam_server's default and maximum).
DEFAULT_DATA_BUFFER = 1000
MAX_DATA_BUFFER = 10000
#: Stream-pipeline merge: per-input ZMQ receive queue and messages waiting for their partner
#: (cam_server's defaults).
DEFAULT_MERGE_QUEUE_SIZE = 100
DEFAULT_MERGE_BUFFER_SIZE = 100
#: bsread input mode when none is configured (cam_server's default input mode).
DEFAULT_MODE = "SUB"

T = TypeVar("T")
S = TypeVar("S")


class PidMatcher(Generic[T, S]):
    """Pairs primary and secondary items with equal pulse ids; both buffers bounded.

    Items must arrive in increasing pulse-id order on each side (bsread streams do); the two
    sides may interleave arbitrarily. Every ``add_*`` returns the pairs it completed, as
    ``(pulse_id, primary, secondary)``, in primary order.
    """

    def __init__(self, primary_size: int, secondary_size: int) -> None:
        if primary_size < 1 or secondary_size < 1:
            raise ValueError(f"buffer sizes must be >= 1, got {primary_size} and {secondary_size}")
        self.primary_size = primary_size
        self.secondary_size = secondary_size
        self._primary: collections.OrderedDict[int, T] = collections.OrderedDict()
        self._secondary: collections.OrderedDict[int, S] = collections.OrderedDict()
        self._newest_secondary: int | None = None
        #: Pairs completed.
        self.matched = 0
        #: Primary items dropped without a partner (evicted, or older than the newest secondary).
        self.missing = 0
        #: Secondary items dropped without being asked for (evicted, or older than a match).
        self.unused = 0
        #: Pulse id of the latest missing primary item (None if none yet).
        self.last_missing: int | None = None

    @property
    def waiting(self) -> tuple[int, int]:
        """How many (primary, secondary) items are buffered now."""
        return len(self._primary), len(self._secondary)

    def add_primary(self, pulse_id: int, item: T) -> list[tuple[int, T, S]]:
        """A primary item arrived: pair it now, buffer it, or count it missing."""
        partner = self._secondary.pop(pulse_id, _NONE)
        if partner is not _NONE:
            self._drop_secondary_older_than(pulse_id)
            self.matched += 1
            return [(pulse_id, item, partner)]  # type: ignore[list-item]
        if self._newest_secondary is not None and pulse_id < self._newest_secondary:
            self._count_missing(pulse_id)
            return []
        self._primary[pulse_id] = item
        while len(self._primary) > self.primary_size:
            old, _ = self._primary.popitem(last=False)
            self._count_missing(old)
        return []

    def add_secondary(self, pulse_id: int, item: S) -> list[tuple[int, T, S]]:
        """A secondary item arrived: pair it with a waiting primary item or buffer it."""
        if self._newest_secondary is None or pulse_id > self._newest_secondary:
            self._newest_secondary = pulse_id
        out: list[tuple[int, T, S]] = []
        # primary items older than this pulse id can no longer be paired
        while self._primary:
            oldest = next(iter(self._primary))
            if oldest >= pulse_id:
                break
            self._primary.popitem(last=False)
            self._count_missing(oldest)
        primary = self._primary.pop(pulse_id, _NONE)
        if primary is not _NONE:
            self._drop_secondary_older_than(pulse_id)
            self.matched += 1
            out.append((pulse_id, primary, item))  # type: ignore[arg-type]
            return out
        self._secondary[pulse_id] = item
        while len(self._secondary) > self.secondary_size:
            self._secondary.popitem(last=False)
            self.unused += 1
        return out

    def clear(self) -> None:
        """Forget every buffered item (an input was reconnected); counters are kept."""
        self.missing += len(self._primary)
        self.unused += len(self._secondary)
        self._primary.clear()
        self._secondary.clear()
        self._newest_secondary = None

    def _drop_secondary_older_than(self, pulse_id: int) -> None:
        while self._secondary:
            oldest = next(iter(self._secondary))
            if oldest >= pulse_id:
                break
            self._secondary.popitem(last=False)
            self.unused += 1

    def _count_missing(self, pulse_id: int) -> None:
        self.missing += 1
        self.last_missing = pulse_id


_NONE: Any = object()


# ------------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class MergeSettings:
    """Where the second input comes from and how the merge is bounded (resolved from a config).

    ``role`` is ``"bsdata"`` (processing pipelines: channels for the function) or ``"stream2"``
    (stream pipelines). ``channels`` (None: all) restricts which secondary channels are merged.
    """

    role: str
    address: str
    mode: str
    channels: tuple[str, ...] | None
    primary_buffer: int
    secondary_buffer: int
    queue_size: int
    from_dispatcher: bool = False


def channel_list(value: Any) -> tuple[str, ...] | None:
    """cam_server's channel list: a list, a JSON list in a string, or empty/None (= no list)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    items = list(value)
    if len(items) == 1 and isinstance(items[0], str) and items[0].strip().startswith("["):
        try:
            items = json.loads(items[0])
        except ValueError:
            raise ConfigError(f"Invalid channel list: {items[0]!r} is not a JSON list of names") from None
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigError(f"Invalid channel list {items!r}: channel names must be non-empty strings")
    return tuple(items) or None


#: A pipeline config as the input-side helpers take it: typed (the worker) or the effective
#: mapping (the manager's checks before a start or an update).
Settings = PipelineConfig | Mapping[str, Any]


def setting(config: Settings, key: str) -> Any:
    """The value of cam_server key ``key``: the typed attribute of a :class:`PipelineConfig`
    (unset keys are ``None`` there too), ``config.get(key)`` of a mapping."""
    if isinstance(config, PipelineConfig):
        return getattr(config, key)
    return config.get(key)


def merge_settings(config: Settings, dispatcher_url: str | None) -> MergeSettings | None:
    """The second input a config asks for, or None.

    Raises:
        ConfigError: ``bsread_channels``/``bsread_channels2`` without an address and no
            dispatcher configured (neither ``--dispatcher-url`` nor the config's ``dispatcher_url``).
    """
    pipeline_type = setting(config, "pipeline_type") or "processing"
    dispatcher = setting(config, "dispatcher_url") or dispatcher_url
    if pipeline_type in IMAGE_PIPELINE_TYPES:
        address = setting(config, "bsread_address")
        channels = channel_list(setting(config, "bsread_channels"))
        if not address and not channels:
            return None
        from_dispatcher = not address
        if from_dispatcher:
            address = _dispatcher_or_fail("bsread_channels", "bsread_address", dispatcher)
        return MergeSettings(
            role="bsdata", address=str(address), mode=str(setting(config, "bsread_mode") or DEFAULT_MODE).upper(),
            channels=channels,
            primary_buffer=int(setting(config, "bsread_image_buf") or DEFAULT_IMAGE_BUFFER),
            secondary_buffer=int(setting(config, "bsread_data_buf") or DEFAULT_DATA_BUFFER),
            queue_size=int(setting(config, "bsread_data_buf") or DEFAULT_DATA_BUFFER),
            from_dispatcher=from_dispatcher)
    if pipeline_type == "stream":
        address = setting(config, "bsread_address2") or setting(config, "input_stream2")
        channels = channel_list(setting(config, "bsread_channels2"))
        if not address and not channels:
            return None
        from_dispatcher = not address
        if from_dispatcher:
            address = _dispatcher_or_fail("bsread_channels2", "bsread_address2", dispatcher)
        buffer = int(setting(config, "merge_buffer_size") or DEFAULT_MERGE_BUFFER_SIZE)
        mode = setting(config, "bsread_mode2") or setting(config, "input_mode2") or DEFAULT_MODE
        return MergeSettings(
            role="stream2", address=str(address), mode=str(mode).upper(), channels=channels,
            primary_buffer=buffer, secondary_buffer=buffer,
            queue_size=int(setting(config, "merge_queue_size") or DEFAULT_MERGE_QUEUE_SIZE),
            from_dispatcher=from_dispatcher)
    return None


def _dispatcher_or_fail(channels_key: str, address_key: str, dispatcher: str | None) -> str:
    if not dispatcher:
        raise ConfigError(
            f"'{channels_key}' without '{address_key}' needs a dispatcher: start camioc with "
            f"--dispatcher-url (a bsread stream address), or give '{address_key}'.")
    return str(dispatcher)


# ------------------------------------------------------------------------------------------------
# the socket side


@dataclass
class MergedMessage(BsreadMessage):
    """A primary message with the secondary channels added; ``merged`` names the added ones."""

    merged: tuple[str, ...] = ()


def merge_messages(primary: BsreadMessage, secondary: BsreadMessage,
                   channels: Iterable[str] | None = None) -> MergedMessage:
    """The primary message plus the secondary's channels (``channels``: only those).

    Primary channels win on a name clash (the camera's ``image``, ``timestamp``, ... are never
    replaced by a bsread channel of the same name); pulse id and timestamps are the primary's.
    """
    wanted = None if channels is None else set(channels)
    data = dict(primary.data)
    merged = []
    for name, value in secondary.data.items():
        if name in data or (wanted is not None and name not in wanted):
            continue
        data[name] = value
        merged.append(name)
    specs = primary.channels + tuple(s for s in secondary.channels if s.name in merged)
    return MergedMessage(
        pulse_id=primary.pulse_id, timestamp=primary.timestamp, data=data, channels=specs,
        format_changed=primary.format_changed or secondary.format_changed,
        hash=primary.hash + secondary.hash, merged=tuple(merged))


class MergedInput:
    """Two bsread inputs polled together; :meth:`receive` returns merged messages.

    Same interface as :class:`BsreadReceiver` for the worker loop (``connect``, ``receive``,
    ``close``, ``address``, ``messages_received``). Each input has its own bounded ZMQ queue
    (``queue_size`` messages); both are drained before matching so that neither side starves.
    """

    #: Messages read from one socket per round before looking at the other one.
    DRAIN = 64

    def __init__(self, primary: BsreadReceiver, settings: MergeSettings) -> None:
        self.primary = primary
        self.settings = settings
        self.secondary = BsreadReceiver(settings.address, mode=settings.mode, queue_size=settings.queue_size,
                                        receive_timeout=0.0)
        self.matcher: PidMatcher[BsreadMessage, BsreadMessage] = PidMatcher(
            settings.primary_buffer, settings.secondary_buffer)
        self._ready: collections.deque[MergedMessage] = collections.deque()
        self._poller: zmq.Poller | None = None
        self._last_warning = 0.0
        self._warned_missing = 0
        self.messages_received = 0

    @property
    def address(self) -> str:
        """The primary input's address (what the worker reports as its input)."""
        return self.primary.address

    def connect(self) -> None:
        """Connect both inputs."""
        self.primary.connect()
        self.secondary.connect()
        poller = zmq.Poller()
        for receiver in (self.primary, self.secondary):
            if receiver.socket is not None:
                poller.register(receiver.socket, zmq.POLLIN)
        self._poller = poller

    def close(self) -> None:
        """Close both inputs (idempotent)."""
        self.primary.close()
        self.secondary.close()
        self._poller = None

    def carry_counters(self, previous: MergedInput) -> None:
        """Continue the counters of the input this one replaces (camera restart, stream_timeout
        reconnection), so the instance statistics never go backwards."""
        mine, old = self.matcher, previous.matcher
        mine.matched, mine.missing, mine.unused = old.matched, old.missing, old.unused
        mine.last_missing = old.last_missing
        self._warned_missing = mine.missing

    def statistics(self) -> dict[str, int]:
        """Counters for the instance statistics (cam_server has none; camioc reports them)."""
        waiting_primary, waiting_secondary = self.matcher.waiting
        return {"merge_matched": self.matcher.matched, "merge_missing": self.matcher.missing,
                "merge_unused": self.matcher.unused, "merge_waiting": waiting_primary,
                "merge_data_waiting": waiting_secondary}

    def receive(self, timeout: float | None = None) -> MergedMessage | None:
        """The next merged message, or None after ``timeout`` s without one."""
        if self._poller is None:
            raise RuntimeError("merged input is not connected")
        wait = self.primary.receive_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, wait)
        while not self._ready:
            remaining = deadline - time.monotonic()
            if not self._poller.poll(max(0, int(remaining * 1000))):
                if time.monotonic() >= deadline:
                    return None
                continue
            self._drain()
            if not self._ready and time.monotonic() >= deadline:
                return None
        return self._ready.popleft()

    def _drain(self) -> None:
        for _ in range(self.DRAIN):
            message = self.secondary.receive(timeout=0)
            if message is None:
                break
            self._take(self.matcher.add_secondary(int(message.pulse_id), message))
        for _ in range(self.DRAIN):
            message = self.primary.receive(timeout=0)
            if message is None:
                break
            self.messages_received += 1
            self._take(self.matcher.add_primary(int(message.pulse_id), message))
        self._warn_missing()

    def _take(self, pairs: list[tuple[int, BsreadMessage, BsreadMessage]]) -> None:
        for _pid, primary, secondary in pairs:
            self._ready.append(merge_messages(primary, secondary, self.settings.channels))

    def _warn_missing(self) -> None:
        """Missing partners are logged at most every 5 s (with the count), never silently."""
        missing = self.matcher.missing
        now = time.monotonic()
        if missing > self._warned_missing and now - self._last_warning >= 5.0:
            what = "camera frames" if self.settings.role == "bsdata" else "messages of input 1"
            log.warning("%d %s without a partner from %s (latest pulse id %s): not processed; "
                        "%d in total", missing - self._warned_missing, what, self.settings.address,
                        self.matcher.last_missing, missing)
            self._warned_missing = missing
            self._last_warning = now


__all__ = [
    "DEFAULT_DATA_BUFFER",
    "DEFAULT_IMAGE_BUFFER",
    "DEFAULT_MERGE_BUFFER_SIZE",
    "DEFAULT_MERGE_QUEUE_SIZE",
    "IMAGE_PIPELINE_TYPES",
    "MAX_DATA_BUFFER",
    "MAX_IMAGE_BUFFER",
    "MergeSettings",
    "MergedInput",
    "MergedMessage",
    "PidMatcher",
    "Settings",
    "channel_list",
    "merge_messages",
    "merge_settings",
    "setting",
]
