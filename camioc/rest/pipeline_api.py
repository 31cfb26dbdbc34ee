"""The pipeline REST API (cam_server's pipeline server, default port 8889, root ``/api/v1/pipeline``).

Every route is one call of the pipeline service (:class:`camioc.core.api.PipelineService`) (``/camera``: of
the camera service); the cam_server envelope, errors-as-HTTP-200 and CORS come from
:mod:`camioc.rest.envelope`. Pipeline routes (compat §4.3):

=================================================  ==============================================
``GET <root>``                                     ``pipelines``: saved pipeline names
``GET <root>/groups``                              ``groups``: {group: [pipelines]}
``GET <root>/config_names``                        ``config_names``
``POST <root>``                                    body: JSON config; ``?instance_id=`` -> private
                                                   instance: ``instance_id``, ``stream``, ``config``
``POST <root>/<pipeline_name>``                    no body; ``?instance_id=``,
                                                   ``?additional_config=<JSON object>``; same keys
``GET <root>/instance/<id>``                       ``stream``; starts the shared (read-only)
                                                   instance if ``<id>`` is a saved pipeline
``POST <root>/instance/``                          body: JSON config -> ``instance_id``,
                                                   ``stream``, ``config``; reuses a running
                                                   read-only instance with an equal config
``GET <root>/instance/<id>/info``                  ``info``
``GET|POST <root>/instance/<id>/config``           ``config`` (POST: partial JSON config, merged)
``GET <root>/instance/<id>/exitcode``              ``exitcode`` of a stopped instance; error
                                                   "Instance '<id>' still running." while it runs
``GET|POST|DELETE <root>/<pipeline_name>/config``  ``config`` (POST: validated, saved)
``POST <root>/camera/<camera>/background``         ``?n_images=`` (default 10) -> ``background_id``
``GET <root>/camera/<camera>/background``          ``background_id``: the latest
``GET <root>/camera/<camera>/backgrounds``         ``background_ids``, oldest first
``GET <root>/camera``                              ``cameras``
``GET <root>/background/<id>/image``               PNG; ``scale``, ``min_value``, ``max_value``,
                                                   ``colormap`` (see images.py)
``GET|PUT <root>/background/<id>/image_bytes``     GET: ``image`` {bytes (base64), shape, dtype};
                                                   PUT: pickled ndarray (allow-listed unpickling,
                                                   see unpickle.py) stored as ``<id>.npy``
``POST <root>/background``                         JSON ``{"filename", "data"}`` (see below)
``GET <root>/script``, ``.../script/<n>/script_bytes``  user scripts (see scripts.py)
``GET <root>/lib``, ``GET|PUT|DELETE .../lib/<n>/lib_bytes``  user libraries (see below)
=================================================  ==============================================

plus the common routes (:mod:`camioc.rest.common`): ``/``, ``/base``, ``<root>/info``,
``/heartbeat``, ``/version``, ``DELETE <root>[/<id>[/del]]``, ``/api/v1/logs...`` (instance logs of
``camioc.pipeline.<id>``) and the refused ``/api/v1/reset``. Literal routes win over
``<pipeline_name>`` routes, as in cam_server (a pipeline named ``camera`` is shadowed there too).

Decisions (cam_server left them open):

* ``POST <root>/background`` (``PipelineClient.set_background``): ``data`` (a 2-D nested list of
  numbers) is stored as a **uint16** background (values rounded; negative, > 65535 or non-finite
  values are refused, not wrapped) under the id derived from ``filename``: its last path
  component (``/`` or ``\\`` separated) without a trailing ``.npy``, then validated like every
  background id (an empty or invalid id is refused). An existing background of that id is
  replaced, as ``PUT .../image_bytes`` does. ``data: null`` (the client's "clear the background")
  is refused: camioc has no server-wide background to clear; set ``image_background_enable``
  to false on the pipeline instead. The reply carries ``background_id``.
* ``<root>/lib``: the libraries folder (``user_scripts/lib``) takes any valid file name (``.so``,
  ``.py``, data files...). ``GET .../lib_bytes`` answers ``lib`` (the file's text if it is UTF-8,
  else its base64) and ``base64`` (true when ``lib`` is base64). PUT bodies are stored as sent,
  up to ``max_upload_bytes``; a lib file that is a symlink leading out of the folder is neither
  served nor overwritten (see scripts.py).
* ``n_images`` must be an integer from 1 to :data:`MAX_BACKGROUND_IMAGES`, so that a collection
  is bounded in time and memory; the collection itself has a deadline (PipelineManager).
* ``POST <root>/instance/<id>/config`` refuses an empty, ``null``, ``{}`` or non-JSON body with
  cam_server's "Config updates cannot be empty." (checked before the instance is looked up).
* ``GET <root>/instance/<id>/exitcode`` of a running instance is refused with "Instance '<id>'
  still running.", as cam_server's managers (the servers its clients talk to) refuse it; only
  its single-process server answers null. Once stopped it answers the code (0 completed or
  stopped, 1 start failure, 2 processing error); an unknown id: "Instance '<id>' does not exist.".
* ``POST <root>/<pipeline_name>/config``: no body (or ``null``) answers "Config object cannot be
  empty.\\nConfig: None"; ``{}`` is expanded first, as cam_server does, and answers "Camera name
  not specified in configuration.". Every ``config`` in an answer is cam_server's expansion of
  the user's config (see ``PipelineManager``), never camioc's runtime defaults.

Nothing here blocks the event loop: PNG rendering, base64, unpickling and large JSON bodies run in
worker threads; every manager call is bounded (start-up and background collection have deadlines).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from camioc.config.access import AccessPolicy
from camioc.config.names import validate_name
from camioc.core.api import DEFAULT_BACKGROUND_IMAGES, CameraService, PipelineService
from camioc.errors import CamiocError, ConfigError
from camioc.logbuffer import LogBuffer
from camioc.model.instance_names import pipeline_pv_name
from camioc.rest.browser import BrowserPolicy
from camioc.rest.common import API_PREFIX, instance_api_app
from camioc.rest.envelope import BigPayload, read_body, read_json_object
from camioc.rest.images import PngOptions, encode_image_bytes, png_response
from camioc.rest.routing import Routes
from camioc.rest.scripts import DEFAULT_MAX_UPLOAD_BYTES, ScriptStore, read_upload
from camioc.rest.unpickle import unpickle_array
from camioc.rest.writes import note_change

PIPELINE_ROOT = API_PREFIX + "/pipeline"

#: Default (cam_server's 10) and largest ``n_images`` of ``POST <root>/camera/<camera>/background``.
MAX_BACKGROUND_IMAGES = 1000

NO_CONFIG = "You must specify either the pipeline name or the configuration for the pipeline."
EMPTY_UPDATES = "Config updates cannot be empty."


# ================================================================================ parameter parsing
def query_text(request: web.Request, key: str) -> str | None:
    """A query parameter; absent or empty is None (cam_server clients omit unset parameters)."""
    value = request.query.get(key)
    return value if value else None


def parse_n_images(text: str | None) -> int:
    """``n_images`` of a background collection (cam_server's message for a non-number)."""
    if text is None or not text.strip():
        return DEFAULT_BACKGROUND_IMAGES
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError("n_images must be a number.") from None
    if not 1 <= value <= MAX_BACKGROUND_IMAGES:
        raise ConfigError(f"n_images must be between 1 and {MAX_BACKGROUND_IMAGES}, got {value}.")
    return value


def parse_additional_config(text: str | None) -> dict[str, Any] | None:
    """``?additional_config=`` of ``POST <root>/<pipeline_name>``: a JSON object (or absent)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"additional_config is not valid JSON: {exc}.") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"additional_config must be a JSON object, got {type(value).__name__}.")
    return value


async def read_config_updates(request: web.Request) -> dict[str, Any]:
    """The body of ``POST .../instance/<id>/config``: a non-empty JSON object."""
    body = await read_body(request)
    try:
        value = json.loads(body) if body.strip() else None
    except ValueError:  # not JSON (or not UTF-8): cam_server says the updates are empty
        value = None
    if not value:
        raise ConfigError(EMPTY_UPDATES)
    if not isinstance(value, dict):
        raise ConfigError(f"Config updates must be a JSON object, got {type(value).__name__}.")
    return value


def background_id_from_filename(filename: Any) -> str:
    """The background id ``POST <root>/background`` stores under (see the module docstring)."""
    if not isinstance(filename, str) or not filename.strip():
        raise ConfigError("A background 'filename' is required: it names the stored background.")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if name.endswith(".npy"):
        name = name[: -len(".npy")]
    return validate_name(name, "background id")


def background_from_data(data: Any) -> np.ndarray:
    """A 2-D nested list of numbers as a uint16 image (rounded; out-of-range values refused)."""
    if data is None:
        raise ConfigError(
            "No background 'data' given: camioc has no server-wide background to clear; "
            "set image_background_enable to false on the pipeline instead."
        )
    try:
        array = np.array(data)
    except (ValueError, TypeError):
        array = None
    if array is None or array.ndim != 2 or array.size == 0 or array.dtype.kind not in "biuf":
        raise ConfigError("Background 'data' must be a non-empty 2-D array of numbers (a list of equal-length rows).")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ConfigError("Background 'data' must not contain NaN or infinite values.")
        array = np.rint(array)
    low, high = array.min(), array.max()
    if low < 0 or high > np.iinfo(np.uint16).max:
        raise ConfigError(
            f"Background 'data' values must be within 0..65535 (stored as uint16), got {low:g}..{high:g}."
        )
    return array.astype(np.uint16)


# ================================================================================ routes
def add_pipeline_routes(routes: Routes, root: str, pipelines: PipelineService, cameras: CameraService) -> None:
    """The pipeline-specific routes of compat §4.3 (not the common, script or lib routes)."""

    # ---------------------------------------------------------------- saved configs
    async def list_pipelines(request: web.Request) -> dict[str, Any]:
        return {"status": "List of available pipelines.", "pipelines": pipelines.pipeline_names()}

    async def groups(request: web.Request) -> dict[str, Any]:
        return {"status": "List of pipeline groups.", "groups": pipelines.groups()}

    async def config_names(request: web.Request) -> dict[str, Any]:
        return {"status": "List of pipeline configurations.", "config_names": pipelines.pipeline_names()}

    async def get_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["pipeline_name"]
        return {"status": f"Pipeline {name} configuration retrieved.", "config": pipelines.get_config(name)}

    def saved_config(name: str) -> dict[str, Any] | None:
        """The saved config of pipeline ``name``, None if there is none (or it is broken)."""
        if name not in pipelines.pipeline_names():
            return None
        try:
            return pipelines.get_config(name)
        except CamiocError:
            return None

    async def save_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["pipeline_name"]
        body = await read_json_object(request, empty_message="Config object cannot be empty.\nConfig: None")
        old = saved_config(name)
        config = await pipelines.save_config(name, body)
        note_change(request, old, config)
        return {"status": f"Pipeline {name} configuration saved.", "config": config}

    async def delete_config(request: web.Request) -> dict[str, Any]:
        name = request.match_info["pipeline_name"]
        old = saved_config(name)
        await pipelines.delete_config(name)
        note_change(request, old, None)
        return {"status": f"Pipeline {name} configuration deleted."}

    # ---------------------------------------------------------------- instances
    def created(instance_id: str, stream: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "status": f"Stream address for pipeline {instance_id}.",
            "instance_id": instance_id,
            "stream": stream,
            "config": config,
        }

    async def create_from_config(request: web.Request) -> dict[str, Any]:
        body = await read_json_object(request, empty_message=NO_CONFIG)
        result = await pipelines.create_instance(body, instance_id=query_text(request, "instance_id"))
        note_change(request, None, result[2])  # the put log shows the config an instance was created with
        return created(*result)

    async def create_from_name(request: web.Request) -> dict[str, Any]:
        name = request.match_info["pipeline_name"]
        additional = parse_additional_config(query_text(request, "additional_config"))
        result = await pipelines.create_instance(
            pipeline_name=name, instance_id=query_text(request, "instance_id"), additional_config=additional
        )
        note_change(request, None, result[2])
        return created(*result)

    async def instance_stream(request: web.Request) -> dict[str, Any]:
        instance_id = request.match_info["instance_id"]
        stream = await pipelines.get_instance_stream(instance_id)
        return {"status": f"Stream address for pipeline {instance_id}.", "stream": stream}

    async def instance_from_config(request: web.Request) -> dict[str, Any]:
        body = await read_json_object(request, empty_message=NO_CONFIG)
        result = await pipelines.get_instance_stream_from_config(body)
        note_change(request, None, result[2])
        return created(*result)

    async def instance_info(request: web.Request) -> dict[str, Any]:
        instance_id = request.match_info["instance_id"]
        info = {**pipelines.instance_info(instance_id), "pv_name": pipeline_pv_name(instance_id)}
        return {"status": f"Pipeline instance {instance_id} info retrieved.", "info": info}

    async def instance_config(request: web.Request) -> dict[str, Any]:
        instance_id = request.match_info["instance_id"]
        return {
            "status": f"Pipeline instance {instance_id} configuration retrieved.",
            "config": pipelines.instance_config(instance_id),
        }

    async def set_instance_config(request: web.Request) -> dict[str, Any]:
        instance_id = request.match_info["instance_id"]
        changes = await read_config_updates(request)
        old = pipelines.instance_config(instance_id)
        config = await pipelines.set_instance_config(instance_id, changes)
        note_change(request, old, config)
        return {"status": f"Pipeline instance {instance_id} configuration changed.", "config": config}

    async def exit_code(request: web.Request) -> dict[str, Any]:
        instance_id = request.match_info["instance_id"]
        code = pipelines.exit_code(instance_id, running_is_error=True)
        return {"status": f"Pipeline instance {instance_id} info retrieved.", "exitcode": code}

    # ---------------------------------------------------------------- cameras and backgrounds
    async def list_cameras(request: web.Request) -> dict[str, Any]:
        return {"status": "List of available cameras.", "cameras": cameras.camera_names()}

    async def collect_background(request: web.Request) -> dict[str, Any]:
        camera = request.match_info["camera"]
        n_images = parse_n_images(request.query.get("n_images"))
        background_id = await pipelines.collect_background(camera, n_images)
        return {"status": f"Background collected on camera {camera}.", "background_id": background_id}

    async def latest_background(request: web.Request) -> dict[str, Any]:
        camera = request.match_info["camera"]
        background_id = await asyncio.to_thread(pipelines.latest_background, camera)
        return {"status": f"Latest background for camera {camera}.", "background_id": background_id}

    async def list_backgrounds(request: web.Request) -> dict[str, Any]:
        camera = request.match_info["camera"]
        ids = await asyncio.to_thread(pipelines.background_ids, camera)
        return {"status": f"Backgrounds of camera {camera}.", "background_ids": ids}

    async def background_image(request: web.Request) -> web.Response:
        background_id = request.match_info["background_id"]
        options = PngOptions.from_query(request.query)
        return await png_response(await pipelines.get_background(background_id), options)

    async def get_background_bytes(request: web.Request) -> BigPayload:
        background_id = request.match_info["background_id"]
        array = await pipelines.get_background(background_id)
        encoded = await asyncio.to_thread(encode_image_bytes, array)
        return BigPayload(status=f"Background image {background_id}.", image=encoded)

    async def put_background_bytes(request: web.Request) -> dict[str, Any]:
        background_id = validate_name(request.match_info["background_id"], "background id")
        array = await asyncio.to_thread(unpickle_array, await read_body(request))
        await pipelines.set_background(background_id, array, overwrite=True)
        return {"status": f"Background image {background_id} stored.", "background_id": background_id}

    async def post_background(request: web.Request) -> dict[str, Any]:
        body = await read_json_object(request, empty_message="Background object cannot be empty.")
        background_id = background_id_from_filename(body.get("filename"))
        array = await asyncio.to_thread(background_from_data, body.get("data"))
        await pipelines.set_background(background_id, array, overwrite=True)
        return {"status": f"Background image {background_id} stored.", "background_id": background_id}

    routes.get(root, list_pipelines)
    routes.post(root, create_from_config)
    routes.get(f"{root}/groups", groups)
    routes.get(f"{root}/config_names", config_names)
    routes.post(f"{root}/{{pipeline_name}}", create_from_name)
    routes.get(f"{root}/{{pipeline_name}}/config", get_config)
    routes.post(f"{root}/{{pipeline_name}}/config", save_config)
    routes.delete(f"{root}/{{pipeline_name}}/config", delete_config)
    routes.post(f"{root}/instance/", instance_from_config)
    def would_start_pipeline(request: web.Request) -> bool:
        return request.match_info["instance_id"] not in pipelines.running_names

    routes.get(f"{root}/instance/{{instance_id}}", instance_stream, starts=would_start_pipeline)
    routes.get(f"{root}/instance/{{instance_id}}/info", instance_info)
    routes.get(f"{root}/instance/{{instance_id}}/config", instance_config)
    routes.post(f"{root}/instance/{{instance_id}}/config", set_instance_config)
    routes.get(f"{root}/instance/{{instance_id}}/exitcode", exit_code)
    routes.get(f"{root}/camera", list_cameras)
    routes.post(f"{root}/camera/{{camera}}/background", collect_background)
    routes.get(f"{root}/camera/{{camera}}/background", latest_background)
    routes.get(f"{root}/camera/{{camera}}/backgrounds", list_backgrounds)
    routes.post(f"{root}/background", post_background)
    routes.get(f"{root}/background/{{background_id}}/image", background_image)
    routes.get(f"{root}/background/{{background_id}}/image_bytes", get_background_bytes)
    routes.put(f"{root}/background/{{background_id}}/image_bytes", put_background_bytes)


def encode_lib(data: bytes) -> tuple[str, bool]:
    """``(lib, base64)``: the text of a UTF-8 file, else its base64."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def add_lib_routes(routes: Routes, root: str, store: ScriptStore) -> None:
    """``<root>/lib`` routes: user libraries (see the module docstring)."""

    async def list_libs(request: web.Request) -> dict[str, Any]:
        return {"status": "List of available libs.", "libs": await asyncio.to_thread(store.names)}

    async def get_lib(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        data = await asyncio.to_thread(store.read, name)
        text, is_base64 = await asyncio.to_thread(encode_lib, data)
        return BigPayload(status=f"Lib file '{name}'.", lib=text, base64=is_base64)

    async def put_lib(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        store.path(name)  # refuse a bad name before reading the body
        await asyncio.to_thread(store.write, name, await read_upload(request, store, name))
        return {"status": f"Lib file {name} stored."}

    async def delete_lib(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        await asyncio.to_thread(store.delete, name)
        return {"status": f"Lib file {name} deleted."}

    routes.get(f"{root}/lib", list_libs)
    routes.get(f"{root}/lib/{{name}}/lib_bytes", get_lib)
    routes.put(f"{root}/lib/{{name}}/lib_bytes", put_lib)
    routes.delete(f"{root}/lib/{{name}}/lib_bytes", delete_lib)


def create_pipeline_app(
    pipelines: PipelineService,
    cameras: CameraService,
    *,
    version: str,
    logs: LogBuffer,
    scripts_dir: Path,
    libs_dir: Path,
    host_stats: bool = True,
    browser: BrowserPolicy | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    access: AccessPolicy | None = None,
    user_scripts: bool = True,
) -> web.Application:
    """The pipeline REST API as an aiohttp application (serve it with :class:`RestSite`).

    ``browser``: what web pages may do (:class:`camioc.rest.browser.BrowserPolicy`; default: no
    CORS, cross-origin writes refused, Host checked on loopback). ``max_upload_bytes``: the largest
    script or lib upload accepted. ``access``: who may write (default: everyone).
    ``user_scripts=False`` refuses script and lib uploads."""
    app, routes = instance_api_app(
        root=PIPELINE_ROOT, service=pipelines, instance_kind="pipeline", version=version, logs=logs,
        scripts=ScriptStore(scripts_dir, max_bytes=max_upload_bytes, uploads=user_scripts), host_stats=host_stats,
        browser=browser, access=access,
    )
    add_lib_routes(routes, PIPELINE_ROOT,
                   ScriptStore(libs_dir, suffixes=None, kind="Lib", max_bytes=max_upload_bytes, uploads=user_scripts))
    add_pipeline_routes(routes, PIPELINE_ROOT, pipelines, cameras)
    routes.install(app)
    return app


__all__ = [
    "DEFAULT_BACKGROUND_IMAGES",
    "MAX_BACKGROUND_IMAGES",
    "PIPELINE_ROOT",
    "add_lib_routes",
    "add_pipeline_routes",
    "background_from_data",
    "background_id_from_filename",
    "create_pipeline_app",
    "parse_additional_config",
    "parse_n_images",
]
