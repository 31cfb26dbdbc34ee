"""Every accepted REST write in the put log (:mod:`camioc.putlog`), with what it changed.

A write is what the access policy calls one (:mod:`camioc.rest.envelope`): any ``POST``/``PUT``/
``DELETE``, and a ``GET`` that starts an instance. The envelope middleware calls
:func:`record_write` for a write whose handler completed — an error answer (cam_server's HTTP 200
``"state": "error"``) is a raised exception there, and is not a put; a refused request never ran.
The line names the client's address, ``METHOD /route`` and, when the handler said what changed
(:func:`note_change`: config writes, instance creation), the changed keys before and after.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from camioc import putlog

#: The request key of the ``(old, new)`` a handler noted (a typed key where aiohttp has them, else a string).
_CHANGE: Any = web.RequestKey("camioc_put_change", tuple) if hasattr(web, "RequestKey") else "camioc_put_change"
#: Longest route (path and query) written to the log.
MAX_ROUTE_CHARS = 300


def note_change(request: web.Request, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
    """Say what a config write changed (``None``: the config did not exist / no longer exists)."""
    request[_CHANGE] = putlog.config_change(old, new)


def record_write(request: web.Request) -> None:
    """Put the completed write ``request`` in the put log."""
    route = f"{request.method} {request.rel_url}"[:MAX_ROUTE_CHARS]
    change = request.get(_CHANGE)
    if change is None:
        putlog.record("rest", request.remote, None, route)
    else:
        putlog.record("rest", request.remote, None, route, old=change[0], new=change[1])


__all__ = ["note_change", "record_write"]
