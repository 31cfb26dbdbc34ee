"""Imported once by the worker fork server: everything a worker needs, loaded and compiled.

Workers are forked from a server process that has already imported numpy, scipy, zmq, the
sources, the streams and the processing core, and has run the numba warm-up. A new camera or
pipeline instance then starts in a fraction of a second instead of the seconds that importing
and loading compiled kernels take in a fresh interpreter. Nothing here may open sockets, start
threads or create EPICS/ZeroMQ contexts: those must be created after the fork, in the worker.
"""

from __future__ import annotations

import camioc.core.camera_worker  # noqa: F401
import camioc.core.pipeline_worker  # noqa: F401
import camioc.sources.bsread_source  # noqa: F401
import camioc.sources.simulation  # noqa: F401
import camioc.sources.transform  # noqa: F401
import camioc.streams.bsread  # noqa: F401
import camioc.streams.camera_stream  # noqa: F401
from camioc.processing import warm_up

warm_up()
