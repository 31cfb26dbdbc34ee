"""``--private-instance-timeout``: how long a REST-created private instance outlives its last client.

A real camioc started with ``--private-instance-timeout 2``: a private instance whose config gives
no ``no_client_timeout`` runs with 2 s (its stream's ``processing_parameters`` say so, the REST
config shows only what the user gave, as cam_server) and is gone a few seconds after its client
left, well before cam_server's 10 s; a config that names its own ``no_client_timeout`` keeps it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import receive, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("private_timeout")
    shutil.copytree(TEST_CONFIGS, folder / "configs")
    handle = start_camioc(folder / "configs", folder / "camioc.log", ["--private-instance-timeout", "2"])
    try:
        yield handle
    finally:
        stop_camioc(handle)


def create(server: CamiocServer, config: dict[str, object]) -> dict[str, object]:
    answer = requests.post(f"{server.pipeline_url}/api/v1/pipeline", json=config, timeout=60).json()
    assert answer["state"] == "ok", answer
    return answer


def running(server: CamiocServer, instance_id: str) -> bool:
    answer = requests.get(f"{server.pipeline_url}/api/v1/pipeline/instance/{instance_id}/info", timeout=10).json()
    return answer["state"] == "ok"


def test_a_private_instance_gets_the_server_timeout(server: CamiocServer) -> None:
    answer = create(server, {"camera_name": "simulation2"})
    instance_id = str(answer["instance_id"])
    assert "no_client_timeout" not in answer["config"]  # shown as the user gave it
    (message,) = receive(str(answer["stream"]))
    parameters = json.loads(message.data.data["processing_parameters"].value)
    assert parameters["no_client_timeout"] == 2
    left = time.monotonic()
    wait_until(lambda: not running(server, instance_id), timeout=9, what="the instance to stop")
    assert time.monotonic() - left < 9  # not cam_server's 10 s


def test_a_config_that_gives_its_timeout_keeps_it(server: CamiocServer) -> None:
    answer = create(server, {"camera_name": "simulation2", "no_client_timeout": 30})
    (message,) = receive(str(answer["stream"]))
    assert json.loads(message.data.data["processing_parameters"].value)["no_client_timeout"] == 30
    stopped = requests.delete(f"{server.pipeline_url}/api/v1/pipeline/{answer['instance_id']}", timeout=30).json()
    assert stopped["state"] == "ok", stopped
