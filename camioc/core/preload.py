"""Imported once by the worker fork server: everything a worker needs, loaded and compiled.

Workers are forked from a server process that has already imported numpy, scipy, zmq, the
sources, the streams and the processing core, and has run the numba warm-up. A new camera or
pipeline instance then starts in a fraction of a second instead of the seconds that importing
and loading compiled kernels take in a fresh interpreter. Nothing here may open sockets, start
threads (but the lock-free parent watch) or create EPICS/ZeroMQ contexts: those must be created
after the fork, in the worker.
"""

from __future__ import annotations

from camioc.core.lifeline import watch_parent

watch_parent()  # the fork server ends with the control process, however that dies

import camioc.core.camera_worker  # noqa: F401, E402
import camioc.core.pipeline_worker  # noqa: F401, E402
import camioc.sources.bsread_source  # noqa: F401, E402
import camioc.sources.simulation  # noqa: F401, E402
import camioc.sources.transform  # noqa: F401, E402
import camioc.streams.bsread  # noqa: F401, E402
import camioc.streams.camera_stream  # noqa: F401, E402
from camioc.processing import warm_up  # noqa: E402

warm_up()
