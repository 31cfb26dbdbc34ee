"""cam_server's REST contract in one place: the JSON envelope, errors as HTTP 200, CORS.

Every handler of camioc's REST apps returns either

* a mapping — the *payload*. The middleware wraps it as ``{"state": "ok", "status": <text>,
  **payload}`` (``status`` defaults to ``"ok"``; a handler sets it by putting a ``"status"`` key
  in the payload), or a :class:`BigPayload` (same, but serialised in a worker thread because it
  holds megabytes, e.g. base64 images);
* or a ready :class:`aiohttp.web.StreamResponse` (PNG images, plain text, the status page),
  passed through unchanged.

Any exception raised by a handler becomes ``{"state": "error", "status": str(exc)}`` **with HTTP
200**, as cam_server does (its clients never look at the HTTP status; they call ``.json()`` and
raise ``ValueError(status)``). camioc's own errors (``CamiocError``) are expected refusals and
are logged in one line; anything else is a bug and is logged with its traceback.

Requests that match no route keep aiohttp's plain 404/405 (cam_server gave Bottle's HTML pages).
``OPTIONS`` on any path answers 200 with an empty body (CORS preflight). Every response,
including errors and 404s, carries the CORS headers the app's :class:`BrowserPolicy` gives
(:mod:`camioc.rest.browser`: cam_server's ``*`` only with ``--cors-origin '*'``). Before any
handler runs, the policy refuses a wrong ``Host`` and a cross-origin write with HTTP 403 and the
error envelope (the one deliberate exception to "errors are HTTP 200": nothing was attempted).

Then the app's :class:`~camioc.config.access.AccessPolicy` (``--access-policy``): a write — any
``POST``/``PUT``/``DELETE``, and a ``GET`` of a route listed in :data:`STARTING_GETS` that would
start an instance — from a client (``request.remote``) the policy lets only read is refused the
same way (HTTP 403, the envelope naming the rule), before its body is read. Such a ``GET`` is also
subject to the browser rule for cross-site starts (:meth:`BrowserPolicy.start_refusal`). A write
whose handler completed goes to the put log (:mod:`camioc.rest.writes`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import PurePath
from typing import Any, TypeAlias

import numpy as np
from aiohttp import hdrs, web

from camioc.config.access import AccessPolicy
from camioc.errors import CamiocError, ConfigError
from camioc.rest.browser import CORS_HEADERS, SAFE_METHODS, BrowserPolicy
from camioc.rest.writes import record_write

log = logging.getLogger(__name__)

#: The app's browser rules; an app without one gets ``BrowserPolicy()`` (the safe default).
BROWSER_POLICY = web.AppKey("browser_policy", BrowserPolicy)
_DEFAULT_POLICY = BrowserPolicy()

#: The app's access policy (who may write); an app without one lets everyone write (cam_server).
ACCESS_POLICY = web.AppKey("access_policy", AccessPolicy)
_OPEN_ACCESS = AccessPolicy.open()

#: ``(request) -> bool``: whether a ``GET`` of a starting route would start an instance now.
StartPredicate: TypeAlias = Callable[[web.Request], bool]
#: The GET routes that may start an instance, by route path (set by ``Routes.install``).
STARTING_GETS = web.AppKey("starting_gets", dict[str, StartPredicate])

#: Largest request body accepted (pickled background images in protocol 0 are ~3x the raw size).
MAX_BODY_BYTES = 512 * 1024 * 1024


#: Request bodies larger than this are JSON-parsed in a worker thread.
LARGE_JSON_BYTES = 256 * 1024


class BigPayload(dict[str, Any]):
    """A payload large enough that it is JSON-serialised off the event loop."""


ApiResult: TypeAlias = Mapping[str, Any] | web.StreamResponse
ApiHandler: TypeAlias = Callable[[web.Request], Awaitable[ApiResult]]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    """JSON as cam_server writes it (NaN allowed), numpy scalars/arrays converted."""
    return json.dumps(obj, default=_json_default)


def ok_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ok envelope for ``payload`` (``state`` and ``status`` first)."""
    body: dict[str, Any] = {"state": "ok", "status": payload.get("status", "ok")}
    body.update((key, value) for key, value in payload.items() if key not in ("state", "status"))
    return body


def error_body(exc: BaseException) -> dict[str, Any]:
    """The error envelope: ``status`` is the exception text (class name if it has none)."""
    return {"state": "error", "status": str(exc) or type(exc).__name__}


def _json_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


async def _to_response(result: ApiResult) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if isinstance(result, BigPayload):
        return _json_response(await asyncio.to_thread(dumps, ok_body(result)))
    return _json_response(dumps(ok_body(result)))


def _refusal(request: web.Request, exc: BaseException) -> web.Response:
    if isinstance(exc, CamiocError):
        log.info("%s %s refused: %s", request.method, request.path, exc)
    else:
        log.exception("%s %s failed", request.method, request.path)
    return _json_response(dumps(error_body(exc)))


def would_start(request: web.Request) -> bool:
    """True for a ``GET``/``HEAD`` of a starting route (:data:`STARTING_GETS`) that would start an
    instance (its predicate says so, or cannot tell)."""
    if request.method not in ("GET", "HEAD") or request.match_info.http_exception is not None:
        return False
    resource = request.match_info.route.resource
    predicate = request.config_dict.get(STARTING_GETS, {}).get(resource.canonical) if resource else None
    if predicate is None:
        return False
    try:
        return bool(predicate(request))
    except Exception:  # noqa: BLE001 - e.g. an unknown camera: the handler will say; count it as a start
        return True


def _access_refusal(request: web.Request, reason: str, cors: Mapping[str, str]) -> web.Response:
    log.warning("%s %s from %s refused: %s", request.method, request.path, request.remote, reason)
    return web.Response(status=403, text=dumps({"state": "error", "status": reason}),
                        content_type="application/json", headers=cors)


def _browser_refusal(request: web.Request, reason: str, cors: Mapping[str, str]) -> web.Response:
    log.warning("%s %s refused (Origin %r, Host %r): %s", request.method, request.path,
                request.headers.get(hdrs.ORIGIN), request.headers.get(hdrs.HOST), reason)
    return web.Response(status=403, text=dumps({"state": "error", "status": reason}),
                        content_type="application/json", headers=cors)


@web.middleware
async def envelope_middleware(request: web.Request, handler: ApiHandler) -> web.StreamResponse:
    """Browser rules, envelope, errors as HTTP 200, CORS and OPTIONS, for every route of an app."""
    policy = request.config_dict.get(BROWSER_POLICY, _DEFAULT_POLICY)
    origin, host = request.headers.get(hdrs.ORIGIN), request.headers.get(hdrs.HOST)
    cors = policy.cors_headers(origin, host)
    # Before anything happens (not even the body is read): wrong Host, cross-origin write.
    reason = policy.host_refusal(host) or policy.origin_refusal(request.method, origin, host)
    starts = would_start(request)
    if reason is None and starts:
        reason = policy.start_refusal(origin, host, request.headers.get("Sec-Fetch-Site"),
                                      request.headers.get(hdrs.REFERER))
    if reason is not None:
        return _browser_refusal(request, reason, cors)
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=cors)
    write = starts or request.method not in SAFE_METHODS
    if write:
        access = request.config_dict.get(ACCESS_POLICY, _OPEN_ACCESS)
        refused = access.write_refusal(f"{request.method} {request.path}", request.remote)
        if refused is not None:
            return _access_refusal(request, refused, cors)
    try:
        response = await _to_response(await handler(request))
        if write:
            record_write(request)  # the put log: an accepted write (an error raised above is none)
    except web.HTTPException as exc:
        if request.match_info.http_exception is not None:
            # No route matched: aiohttp's plain 404/405, plus CORS.
            exc.headers.update(cors)
            raise
        # Raised while handling a matched route (e.g. body too large): cam_server envelope.
        response = _refusal(request, ConfigError(exc.text or exc.reason))
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into an envelope
        response = _refusal(request, exc)
    response.headers.update(cors)
    return response


async def read_body(request: web.Request) -> bytes:
    """The raw request body; too large a body is refused with a clear message."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        detail = (exc.text or "").rstrip(".") or "over the limit"
        raise ConfigError(f"Request body too large: {detail}.") from exc


async def read_json_object(request: web.Request, *, empty_message: str) -> dict[str, Any]:
    """The request body parsed as a JSON object.

    An empty body (or ``null``) raises ``ConfigError(empty_message)``; a body that is not JSON or
    not an object is refused with a message saying so. Bodies over :data:`LARGE_JSON_BYTES` are
    parsed in a worker thread. The Content-Type is not checked (cam_server
    users post with ``curl -d`` as often as with ``requests.post(json=...)``).
    """
    body = await read_body(request)
    if not body.strip():
        raise ConfigError(empty_message)
    try:
        # Large bodies (e.g. a background image as nested lists) are parsed off the event loop.
        value = await asyncio.to_thread(json.loads, body) if len(body) > LARGE_JSON_BYTES else json.loads(body)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Request body is not UTF-8 encoded JSON: {exc}.") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    if value is None:
        raise ConfigError(empty_message)
    if not isinstance(value, dict):
        raise ConfigError(f"Request body must be a JSON object, got {type(value).__name__}.")
    return value


__all__ = [
    "ACCESS_POLICY",
    "BROWSER_POLICY",
    "CORS_HEADERS",
    "MAX_BODY_BYTES",
    "STARTING_GETS",
    "ApiHandler",
    "ApiResult",
    "BigPayload",
    "StartPredicate",
    "dumps",
    "envelope_middleware",
    "error_body",
    "ok_body",
    "read_body",
    "read_json_object",
    "would_start",
]
