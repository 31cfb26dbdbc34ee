"""The shared pieces build a pipeline-rooted app too (what ``create_pipeline_app`` will reuse)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from camioc.logbuffer import LogBuffer
from camioc.rest.common import add_common_routes, add_log_routes, add_reset_route
from camioc.rest.envelope import envelope_middleware
from camioc.rest.routing import Routes
from camioc.rest.scripts import ScriptStore, add_script_routes

ROOT = "/api/v1/pipeline"


class FakePipelines:
    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {"p1": {"stream_address": "tcp://h:11100", "read_only": False}}

    def active_instances(self) -> dict[str, dict[str, Any]]:
        return dict(self.instances)

    @property
    def running_names(self) -> list[str]:
        return list(self.instances)

    async def stop(self, name: str) -> None:
        self.instances.pop(name, None)

    async def stop_all(self) -> None:
        self.instances.clear()

    async def delete_instance(self, name: str) -> None:
        self.instances.pop(name, None)


async def test_pipeline_rooted_app(tmp_path: Path) -> None:
    service = FakePipelines()
    logs = LogBuffer()
    logger = logging.getLogger("camioc.pipeline.p1")
    logger.addHandler(logs)
    logger.setLevel(logging.INFO)
    logging.getLogger("camioc.camera.p1").addHandler(logs)
    try:
        logger.info("pipeline line")
        logging.getLogger("camioc.camera.p1").warning("camera line")

        app = web.Application(middlewares=[envelope_middleware])
        routes = Routes()
        add_common_routes(routes, root=ROOT, service=service, version="1.0", host_stats=False)
        add_log_routes(routes, logs=logs, instance_kind="pipeline")
        add_reset_route(routes)
        add_script_routes(routes, ROOT, ScriptStore(tmp_path))

        async def instance(request: web.Request) -> dict[str, Any]:
            return {"stream": request.match_info["instance_id"]}

        routes.get(f"{ROOT}/instance/{{instance_id}}", instance)
        routes.install(app)

        async with TestClient(TestServer(app)) as client:
            assert (await (await client.get("/base")).json())["base"] == ROOT
            info = (await (await client.get(f"{ROOT}/info")).json())["info"]
            assert list(info["active_instances"]) == ["p1"]
            assert (await (await client.get(f"{ROOT}/version")).json())["version"] == "1.0"
            rows = (await (await client.get("/api/v1/logs/instance/p1")).json())["logs"]
            assert [row[3] for row in rows] == ["pipeline line"]  # not the camera's p1
            assert (await (await client.put(f"{ROOT}/script/f.py/script_bytes", data=b"x=1")).json())["state"] == "ok"
            assert (await (await client.get(f"{ROOT}/script")).json())["scripts"] == ["f.py"]
            assert (await (await client.get(f"{ROOT}/instance/x")).json())["stream"] == "x"
            assert (await (await client.delete(f"{ROOT}/p1")).json())["status"] == "Instance 'p1' stopped."
            assert service.instances == {}
            assert (await (await client.get("/api/v1/reset")).json())["state"] == "error"
    finally:
        logger.removeHandler(logs)
        logging.getLogger("camioc.camera.p1").removeHandler(logs)
