"""The camera REST API (cam_server's camera server, default port 8888, root ``/api/v1/cam``).

Every route is one call of :class:`camioc.core.api.CameraService`; the cam_server envelope,
errors-as-HTTP-200 and CORS come from :mod:`camioc.rest.envelope`. Camera routes (compat §4.2):

==================================================  =============================================
``GET <root>``                                      ``cameras``: configured camera names
``GET <root>/aliases``                              ``aliases``: {alias: camera}
``GET <root>/groups``                               ``groups``: {group: [cameras]}
``GET <root>/config_names``                         ``config_names`` (broken in cam_server; works)
``GET <root>/<camera>``                             ``stream``: starts the instance if needed
``GET <root>/<camera>/is_online``                   ``online`` and the probe's text in ``status``
``GET|POST|DELETE <root>/<camera>/config``          ``config`` (POST: JSON object body, validated,
                                                    saved, applied to the running instance)
``GET <root>/<camera>/geometry``                    ``geometry``: [width, height]
``GET <root>/<camera>/image``                       PNG; query ``raw``, ``scale``, ``min_value``,
                                                    ``max_value``, ``colormap`` (see images.py)
``GET <root>/<camera>/image_bytes``                 ``image``: {bytes (base64), shape [h, w], dtype}
``PUT <root>/background/<name>/image_bytes``        body: ``pickle.dumps(ndarray, protocol=0)``,
                                                    loaded with an allow-list (see unpickle.py)
``GET <root>/script``, ``.../script/<n>/script_bytes``  user scripts (see scripts.py)
==================================================  =============================================

plus the common routes (:mod:`camioc.rest.common`): ``/``, ``/base``, ``<root>/info``,
``/heartbeat``, ``/version``, ``DELETE <root>[/<name>[/del]]``, ``/api/v1/logs...`` and the
refused ``/api/v1/reset``. Camera names may be aliases wherever a camera is read (the service
resolves them). Literal routes win over ``<camera>`` routes, as in cam_server.

Nothing here blocks the event loop: PNG encoding, base64 and unpickling run in worker threads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from camioc.config.access import AccessPolicy
from camioc.core.api import CameraService
from camioc.errors import CamiocError
from camioc.logbuffer import LogBuffer
from camioc.rest.browser import BrowserPolicy
from camioc.rest.common import API_PREFIX, instance_api_app
from camioc.rest.envelope import BigPayload, read_body, read_json_object
from camioc.rest.images import PngOptions, encode_image_bytes, png_response
from camioc.rest.routing import Routes
from camioc.rest.scripts import DEFAULT_MAX_UPLOAD_BYTES, ScriptStore
from camioc.rest.unpickle import unpickle_array
from camioc.rest.writes import note_change

CAMERA_ROOT = API_PREFIX + "/cam"


def add_camera_routes(routes: Routes, root: str, cameras: CameraService) -> None:
    """The camera-specific routes of compat §4.2 (not the common or script routes)."""

    async def list_cameras(request: web.Request) -> dict[str, Any]:
        return {"status": "List of available cameras.", "cameras": cameras.camera_names()}

    async def aliases(request: web.Request) -> dict[str, Any]:
        return {"status": "List of camera aliases.", "aliases": cameras.aliases()}

    async def groups(request: web.Request) -> dict[str, Any]:
        return {"status": "List of camera groups.", "groups": cameras.groups()}

    async def config_names(request: web.Request) -> dict[str, Any]:
        return {"status": "List of camera configurations.", "config_names": cameras.camera_names()}

    async def stream(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        return {"status": f"Stream address for camera {name}.", "stream": await cameras.get_stream(name)}

    async def is_online(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        online, text = await cameras.is_online(name)
        status = text or (f"Camera {name} is online." if online else f"Camera {name} is offline.")
        return {"status": status, "online": online}

    async def get_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        return {"status": f"Camera {name} configuration retrieved.", "config": cameras.get_config(name)}

    def saved_config(name: str) -> dict[str, Any] | None:
        """The saved config of camera ``name`` (not an alias), None if there is none (or it is broken)."""
        if name not in cameras.camera_names():
            return None
        try:
            return cameras.get_config(name)
        except CamiocError:
            return None

    async def set_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        body = await read_json_object(request, empty_message="Config object cannot be empty. Config: None")
        old = saved_config(name)
        config = await cameras.set_config(name, body)
        note_change(request, old, config)
        return {"status": f"Camera {name} configuration saved.", "config": config}

    async def delete_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        old = saved_config(name)
        await cameras.delete_config(name)
        note_change(request, old, None)
        return {"status": f"Camera {name} configuration deleted."}

    async def geometry(request: web.Request) -> dict[str, Any]:
        name = request.match_info["camera"]
        width, height = await cameras.get_geometry(name)
        return {"status": f"Geometry of camera {name} retrieved.", "geometry": [int(width), int(height)]}

    async def image(request: web.Request) -> web.Response:
        name = request.match_info["camera"]
        options = PngOptions.from_query(request.query)
        return await png_response(await cameras.get_image(name, raw=options.raw), options)

    async def image_bytes(request: web.Request) -> BigPayload:
        name = request.match_info["camera"]
        array = await cameras.get_image(name)
        encoded = await asyncio.to_thread(encode_image_bytes, array)
        return BigPayload(status=f"Image bytes of camera '{name}'.", image=encoded)

    async def set_background(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        array = await asyncio.to_thread(unpickle_array, await read_body(request))
        await cameras.set_background_image(name, array)
        return {"status": f"Background image {name} stored."}

    routes.get(root, list_cameras)
    routes.get(f"{root}/aliases", aliases)
    routes.get(f"{root}/groups", groups)
    routes.get(f"{root}/config_names", config_names)
    def would_start_camera(request: web.Request) -> bool:
        return cameras.resolve(request.match_info["camera"]) not in cameras.running_names

    routes.get(f"{root}/{{camera}}", stream, starts=would_start_camera)
    routes.get(f"{root}/{{camera}}/is_online", is_online)
    routes.get(f"{root}/{{camera}}/config", get_config)
    routes.post(f"{root}/{{camera}}/config", set_config)
    routes.delete(f"{root}/{{camera}}/config", delete_config)
    routes.get(f"{root}/{{camera}}/geometry", geometry)
    routes.get(f"{root}/{{camera}}/image", image)
    routes.get(f"{root}/{{camera}}/image_bytes", image_bytes)
    routes.put(f"{root}/background/{{name}}/image_bytes", set_background)


def create_camera_app(
    cameras: CameraService,
    *,
    version: str,
    logs: LogBuffer,
    scripts_dir: Path,
    host_stats: bool = True,
    browser: BrowserPolicy | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    access: AccessPolicy | None = None,
    user_scripts: bool = True,
) -> web.Application:
    """The camera REST API as an aiohttp application (serve it with :class:`RestSite`).

    ``browser``: what web pages may do (:class:`camioc.rest.browser.BrowserPolicy`; default: no
    CORS, cross-origin writes refused, Host checked on loopback). ``access``: who may write
    (default: everyone). ``user_scripts=False`` refuses script uploads."""
    app, routes = instance_api_app(
        root=CAMERA_ROOT, service=cameras, instance_kind="camera", version=version, logs=logs,
        scripts=ScriptStore(scripts_dir, max_bytes=max_upload_bytes, uploads=user_scripts), host_stats=host_stats,
        browser=browser, access=access,
    )
    add_camera_routes(routes, CAMERA_ROOT, cameras)
    routes.install(app)
    return app


__all__ = ["CAMERA_ROOT", "add_camera_routes", "create_camera_app"]
