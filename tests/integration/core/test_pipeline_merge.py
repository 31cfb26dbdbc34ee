"""Input-side pipeline parameters through real streams: bsread merge by pulse id (``bsread_*``,
``*2``, the dispatcher), ``enforce_pid``/``check_timestamp`` and ``stream_timeout``.

Real parts: pipeline worker processes, bsread sources owned by the test (camioc's BsreadSender on
real ZMQ sockets, 127.0.0.1, free ports), output read with psi-bsread.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.errors import ConfigError
from tests.support.paced_source import PacedSource
from tests.support.server import free_port
from tests.support.waiting import receive

SIM = {"source": "simulation", "source_type": "simulation", "size_x": 40, "size_y": 30,
       "dtype": "uint16", "frame_rate": 10.0, "no_client_timeout": 0}
def camera_frame(pid: int) -> dict[str, Any]:
    image = np.full((30, 40), pid % 1000, dtype=np.uint16)
    return {"image": image, "timestamp": float(pid), "width": 40, "height": 30,
            "x_axis": np.arange(40, dtype=np.float32), "y_axis": np.arange(30, dtype=np.float32)}


def beam_data(pid: int) -> dict[str, Any] | None:
    """bsread data for even pulse ids only: every odd camera frame has no partner."""
    return {"BEAM:ENERGY": pid * 0.5, "BEAM:OTHER": 1.0} if pid % 2 == 0 else None


@pytest.fixture
async def make_managers(tmp_path: Path):
    made: list[tuple[CameraManager, PipelineManager]] = []

    def make(dispatcher_url: str | None = None) -> tuple[PipelineManager, Path]:
        cams, pipes = tmp_path / "camera_config", tmp_path / "pipeline_config"
        cams.mkdir(exist_ok=True)
        pipes.mkdir(exist_ok=True)
        (cams / "sim.json").write_text(json.dumps({"name": "sim", **SIM}))
        start = random.randrange(52000, 60000, 200)
        cameras = CameraManager(ConfigStore(cams), hostname="127.0.0.1", port_range=(start, start + 100),
                                background_dir=tmp_path / "background_config")
        pipelines = PipelineManager(ConfigStore(pipes), cameras, BackgroundStore(tmp_path / "background_config"),
                                    hostname="127.0.0.1", port_range=(start + 100, start + 200),
                                    scripts_dir=tmp_path / "user_scripts", dispatcher_url=dispatcher_url)
        made.append((cameras, pipelines))
        return pipelines, tmp_path

    yield make
    for cameras, pipelines in made:
        await pipelines.close()
        await cameras.close()


async def wait_statistics(pipelines: PipelineManager, instance_id: str, key: str,
                          condition: Callable[[int], bool], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        statistics = pipelines.instance_info(instance_id)["statistics"]
        if key in statistics and condition(statistics[key]):
            return statistics
        assert time.monotonic() < deadline, f"statistics[{key!r}] never satisfied the condition: {statistics}"
        await asyncio.sleep(0.1)


def values(message: Any) -> dict[str, Any]:
    return {name: channel.value for name, channel in message.data.data.items()}


# ------------------------------------------------------------------------------------------------


async def test_bsread_data_merged_into_processing_by_pulse_id(make_managers) -> None:
    pipelines, tmp_path = make_managers()
    scripts = tmp_path / "user_scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "with_bsdata.py").write_text(
        "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n"
        "    return {'energy_seen': float(bsdata['BEAM:ENERGY']), 'mean': float(image.mean()),\n"
        "            'bs_keys': ','.join(sorted(bsdata))}\n")
    camera = PacedSource(camera_frame)
    beam = PacedSource(beam_data)
    try:
        instance_id, stream, _ = await pipelines.create_instance({
            "camera_name": "sim", "input_stream": camera.address, "input_mode": "PULL",
            "bsread_address": beam.address, "bsread_mode": "PULL", "bsread_channels": ["BEAM:ENERGY"],
            "bsread_image_buf": 50, "bsread_data_buf": 50, "function": "with_bsdata.py"})
        messages = await asyncio.to_thread(receive, stream, 6)
        for message in messages:
            pid, data = message.data.pulse_id, values(message)
            assert pid % 2 == 0, "a frame without bsread data was processed"
            assert data["BEAM:ENERGY"] == pid * 0.5, "merged channel in the output, from the same pulse id"
            assert data["energy_seen"] == pid * 0.5, "bsdata given to the function"
            assert data["mean"] == pid % 1000, "image of the same pulse id"
            assert data["bs_keys"] == "BEAM:ENERGY" and "BEAM:OTHER" not in data  # bsread_channels filter
        statistics = await wait_statistics(pipelines, instance_id, "merge_missing", lambda n: n > 0)
        assert statistics["merge_matched"] > 0
    finally:
        camera.stop()
        beam.stop()


async def test_image_buffer_is_bounded_when_the_bsread_source_is_silent(make_managers) -> None:
    pipelines, _ = make_managers()
    camera = PacedSource(camera_frame)
    try:
        instance_id, _stream, _ = await pipelines.create_instance({
            "camera_name": "sim", "input_stream": camera.address, "input_mode": "PULL",
            "bsread_address": f"tcp://127.0.0.1:{free_port()}", "bsread_image_buf": 2})
        statistics = await wait_statistics(pipelines, instance_id, "merge_missing", lambda n: n >= 10)
        assert statistics["merge_waiting"] <= 2 and statistics["merge_matched"] == 0
        assert statistics["frames"] == 0, "frames without their bsread data are not processed"
    finally:
        camera.stop()


async def test_bsread_channels_need_a_dispatcher(make_managers) -> None:
    pipelines, _ = make_managers()
    config = {"camera_name": "sim", "bsread_channels": ["BEAM:ENERGY"]}
    with pytest.raises(ConfigError, match="needs a dispatcher: start camioc with --dispatcher-url"):
        await pipelines.create_instance(config)
    with pytest.raises(ConfigError, match="needs a dispatcher"):
        await pipelines.save_config("needs_dispatcher", config)
    assert "needs_dispatcher" not in pipelines.pipeline_names() and pipelines.running_ids() == []


async def test_bsread_channels_read_from_the_dispatcher_stream(make_managers) -> None:
    dispatcher = PacedSource(beam_data, mode="PUB")  # a dispatcher is a SUB source by default
    camera = PacedSource(camera_frame)
    try:
        pipelines, _ = make_managers(dispatcher_url=dispatcher.address)
        instance_id, stream, _ = await pipelines.create_instance({
            "camera_name": "sim", "input_stream": camera.address, "input_mode": "PULL",
            "bsread_channels": ["BEAM:ENERGY", "BEAM:OTHER"]})
        for message in await asyncio.to_thread(receive, stream, 3):
            data = values(message)
            assert data["BEAM:ENERGY"] == message.data.pulse_id * 0.5 and data["BEAM:OTHER"] == 1.0
            assert "x_center_of_mass" in data  # the default function ran on the matched frame
        await wait_statistics(pipelines, instance_id, "merge_matched", lambda n: n >= 3)
    finally:
        camera.stop()
        dispatcher.stop()


async def test_stream_pipeline_merges_two_streams(make_managers) -> None:
    pipelines, _ = make_managers()
    first = PacedSource(lambda pid: {"X": float(pid)})
    second = PacedSource(beam_data)
    try:
        instance_id, stream, _ = await pipelines.create_instance({
            "pipeline_type": "stream", "bsread_address": first.address, "bsread_mode": "PULL",
            "bsread_address2": second.address, "bsread_mode2": "PULL",
            "merge_buffer_size": 20, "merge_queue_size": 20})
        for message in await asyncio.to_thread(receive, stream, 5):
            pid, data = message.data.pulse_id, values(message)
            assert data["X"] == float(pid) and data["BEAM:ENERGY"] == pid * 0.5 and data["BEAM:OTHER"] == 1.0
        await wait_statistics(pipelines, instance_id, "merge_missing", lambda n: n > 0)
    finally:
        first.stop()
        second.stop()


def _shuffled_pids() -> Iterator[int]:
    """Increasing pulse ids with every third message repeating an older one."""
    pid = 5000
    while True:
        for _ in range(2):
            pid += 1
            yield pid
        yield pid - 3


async def test_enforce_pid_enforce_timestamp_and_check_timestamp(make_managers) -> None:
    pipelines, _ = make_managers()

    def swissfel_stamp(pid: int) -> tuple[int, int]:
        # the SwissFEL convention pid % 1e6 == ns % 1e6, broken for pulse ids divisible by 7
        return 1_700_000_000, 100_000_000 + (pid % 1_000_000) + (1 if pid % 7 == 0 else 0)

    source = PacedSource(lambda pid: {"pid": pid}, mode="PUB", pids=_shuffled_pids(), timestamp=swissfel_stamp)
    try:
        plain_id, plain, _ = await pipelines.create_instance(
            {"pipeline_type": "stream", "bsread_address": source.address, "bsread_mode": "SUB"})
        pids = [m.data.pulse_id for m in await asyncio.to_thread(receive, plain, 12)]
        assert any(b <= a for a, b in pairwise(pids)), "the source repeats pulse ids"
        checked_id, checked, _ = await pipelines.create_instance(
            {"pipeline_type": "stream", "bsread_address": source.address, "bsread_mode": "SUB",
             "enforce_pid": True, "check_timestamp": True})
        pids = [m.data.pulse_id for m in await asyncio.to_thread(receive, checked, 12)]
        assert all(b > a for a, b in pairwise(pids)), pids
        assert all(pid % 7 != 0 for pid in pids), "a message breaking pid % 1e6 == ns % 1e6 was sent"
        await wait_statistics(pipelines, checked_id, "pid_dropped", lambda n: n > 0)
        await wait_statistics(pipelines, checked_id, "timestamp_invalid", lambda n: n > 0)
        assert "pid_dropped" not in pipelines.instance_info(plain_id)["statistics"]
        stamped_id, stamped, _ = await pipelines.create_instance(
            {"pipeline_type": "stream", "bsread_address": source.address, "bsread_mode": "SUB",
             "enforce_timestamp": True})
        stamps = [(m.data.global_timestamp, m.data.global_timestamp_offset)
                  for m in await asyncio.to_thread(receive, stamped, 12)]
        assert all(b > a for a, b in pairwise(stamps)), stamps
        await wait_statistics(pipelines, stamped_id, "timestamp_dropped", lambda n: n > 0)
    finally:
        source.stop()


async def test_stream_timeout_reconnects_a_source_that_comes_back(make_managers) -> None:
    pipelines, _ = make_managers()
    source = PacedSource(lambda pid: {"X": float(pid)}, mode="PUB", first_pid=100)
    port = source.port
    back = None
    try:
        instance_id, stream, _ = await pipelines.create_instance(
            {"pipeline_type": "stream", "bsread_address": source.address, "bsread_mode": "SUB",
             "stream_timeout": 1.0})
        assert (await asyncio.to_thread(receive, stream))[0].data.pulse_id < 1_000_000
        source.stop()  # the source goes away...
        await wait_statistics(pipelines, instance_id, "stream_reconnects", lambda n: n >= 1)
        back = PacedSource(lambda pid: {"X": float(pid)}, mode="PUB", first_pid=1_000_000, port=port)

        def from_new_source() -> bool:
            return receive(stream)[0].data.pulse_id >= 1_000_000

        deadline = time.monotonic() + 20
        while not await asyncio.to_thread(from_new_source):  # ...and comes back on the same address
            assert time.monotonic() < deadline, "the restarted source was not followed"
        assert instance_id in pipelines.running_ids()
    finally:
        source.stop()
        if back is not None:
            back.stop()
