"""A worker process that floods its control side with state messages (for the backlog tests).

It says ``started``, waits for ``("go", None)``, then sends ``count`` status messages numbered
0..count-1 with an image snapshot of ``image_bytes`` beside each, one ``log`` message after the
first half, and ``stopped`` last: what a busy pipeline worker sends while the control loop lags.
"""

from __future__ import annotations

import logging
import multiprocessing.connection

import numpy as np


def flood(conn: multiprocessing.connection.Connection, count: int, image_bytes: int) -> None:
    conn.send(("started", {"pid": 0}))
    kind, _ = conn.recv()
    assert kind == "go", kind
    image = np.zeros(image_bytes, dtype=np.uint8)
    for seq in range(count):
        if seq == count // 2:
            conn.send(("log", (logging.INFO, "flood", f"half way at {seq}")))
        conn.send(("status", {"seq": seq}))
        conn.send(("image", {"seq": seq, "image": image}))
    conn.send(("stopped", {"reason": "done"}))
    conn.close()
