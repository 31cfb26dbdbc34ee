"""Compatibility shims for code written against cam_server, made importable in pipeline workers.

Facility user functions import cam_server's helpers::

    from cam_server.pipeline.data_processing import functions, processor

This package ships a re-implementation of that helper API (``cam_server/`` below this folder,
written from the documented behaviour; see ``cam_server.pipeline.data_processing.functions``) and
:func:`enable_cam_server_imports` puts this folder on ``sys.path`` so that the import above works.

Why a folder added to the import path of the pipeline workers, and not a top-level ``cam_server``
package in camioc's distribution:

* A top-level ``cam_server`` package would be installed into ``site-packages/cam_server`` — the
  very directory of the real cam_server. On a machine that has both (a facility migrating, a
  console with the cam_server client tools), pip would overwrite cam_server's files or refuse,
  and uninstalling either would break the other. Under ``camioc/compat`` nothing of camioc is
  visible as ``cam_server`` to any other program, nor to camioc's control process.
* The folder is *appended* to ``sys.path``, so in a worker the real cam_server, when it is
  installed, still wins: its helpers are the reference implementation of these same functions,
  and scripts may import other cam_server modules that camioc does not provide. Without it, the
  shim answers. Either way an unchanged script runs.
* It works the same from an editable and a non-editable install (the folder is found from this
  file's location), and needs no entry in ``sys.path`` at install time (no ``.pth`` file that would
  expose the shim to every Python program on the machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["COMPAT_PATH", "enable_cam_server_imports"]

#: The folder that holds the ``cam_server`` shim package.
COMPAT_PATH: str = str(Path(__file__).resolve().parent)


def enable_cam_server_imports() -> None:
    """Make ``import cam_server.pipeline.data_processing`` work in this process.

    Called once by each pipeline worker before it loads the pipeline function. Appends (does not
    prepend) :data:`COMPAT_PATH`, so an installed real cam_server keeps precedence. Idempotent.
    """
    if COMPAT_PATH not in sys.path:
        sys.path.append(COMPAT_PATH)
