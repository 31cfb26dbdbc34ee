"""Routes both REST servers share (compat §4.1), parameterised by API root and service.

``<root>`` is ``/api/v1/cam`` (camera server) or ``/api/v1/pipeline`` (pipeline server):

=====================================  ===========================================================
``GET /``                              status page (HTML; polls ``/base`` and ``<root>/info``)
``GET /base``                          ``base``: the API root of this server
``GET <root>/info``                    ``info``: ``version``, ``active_instances``, host ``cpu`` (%),
                                       ``memory`` (bytes used), ``tx``/``rx`` (network bytes/s since
                                       the previous ``info`` call; null on the first call)
``GET <root>/heartbeat``               ``version``, ``instances``: per active instance cam_server's flat
                                       summary (:func:`heartbeat_entry`)
``GET <root>/version``                 ``version``
``DELETE <root>``                      stop every instance
``DELETE <root>/<name>``               stop one instance (no error if it is not running or unknown)
``DELETE <root>/<name>/del``           stop and delete one instance
``GET /api/v1/logs[/txt]``             the service log ring (last 500): ``logs`` rows
                                       ``[asctime, logger, level, message]`` / plain text
``GET /api/v1/logs/instance/<n>[/txt]``  the instance's ring (last 100; empty if it never logged)
``GET /api/v1/reset``                  refused (see below)
=====================================  ===========================================================

``/api/v1/reset``: cam_server answers it by sending SIGTERM to its own process group. camioc
refuses it with an error envelope. camioc is a shared control-system service (an IOC and two
REST APIs in one process, used by many clients at once), and it may run without a supervisor
that would restart it, so a remote reset could silently take every camera, pipeline and PV
offline. Restart the service through its supervisor (systemd, procServ, the container runtime);
to restart an instance, stop it (``DELETE <root>/<name>``) and request its stream again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psutil
from aiohttp import web

from camioc.config.access import AccessPolicy
from camioc.core.api import InstanceService, rate_of
from camioc.errors import CamiocError, NotFoundError
from camioc.logbuffer import LogBuffer
from camioc.model.instance_names import camera_pv_name, pipeline_pv_name
from camioc.rest.browser import BrowserPolicy
from camioc.rest.envelope import ACCESS_POLICY, BROWSER_POLICY, MAX_BODY_BYTES, envelope_middleware
from camioc.rest.routing import Routes
from camioc.rest.scripts import ScriptStore, add_script_routes

API_PREFIX = "/api/v1"
LOGS_ROOT = API_PREFIX + "/logs"
RESET_PATH = API_PREFIX + "/reset"

log = logging.getLogger(__name__)

RESET_REFUSED = (
    "Reset is disabled in camioc: it would stop the whole shared service (IOC, both REST APIs, every "
    "instance) for all its users. Restart the service through its supervisor instead, or stop and "
    "restart a single instance."
)


class ResetRefusedError(PermissionError, CamiocError):
    """``GET /api/v1/reset`` is not honoured (see the module docstring)."""


class HostStats:
    """Host figures for ``<root>/info``, as cam_server reports them (psutil).

    ``tx``/``rx`` are network rates (bytes/s) since the previous call, so they are per app.
    """

    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self._enabled = enabled
        self._clock = clock
        self._last: tuple[float, int, int] | None = None

    def snapshot(self) -> dict[str, Any]:
        if not self._enabled:
            return {"cpu": None, "memory": None, "tx": None, "rx": None}
        net = psutil.net_io_counters()
        now = self._clock()
        tx = rx = None
        if self._last is not None:
            then, last_tx, last_rx = self._last
            if now > then:
                tx = (net.bytes_sent - last_tx) / (now - then)
                rx = (net.bytes_recv - last_rx) / (now - then)
        self._last = (now, net.bytes_sent, net.bytes_recv)
        return {"cpu": psutil.cpu_percent(interval=None), "memory": psutil.virtual_memory().used, "tx": tx, "rx": rx}


def add_common_routes(
    routes: Routes,
    *,
    root: str,
    service: InstanceService,
    version: str,
    host_stats: bool = True,
    pv_name: Callable[[str], str] | None = None,
) -> None:
    """``/``, ``/base`` and the ``<root>`` instance-management routes.

    ``pv_name`` gives an instance's PV name (:mod:`camioc.model.instance_names`): ``/info`` adds it
    to each instance's info as ``pv_name`` (an extra key: the instance ids stay cam_server's)."""
    stats = HostStats(host_stats)

    async def status_page(request: web.Request) -> web.Response:
        return web.Response(text=STATUS_PAGE, content_type="text/html")

    async def base(request: web.Request) -> dict[str, Any]:
        return {"status": "Base", "base": root}

    async def info(request: web.Request) -> dict[str, Any]:
        instances = service.active_instances()
        if pv_name is not None:
            instances = {key: {**info, "pv_name": pv_name(key)} for key, info in instances.items()}
        payload = {"version": version, "active_instances": instances}
        payload.update(stats.snapshot())
        return {"status": "Instance manager info retrieved.", "info": payload}

    async def heartbeat(request: web.Request) -> dict[str, Any]:
        instances = {name: heartbeat_entry(info) for name, info in service.active_instances().items()}
        return {"status": "Heartbeat", "version": version, "instances": instances}

    async def get_version(request: web.Request) -> dict[str, Any]:
        return {"status": "Version", "version": version}

    async def stop_all(request: web.Request) -> dict[str, Any]:
        await service.stop_all()
        return {"status": "All instances have been stopped."}

    async def stop(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        try:
            await service.stop(name)
        except NotFoundError:
            pass  # cam_server: stopping an unknown instance is not an error
        return {"status": f"Instance '{name}' stopped."}

    async def delete(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        await service.delete_instance(name)
        return {"status": f"Instance '{name}' stopped."}

    routes.get("/", status_page)
    routes.get("/base", base)
    routes.get(f"{root}/info", info)
    routes.get(f"{root}/heartbeat", heartbeat)
    routes.get(f"{root}/version", get_version)
    routes.delete(root, stop_all)
    routes.delete(f"{root}/{{name}}", stop)
    routes.delete(f"{root}/{{name}}/del", delete)


HEARTBEAT_KEYS = ("stream_address", "camera_name", "last_start_time", "read_only")


def heartbeat_entry(info: dict[str, Any]) -> dict[str, Any]:
    """One instance in ``/heartbeat``, flat as cam_server sends it: ``stream_address``,
    ``camera_name``, ``simulation`` (cameras), ``last_start_time``, ``read_only`` (pipelines),
    ``geometry`` (cameras) and the statistics (``total_bytes``, ``clients``, ``throughput``,
    ``time``, ``pid``, ``cpu``, ``memory``, ``header_changes``, ``frame_shape``, ``rx``/``tx``
    in Hz, ...), instead of the nested ``<root>/info`` form."""
    entry = {key: info[key] for key in HEARTBEAT_KEYS if key in info}
    config = info.get("config")
    if "camera_geometry" in info:
        entry["simulation"] = isinstance(config, dict) and config.get("source_type") == "simulation"
        entry["geometry"] = info["camera_geometry"]
    statistics = info.get("statistics")
    if isinstance(statistics, dict):
        entry.update(statistics)
        for key in ("rx", "tx"):  # "10.00Hz - 123" in the info, the rate (Hz) here
            if key in entry:
                entry[key] = rate_of(entry[key])
    return entry


def add_log_routes(routes: Routes, *, logs: LogBuffer, instance_kind: str) -> None:
    """``/api/v1/logs`` routes; instance logs are those of ``camioc.<instance_kind>.<name>``."""

    async def all_logs(request: web.Request) -> dict[str, Any]:
        return {"status": "Logs", "logs": logs.records()}

    async def all_logs_txt(request: web.Request) -> web.Response:
        return web.Response(text=logs.as_text(logs.records()))

    async def instance_logs(request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        return {"status": f"Logs of instance '{name}'", "logs": logs.instance_records(instance_kind, name)}

    async def instance_logs_txt(request: web.Request) -> web.Response:
        return web.Response(text=logs.as_text(logs.instance_records(instance_kind, request.match_info["name"])))

    routes.get(LOGS_ROOT, all_logs)
    routes.get(f"{LOGS_ROOT}/txt", all_logs_txt)
    routes.get(f"{LOGS_ROOT}/instance/{{name}}", instance_logs)
    routes.get(f"{LOGS_ROOT}/instance/{{name}}/txt", instance_logs_txt)


def add_reset_route(routes: Routes) -> None:
    """``GET /api/v1/reset``, refused (see the module docstring)."""

    async def reset(request: web.Request) -> dict[str, Any]:
        raise ResetRefusedError(RESET_REFUSED)

    routes.get(RESET_PATH, reset)


STATUS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>camioc</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; }
 table { border-collapse: collapse; }
 th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
 th { background: #eee; }
 #error { color: #b00; }
</style>
</head>
<body>
<h1>camioc <span id="base"></span></h1>
<p>Version <span id="version">?</span> &middot; CPU <span id="cpu">?</span> % &middot;
   memory <span id="memory">?</span> MB &middot; <span id="count">0</span> active instance(s)</p>
<p id="error"></p>
<table>
 <thead><tr><th>instance</th><th>stream</th><th>clients</th><th>rate</th><th>started</th></tr></thead>
 <tbody id="instances"></tbody>
</table>
<script>
"use strict";
let base = null;
function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
async function refresh() {
  try {
    if (base === null) {
      base = (await (await fetch("/base")).json()).base;
      document.getElementById("base").textContent = base;
    }
    const reply = await (await fetch(base + "/info")).json();
    if (reply.state !== "ok") { throw new Error(reply.status); }
    const info = reply.info;
    document.getElementById("version").textContent = info.version;
    document.getElementById("cpu").textContent = info.cpu === null ? "-" : info.cpu.toFixed(1);
    document.getElementById("memory").textContent = info.memory === null ? "-" : (info.memory / 1e6).toFixed(0);
    const body = document.getElementById("instances");
    body.replaceChildren();
    const names = Object.keys(info.active_instances).sort();
    document.getElementById("count").textContent = names.length;
    for (const name of names) {
      const instance = info.active_instances[name];
      const stats = instance.statistics || {};
      const row = document.createElement("tr");
      cell(row, name);
      cell(row, instance.stream_address || "");
      cell(row, stats.clients ?? "");
      cell(row, stats.rx ?? "");
      cell(row, instance.last_start_time || "");
      body.appendChild(row);
    }
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "Cannot read server info: " + err;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


#: The PV name of an instance of each kind (REST ``/info`` and instance info show it as ``pv_name``).
INSTANCE_PV_NAMES: dict[str, Callable[[str], str]] = {"camera": camera_pv_name, "pipeline": pipeline_pv_name}


def instance_api_app(
    *,
    root: str,
    service: InstanceService,
    instance_kind: str,
    version: str,
    logs: LogBuffer,
    scripts: ScriptStore,
    host_stats: bool = True,
    browser: BrowserPolicy | None = None,
    access: AccessPolicy | None = None,
) -> tuple[web.Application, Routes]:
    """What the camera and the pipeline API have in common, written once.

    The cam_server envelope (middleware) and body limit, the browser rules (``browser``; default
    ``BrowserPolicy()``: no CORS, cross-origin writes refused, Host checked on loopback), who may
    write (``access``; default: everyone, as cam_server), the common routes under ``root``, the
    log routes, the refused reset and the user-script routes.
    The caller adds its own routes to the returned :class:`Routes` and installs them.
    """
    app = web.Application(middlewares=[envelope_middleware], client_max_size=MAX_BODY_BYTES)
    policy = app[BROWSER_POLICY] = browser if browser is not None else BrowserPolicy()
    app[ACCESS_POLICY] = access if access is not None else AccessPolicy.open()

    async def log_policy(app: web.Application) -> None:
        (log.warning if policy.any_origin else log.info)("REST API %s browser rules: %s", root, policy.describe())

    app.on_startup.append(log_policy)
    routes = Routes()
    add_common_routes(routes, root=root, service=service, version=version, host_stats=host_stats,
                      pv_name=INSTANCE_PV_NAMES.get(instance_kind))
    add_log_routes(routes, logs=logs, instance_kind=instance_kind)
    add_reset_route(routes)
    add_script_routes(routes, root, scripts)
    return app, routes


__all__ = [
    "API_PREFIX",
    "HostStats",
    "InstanceService",
    "RESET_REFUSED",
    "ResetRefusedError",
    "add_common_routes",
    "add_log_routes",
    "add_reset_route",
    "heartbeat_entry",
    "instance_api_app",
]
