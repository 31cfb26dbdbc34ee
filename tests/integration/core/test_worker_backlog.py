"""A control loop that lags behind a busy worker keeps only the newest state, in order.

A real worker process (forked by the fork server, as every instance is) floods status and
1 MB image messages while the control event loop is blocked; once it runs again it must get the
newest of each, the ordered messages (log, stopped) where they were sent, and nothing piled up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from camioc.core.worker import WorkerHandle
from tests.support.flooding_worker import flood

COUNT = 400
IMAGE_BYTES = 1 << 20


async def test_a_lagging_loop_gets_the_newest_state_and_every_ordered_message() -> None:
    received: list[tuple[str, Any]] = []
    exited = asyncio.Event()
    handle = WorkerHandle("flood", flood, (COUNT, IMAGE_BYTES),
                          on_message=lambda kind, payload: received.append((kind, payload)),
                          on_exit=lambda _handle: exited.set())
    await handle.start(timeout=60)
    handle.send("go", None)
    # block the event loop (as a slow step would) until the worker has sent everything and left
    deadline = time.monotonic() + 60
    while handle.exitcode is None:
        assert time.monotonic() < deadline, "the flooding worker did not finish"
        time.sleep(0.01)
    await asyncio.wait_for(exited.wait(), 30)

    kinds = [kind for kind, _ in received]
    statuses = [payload["seq"] for kind, payload in received if kind == "status"]
    images = [payload["seq"] for kind, payload in received if kind == "image"]
    # the newest state arrives; what the loop could not take in time was replaced, not queued
    assert statuses[-1] == COUNT - 1 and images[-1] == COUNT - 1
    assert statuses == sorted(statuses) and images == sorted(images)
    assert len(statuses) < COUNT / 4, f"{len(statuses)} of {COUNT} status messages were queued"
    assert handle.replaced_messages >= COUNT
    # ordered messages: all there, in their place, and no state crosses them
    assert kinds.count("log") == 1 and kinds[-1] == "stopped"
    at = kinds.index("log")
    before = [payload["seq"] for kind, payload in received[:at] if kind == "status"]
    after = [payload["seq"] for kind, payload in received[at:] if kind == "status"]
    assert before and max(before) < COUNT // 2, before
    assert after and min(after) >= COUNT // 2, after
