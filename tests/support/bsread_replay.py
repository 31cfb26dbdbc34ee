"""Replay recorded bsread streams (cam_server's ``test_camera_dump``) over real ZeroMQ sockets.

The dump holds one file per ZMQ part, ``<message>_<part>.raw``; sending the parts of each message
as one multipart message reproduces the camera stream byte for byte. Used by the stream
conformance tests and by the bsread camera-source tests.

Typical use::

    messages = load_dump(camserver_fixtures / "test_camera_dump")
    with BsreadReplayServer(messages, mode="PUB", interval=0.01) as server:   # loops until stopped
        source = BsreadReceiver(server.endpoint)   # or a camera source pointed at server.endpoint
        ...
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zmq

__all__ = [
    "CAMERA_DUMP",
    "BsreadReplayServer",
    "DumpFacts",
    "load_dump",
    "replay_once",
]

_PART_FILE = re.compile(r"^(\d+)_(\d+)\.raw$")


@dataclass(frozen=True)
class DumpFacts:
    """What the recorded camera dump contains (read from its headers once, kept here for asserts)."""

    channel: str
    shape: tuple[int, int]  # numpy (height, width)
    dtype: str
    pulse_ids: tuple[int, ...]
    timestamps: tuple[tuple[int, int], ...]  # (sec, ns)


#: Facts of ``camserver-fixtures/test_camera_dump`` (a SwissFEL camera, 659x494 uint16, 2 frames).
CAMERA_DUMP = DumpFacts(
    channel="SLG-LCAM-C102:FPICTURE",
    shape=(494, 659),
    dtype="uint16",
    pulse_ids=(3682521968, 3682521969),
    timestamps=((1508856598, 865393891), (1508856598, 965543311)),
)


def load_dump(folder: Path) -> list[list[bytes]]:
    """Return the messages of a dump folder, each a list of its parts in order."""
    grouped: dict[int, dict[int, bytes]] = {}
    for path in Path(folder).iterdir():
        match = _PART_FILE.match(path.name)
        if match:
            grouped.setdefault(int(match[1]), {})[int(match[2])] = path.read_bytes()
    if not grouped:
        raise FileNotFoundError(f"no <message>_<part>.raw files in {folder}")
    messages = []
    for index in sorted(grouped):
        parts = grouped[index]
        if sorted(parts) != list(range(len(parts))):
            raise ValueError(f"message {index} in {folder} has gaps in its parts: {sorted(parts)}")
        messages.append([parts[i] for i in range(len(parts))])
    return messages


def replay_once(socket: zmq.Socket, messages: Sequence[Sequence[bytes]]) -> None:
    """Send every message once as one multipart message (blocking)."""
    for parts in messages:
        socket.send_multipart(list(parts))


class BsreadReplayServer:
    """Binds a PUB or PUSH socket on 127.0.0.1 and replays ``messages`` from a thread.

    ``loop=True`` cycles through the messages until :meth:`stop` (a PUB subscriber joins late,
    so a looping publisher is what a receiver test can rely on); ``interval`` paces the messages
    (seconds between them). ``messages_sent`` counts what was handed to libzmq.
    """

    def __init__(
        self,
        messages: Sequence[Sequence[bytes]],
        *,
        mode: str = "PUB",
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 0.01,
        loop: bool = True,
        context: zmq.Context | None = None,
    ) -> None:
        self._messages = [list(m) for m in messages]
        self._type = {"PUB": zmq.PUB, "PUSH": zmq.PUSH}[mode.upper()]
        self._bind = f"tcp://{host}:{port or '*'}"
        self._interval = interval
        self._loop = loop
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.endpoint = ""
        self.messages_sent = 0

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.endpoint.rsplit(":", 1)[1])

    def start(self) -> BsreadReplayServer:
        """Bind and start replaying."""
        sock = self._context.socket(self._type)
        # Not 0: LINGER 0 while a peer leaves mid-way through a multipart message can abort
        # libzmq 4.3.x (session_base.cpp clean_pipes assertion).
        sock.setsockopt(zmq.LINGER, 200)
        sock.bind(self._bind)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = sock
        self._thread = threading.Thread(target=self._run, name="bsread-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the socket (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> BsreadReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._stop.is_set():
            for parts in self._messages:
                # Wait for room (PUSH without a peer) in slices, so stop() stays responsive;
                # the whole message is sent once the first part is accepted.
                while not self._stop.is_set() and not sock.poll(50, zmq.POLLOUT):
                    pass
                if self._stop.is_set():
                    return
                sock.send_multipart(parts)
                self.messages_sent += 1
                if self._interval and self._stop.wait(self._interval):
                    return
            if not self._loop:
                return
