"""The cam_server contract every route shares: envelope, errors as HTTP 200, CORS, OPTIONS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from camioc.errors import ConfigError
from camioc.rest.envelope import (
    CORS_HEADERS,
    BigPayload,
    dumps,
    envelope_middleware,
    read_json_object,
)
from camioc.rest.routing import Routes, specificity

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "PUT, GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Origin, Accept, Content-Type, X-Requested-With, X-CSRF-Token",
}


def assert_cors(response) -> None:
    for key, value in CORS.items():
        assert response.headers.get(key) == value, key


async def test_ok_envelope_has_state_status_and_payload(client: TestClient) -> None:
    response = await client.get("/api/v1/cam")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert list(body)[:2] == ["state", "status"]
    assert body == {"state": "ok", "status": "List of available cameras.", "cameras": ["cam_a", "offline_cam", "simulation"]}
    assert_cors(response)


async def test_camioc_error_is_http_200_with_message(client: TestClient, log_buffer) -> None:
    response = await client.get("/api/v1/cam/nope/config")
    assert response.status == 200
    assert await response.json() == {"state": "error", "status": "Camera 'nope' does not exist."}
    assert_cors(response)
    # An expected refusal is logged in one line, without traceback.
    rows = [row for row in log_buffer.records() if row[1] == "camioc.rest.envelope"]
    assert rows and "refused: Camera 'nope' does not exist." in rows[-1][3]
    assert "Traceback" not in rows[-1][3]


async def test_unexpected_exception_is_http_200_and_logged_with_traceback(client: TestClient, cameras, log_buffer) -> None:
    def broken() -> list[str]:
        raise KeyError("boom")

    cameras.camera_names = broken
    response = await client.get("/api/v1/cam")
    assert response.status == 200
    assert await response.json() == {"state": "error", "status": "'boom'"}
    rows = [row for row in log_buffer.records() if row[1] == "camioc.rest.envelope"]
    assert rows[-1][2] == "ERROR"
    assert "Traceback" in rows[-1][3] and "KeyError" in rows[-1][3]


async def test_exception_without_text_reports_its_type(client: TestClient, cameras) -> None:
    def broken() -> list[str]:
        raise RuntimeError()

    cameras.camera_names = broken
    assert await (await client.get("/api/v1/cam")).json() == {"state": "error", "status": "RuntimeError"}


@pytest.mark.parametrize("path", ["/api/v1/cam", "/api/v1/cam/simulation/config", "/nowhere/at/all", "/"])
async def test_options_answers_200_empty_with_cors_on_any_path(client: TestClient, path: str) -> None:
    response = await client.options(path)
    assert response.status == 200
    assert await response.read() == b""
    assert_cors(response)


async def test_unknown_route_is_plain_404_with_cors(client: TestClient) -> None:
    response = await client.get("/api/v1/unknown")
    assert response.status == 404
    assert_cors(response)


async def test_wrong_method_is_405_with_cors(client: TestClient) -> None:
    response = await client.patch("/api/v1/cam/simulation/config")
    assert response.status == 405
    assert_cors(response)


async def test_png_and_text_responses_carry_cors(client: TestClient) -> None:
    for path in ("/api/v1/cam/simulation/image", "/api/v1/logs/txt", "/"):
        response = await client.get(path)
        assert response.status == 200, path
        assert_cors(response)


def test_dumps_converts_numpy_and_keeps_nan() -> None:
    text = dumps({"a": np.uint16(3), "b": np.arange(3), "c": (1, 2), "d": float("nan"), "e": np.float32(0.5)})
    assert text == '{"a": 3, "b": [0, 1, 2], "c": [1, 2], "d": NaN, "e": 0.5}'


async def test_big_payload_and_status_key() -> None:
    async def big(request: web.Request) -> BigPayload:
        return BigPayload(status="Big one.", data="x" * 100_000)

    async def state_is_not_overridable(request: web.Request) -> dict:
        return {"state": "error", "value": 1}

    app = web.Application(middlewares=[envelope_middleware])
    routes = Routes()
    routes.get("/big", big)
    routes.get("/state", state_is_not_overridable)
    routes.install(app)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/big")).json()
        assert body["state"] == "ok" and body["status"] == "Big one." and len(body["data"]) == 100_000
        assert await (await client.get("/state")).json() == {"state": "ok", "status": "ok", "value": 1}


async def test_read_json_object_messages() -> None:
    async def echo(request: web.Request) -> dict:
        return {"body": await read_json_object(request, empty_message="Config updates cannot be empty.")}

    app = web.Application(middlewares=[envelope_middleware], client_max_size=1000)
    routes = Routes()
    routes.post("/echo", echo)
    routes.install(app)
    async with TestClient(TestServer(app)) as client:
        async def status(data: bytes) -> str:
            reply = await (await client.post("/echo", data=data)).json()
            assert reply["state"] == "error"
            return reply["status"]

        assert await status(b"") == "Config updates cannot be empty."
        assert await status(b"  \n") == "Config updates cannot be empty."
        assert await status(b"null") == "Config updates cannot be empty."
        assert await status(b"{not json") == "Request body is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)."
        assert await status(b"[1, 2]") == "Request body must be a JSON object, got list."
        assert (await status(b"\xff\xfe{")).startswith("Request body is not UTF-8 encoded JSON")
        assert (await status(b"{" + b" " * 2000 + b"}")).startswith("Request body too large: Maximum request body size 1000 exceeded")
        ok = await (await client.post("/echo", data=json.dumps({"a": 1}))).json()
        assert ok == {"state": "ok", "status": "ok", "body": {"a": 1}}


def test_cors_headers_constant_matches_cam_server() -> None:
    assert dict(CORS_HEADERS) == CORS


def test_route_specificity_puts_literals_first() -> None:
    async def handler(request: web.Request) -> dict:
        return {}

    routes = Routes()
    for path in ["/api/v1/cam/{camera}", "/api/v1/cam/{camera}/config", "/api/v1/cam/aliases", "/api/v1/cam",
                 "/api/v1/cam/script/{name}/script_bytes", "/"]:
        routes.get(path, handler)
    ordered = [route.path for route in routes.ordered()]
    assert ordered.index("/api/v1/cam/aliases") < ordered.index("/api/v1/cam/{camera}")
    assert ordered[0] == "/"
    assert specificity("/a/{b}/c") == (0, 1, 0)
    with pytest.raises(ValueError, match="registered twice"):
        routes.get("/api/v1/cam", handler)


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
