"""Pipeline REST API (:8889). Placeholder until the pipeline layer lands: common routes only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web


def create_pipeline_app(cameras: Any, *, version: str, logs: Any, scripts_dir: Path) -> web.Application:
    """The pipeline API application (version/info/pipelines answer; no pipelines yet)."""

    def envelope(**payload: Any) -> web.Response:
        return web.json_response({"state": "ok", "status": "ok", **payload},
                                 headers={"Access-Control-Allow-Origin": "*"})

    async def get_version(request: web.Request) -> web.Response:
        return envelope(version=version)

    async def get_info(request: web.Request) -> web.Response:
        return envelope(info={"version": version, "active_instances": {}})

    async def get_pipelines(request: web.Request) -> web.Response:
        return envelope(pipelines=[])

    app = web.Application()
    app.router.add_get("/api/v1/pipeline/version", get_version)
    app.router.add_get("/api/v1/pipeline/info", get_info)
    app.router.add_get("/api/v1/pipeline", get_pipelines)
    return app
