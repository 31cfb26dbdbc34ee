"""A route table that installs routes the way cam_server (Bottle) matches them.

aiohttp matches routes in registration order; Bottle lets static routes win over ``<param>``
routes regardless of order (``GET /api/v1/cam/aliases`` is the alias list, not a camera named
``aliases``). :class:`Routes` collects routes from several modules (common, scripts, camera or
pipeline API) and :meth:`Routes.install` adds them most specific first: comparing path segments
left to right, a literal segment sorts before a ``{param}`` segment. Routes of one path are
installed together, so aiohttp gives them one resource.

cam_server has ``GET`` routes that start an instance (a camera's stream, a saved pipeline's
shared instance). They are registered with ``starts=<predicate>`` (true when this request would
start one); :meth:`Routes.install` lists them in the app under :data:`STARTING_GETS`, so that the
envelope middleware treats such a ``GET`` as a write (access policy, browser rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler

from camioc.rest.envelope import STARTING_GETS, ApiHandler, StartPredicate


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: ApiHandler
    #: a GET that may start an instance: true when this request would (see the module doc)
    starts: StartPredicate | None = None


def specificity(path: str) -> tuple[int, ...]:
    """Sort key: per segment 0 for a literal, 1 for a ``{param}``."""
    return tuple(1 if "{" in segment else 0 for segment in path.strip("/").split("/") if segment)


class Routes:
    """Collects ``(method, path, handler)`` and installs them in Bottle's precedence."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: ApiHandler, *, starts: StartPredicate | None = None) -> None:
        for route in self._routes:
            if route.method == method and route.path == path:
                raise ValueError(f"route {method} {path} registered twice")
        self._routes.append(Route(method, path, handler, starts))

    def get(self, path: str, handler: ApiHandler, *, starts: StartPredicate | None = None) -> None:
        """A GET route; ``starts``: it may start an instance (true when this request would)."""
        self.add("GET", path, handler, starts=starts)

    def post(self, path: str, handler: ApiHandler) -> None:
        self.add("POST", path, handler)

    def put(self, path: str, handler: ApiHandler) -> None:
        self.add("PUT", path, handler)

    def delete(self, path: str, handler: ApiHandler) -> None:
        self.add("DELETE", path, handler)

    def __iter__(self):
        return iter(self.ordered())

    def ordered(self) -> list[Route]:
        """The routes in installation order (stable within one path)."""
        return sorted(self._routes, key=lambda route: (specificity(route.path), route.path))

    def install(self, app: web.Application) -> None:
        app[STARTING_GETS] = {route.path: route.starts for route in self._routes
                              if route.method == "GET" and route.starts is not None}
        for route in self.ordered():
            # Handlers return payload mappings that envelope_middleware turns into responses.
            handler = cast(Handler, route.handler)
            if route.method == "GET":
                app.router.add_get(route.path, handler)  # answers HEAD too, as Bottle does
            else:
                app.router.add_route(route.method, route.path, handler)


__all__ = ["Route", "Routes", "specificity"]
