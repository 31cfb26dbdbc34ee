"""Pulse-id ordering of messages that arrive out of order (several connections, several senders).

Used where cam_server re-orders by pulse id: a bsread camera read over several parallel PULL
connections (``connections``, ``buffer_size``) and a fan-in pipeline (``pid_buffer``). The buffer
holds at most ``size`` messages; pushing one more releases the oldest pulse id. A message whose
pulse id is not newer than the last one released arrives too late to be put in order (or is a
duplicate, as SUB connections deliver every message once per connection): it is refused and
counted in :attr:`PidReorderBuffer.late`, never silently reordered out of sequence.
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

__all__ = ["PidReorderBuffer"]

T = TypeVar("T")


class PidReorderBuffer(Generic[T]):
    """Emit items in pulse-id order, holding at most ``size`` of them."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._heap: list[tuple[int, int, T]] = []
        self._seq = 0
        #: Pulse id of the last item released (-1 before the first).
        self.last_emitted = -1
        #: Items refused because their pulse id was not newer than :attr:`last_emitted`.
        self.late = 0
        self._pending: set[int] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, pulse_id: int, item: T) -> list[T]:
        """Add an item; returns the items released (oldest first) to keep at most ``size``."""
        if pulse_id <= self.last_emitted or pulse_id in self._pending:
            self.late += 1
            return []
        self._seq += 1
        self._pending.add(pulse_id)
        heapq.heappush(self._heap, (pulse_id, self._seq, item))
        released = []
        while len(self._heap) > self.size:
            released.append(self._pop())
        return released

    def pop(self) -> T | None:
        """Release the oldest item now (the stream paused), or None when empty."""
        return self._pop() if self._heap else None

    def flush(self) -> list[T]:
        """Release everything, oldest first."""
        return [self._pop() for _ in range(len(self._heap))]

    def _pop(self) -> T:
        pulse_id, _, item = heapq.heappop(self._heap)
        self._pending.discard(pulse_id)
        self.last_emitted = pulse_id
        return item
