"""``libs`` and ``--dispatcher-url`` through a real camioc process and psi-camserver-client.

A lib is uploaded with ``PipelineClient.set_lib`` (``PUT /api/v1/pipeline/lib/<name>/lib_bytes``),
a function importing it with ``set_user_script``; the channel computed with the lib is read from
the pipeline's stream with psi-bsread. camioc runs with ``--dispatcher-url`` pointing at a bsread
source owned by the test: a stream pipeline giving only ``bsread_channels`` reads them from it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bsread
import pytest
from cam_server_client import PipelineClient
from cam_server_client.utils import get_host_port_from_stream_address

from tests.support.paced_source import PacedSource
from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc

LIB = b"MAGIC = 4242\n\ndef double(value):\n    return 2 * value\n"
FUNCTION = b"""import mylib

def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    return {"lib_magic": mylib.MAGIC, "lib_double": mylib.double(float(image.shape[0]))}
"""


@pytest.fixture(scope="module")
def dispatcher() -> Iterator[PacedSource]:
    source = PacedSource(lambda pid: {"BEAM:ENERGY": pid * 0.5, "BEAM:OTHER": 1.0}, mode="PUB")
    yield source
    source.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dispatcher: PacedSource) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("camioc_inputs_rest")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, folder / "camioc.log", ["--dispatcher-url", dispatcher.address])
    try:
        yield server
    finally:
        stop_camioc(server)


def first_values(address: str, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    host, port = get_host_port_from_stream_address(address)
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as source:
        while True:
            message = source.receive()
            if message is not None:
                return message.data.pulse_id, {k: v.value for k, v in message.data.data.items()}
            assert time.monotonic() < deadline, f"nothing from {address} within {timeout} s"


def test_uploaded_lib_is_importable_by_the_function(pipe: PipelineClient, server: CamiocServer) -> None:
    pipe.set_lib("mylib.py", LIB)
    pipe.set_user_script("uses_mylib.py", FUNCTION)
    assert "mylib.py" in pipe.get_libs()
    _id, stream = pipe.create_instance_from_config(
        {"camera_name": "simulation", "function": "uses_mylib.py", "libs": ["mylib.py"]})
    _pid, data = first_values(stream)
    assert data["lib_magic"] == 4242
    assert data["lib_double"] == 2.0 * 960  # mylib.double(image height) of the 1280x960 simulation
    assert (Path(server.base) / "user_scripts" / "lib" / "mylib.py").read_bytes() == LIB


def test_a_lib_that_was_never_uploaded_is_refused(pipe: PipelineClient) -> None:
    before = pipe.get_server_info()["active_instances"]
    with pytest.raises(ValueError, match="Lib 'nolib.py' does not exist"):
        pipe.create_instance_from_config({"camera_name": "simulation", "libs": ["nolib.py"]})
    with pytest.raises(ValueError, match="Lib 'nolib.py' does not exist"):
        pipe.save_pipeline_config("with_missing_lib", {"camera_name": "simulation", "libs": ["nolib.py"]})
    assert "with_missing_lib" not in pipe.get_pipelines()
    assert pipe.get_server_info()["active_instances"].keys() == before.keys()


def test_bsread_channels_are_read_from_the_dispatcher_url(pipe: PipelineClient) -> None:
    _id, stream = pipe.create_instance_from_config(
        {"pipeline_type": "stream", "bsread_channels": ["BEAM:ENERGY"]})
    pid, data = first_values(stream)
    assert data == {"BEAM:ENERGY": pid * 0.5}, "only the listed channel, from the dispatcher stream"
