"""CORS and OPTIONS on a real camioc server, seen by an aiohttp client (a browser's view)."""

from __future__ import annotations

import aiohttp


async def test_cors_and_options(camioc_server) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v1/cam", "/api/v1/cam/simulation/config", "/api/v1/cam/whatever/at/all"):
            async with session.options(camioc_server.camera_url + path) as response:
                assert response.status == 200
                assert await response.read() == b""
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert response.headers["Access-Control-Allow-Methods"] == "PUT, GET, POST, DELETE, OPTIONS"
                assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
        async with session.get(camioc_server.camera_url + "/api/v1/cam/nope/config") as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert await response.json() == {"state": "error", "status": "Camera 'nope' does not exist."}
        async with session.get(camioc_server.camera_url + "/api/v1/cam/simulation/image", params={"scale": "0.1"}) as response:
            assert response.content_type == "image/png"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        async with session.get(camioc_server.camera_url + "/api/v1/unknown/route") as response:
            assert response.status == 404
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        async with session.get(camioc_server.camera_url + "/base") as response:
            assert (await response.json())["base"] == "/api/v1/cam"
