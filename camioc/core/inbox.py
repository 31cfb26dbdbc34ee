"""The hand-over of worker messages from a reader thread to the event loop, bounded.

A worker sends its state (``status``, ``image`` snapshots of megabytes, ``results``) at its own
pace; the control process's event loop takes them when it can. Handed over one callback per
message, a loop that falls behind (a burst of CA monitors, a slow REST client, CPU taken by the
workers) makes the backlog and the process grow without bound, and it then publishes state that
is seconds old. These kinds are *state*, not events: only the newest matters. The inbox keeps at
most one pending message of each such kind, replacing it in place, and hands everything over in
one drain callback, in order.

Ordered messages (``started``, ``reply``, ``log``, ``stopped``, ``camera_request``, anything
else) are never dropped or reordered, and a state message never overtakes one of them: a state
that arrives after an ordered message is queued behind it rather than merged into an older one.
"""

from __future__ import annotations

import threading
from typing import Any

#: The kinds whose newest message replaces an older one still pending.
STATE_KINDS = frozenset({"status", "image", "results"})

Message = tuple[str, Any]


class LatestWinsInbox:
    """Pending messages of one worker: appended by the reader thread, taken by the loop."""

    def __init__(self, state_kinds: frozenset[str] = STATE_KINDS) -> None:
        self._state_kinds = state_kinds
        self._lock = threading.Lock()
        self._pending: list[Message] = []
        #: index in ``_pending`` of each state kind that can still be replaced (none before an
        #: ordered message that follows it)
        self._replaceable: dict[str, int] = {}
        #: state messages replaced before the loop took them (a measure of how far it lags)
        self.replaced = 0

    def put(self, message: Message) -> bool:
        """Add a message; True if the inbox was empty, i.e. the caller must schedule a drain."""
        kind = message[0]
        with self._lock:
            if kind in self._state_kinds:
                index = self._replaceable.get(kind)
                if index is not None:
                    self._pending[index] = message
                    self.replaced += 1
                    return False
                self._replaceable[kind] = len(self._pending)
            else:
                self._replaceable.clear()
            self._pending.append(message)
            return len(self._pending) == 1

    def take(self) -> list[Message]:
        """Every pending message, in order, leaving the inbox empty."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._replaceable.clear()
            return pending

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
