"""A child process ends with its parent: the fork server with the control process, a worker with the fork server.

Whatever ends the control process (SIGKILL included), nothing camioc started may live on: a worker
stuck in a user function's endless loop would burn a core and hold its ports forever.

- :func:`watch_parent`: a daemon thread that leaves the process once its parent pid changes (the
  parent died and the process was re-parented). It holds no lock, so the fork server may run it and
  still fork workers (a forked child has only the forking thread).
- :func:`end_with_parent`: Linux's parent-death signal (``PR_SET_PDEATHSIG``), immediate. It fires
  when the *thread* that forked the process ends, so it is only for processes forked by a thread
  that lives as long as its process: workers (forked by the fork server's main thread), not the
  fork server (spawned by whichever control-process thread first needed it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
#: How often :func:`watch_parent` looks.
PARENT_CHECK_PERIOD = 0.5


def watch_parent(period: float = PARENT_CHECK_PERIOD) -> None:
    """Leave (``os._exit(1)``) within ``period`` seconds of the parent's death."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(1)

    threading.Thread(target=watch, name="camioc-parent-watch", daemon=True).start()


def end_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent (thread) dies; exit now if it already has.

    Returns whether the request was made (False off Linux or without ``prctl``)."""
    parent = os.getppid()
    requested = False
    if sys.platform.startswith("linux"):
        try:
            requested = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            requested = False
    if os.getppid() != parent:  # died before the request
        os._exit(1)
    return requested


__all__ = ["PARENT_CHECK_PERIOD", "end_with_parent", "watch_parent"]
