"""cam_server camera options honoured by the camera worker, or refused: real streams throughout.

``protocol: ipc`` (an ``ipc://`` stream address), ``queue_size``, ``image_compression`` /
``scalar_compression`` / ``data_header_compression`` are honoured by the camera's bsread stream
(read with psi-bsread and, for the wire-level header, a raw ZeroMQ socket); options camioc does not
implement (``forwarder_port``, ``enforce_pid``, ...) are refused with an error naming them.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib  # noqa: F401  (psi-bsread's decompression needs bitshuffle; imported by bsread)
from pathlib import Path

import bsread
import numpy as np
import pytest
import zmq

from camioc.config.camera import UNSUPPORTED_KEYS, CameraConfig
from camioc.config.store import ConfigStore
from camioc.core.camera_manager import CameraManager
from camioc.errors import ConfigError

SIM = {
    "source": "simulation",
    "source_type": "simulation",
    "size_x": 64,
    "size_y": 48,
    "dtype": "uint16",
    "frame_rate": 50.0,
    "no_client_timeout": 0,
}


@pytest.fixture
async def manager(tmp_path: Path):
    folder = tmp_path / "camera_config"
    folder.mkdir()
    start = random.randrange(52000, 56000, 100)
    mgr = CameraManager(ConfigStore(folder), hostname="127.0.0.1", port_range=(start, start + 100),
                        background_dir=tmp_path / "background_config")
    try:
        yield mgr
    finally:
        await mgr.close()


def _receive_psi(address: str, count: int) -> list:
    source = bsread.Source(host="127.0.0.1", port=1, mode=bsread.SUB, receive_timeout=500)
    source.address = address  # psi-bsread builds tcp:// addresses; an ipc:// stream is given as is
    messages: list = []
    with source:
        for _ in range(200):
            message = source.receive()
            if message is not None:
                messages.append(message)
                if len(messages) == count:
                    break
    assert len(messages) == count, f"only {len(messages)} messages from {address}"
    return messages


def _data_header(address: str) -> dict:
    """The (uncompressed or decompressed) bsread data header of one message, from the wire."""
    context = zmq.Context.instance()
    with context.socket(zmq.SUB) as sock:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(address)
        parts = sock.recv_multipart()
    main = json.loads(parts[0])
    raw = parts[1]
    if main.get("dh_compression") == "bitshuffle_lz4":
        import bitshuffle

        length = int(np.frombuffer(raw[:8], dtype=">u8")[0])
        raw = bitshuffle.decompress_lz4(np.frombuffer(raw[12:], np.uint8), (length,), np.dtype(np.uint8)).tobytes()
    return {"main": main, "data": json.loads(raw)}


async def test_ipc_stream_with_compressed_image(manager: CameraManager) -> None:
    await manager.set_config("ipc_cam", {**SIM, "protocol": "ipc", "queue_size": 5,
                                          "image_compression": True, "data_header_compression": "bitshuffle_lz4"})
    address = await manager.get_stream("ipc_cam")
    assert address.startswith("ipc://") and address.endswith(".ipc")
    header = await asyncio.to_thread(_data_header, address)
    assert header["main"]["dh_compression"] == "bitshuffle_lz4"
    channels = {c["name"]: c for c in header["data"]["channels"]}
    assert channels["image"].get("compression") == "bitshuffle_lz4"
    assert channels["width"].get("compression", "none") in ("none", None)
    messages = await asyncio.to_thread(_receive_psi, address, 2)
    image = messages[-1].data.data["image"].value
    assert image.shape == (48, 64) and image.dtype == np.uint16 and int(image.max()) > 0


async def test_scalar_compression_applies_to_the_other_channels(manager: CameraManager) -> None:
    await manager.set_config("scalar_cam", {**SIM, "scalar_compression": "bitshuffle_lz4"})
    address = await manager.get_stream("scalar_cam")
    header = await asyncio.to_thread(_data_header, address)
    channels = {c["name"]: c for c in header["data"]["channels"]}
    assert channels["x_axis"].get("compression") == "bitshuffle_lz4"
    assert channels["image"].get("compression", "none") in ("none", None)
    messages = await asyncio.to_thread(_receive_psi, address, 1)
    x_axis = messages[0].data.data["x_axis"].value
    np.testing.assert_array_equal(x_axis, np.arange(64, dtype=np.float32))


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_KEYS))
def test_unsupported_camera_options_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        CameraConfig.from_dict({**SIM, key: 9000 if key == "forwarder_port" else True})
    assert f"'{key}'" in str(error.value) and "does not support" in str(error.value)
    CameraConfig.from_dict({**SIM, key: None})  # null (cam_server's "not set") is accepted
    CameraConfig.from_dict({**SIM, f"_{key}": 1})  # a commented-out option is kept as is


async def test_refused_option_changes_nothing(manager: CameraManager) -> None:
    await manager.set_config("kept", SIM)
    with pytest.raises(ConfigError, match="forwarder_port"):
        await manager.set_config("kept", {**SIM, "forwarder_port": 9999})
    assert "forwarder_port" not in manager.get_config("kept")
