"""Conformance against psi-bsread (the reference implementation) over real loopback sockets.

Both directions: psi-bsread's ``Source`` reads what camioc's ``BsreadSender`` and
``CameraStreamPublisher`` send, and camioc's ``BsreadReceiver`` reads what psi-bsread's
``Sender`` sends.
"""

from __future__ import annotations

import bsread
import numpy as np
import pytest

from camioc.streams.bsread import BsreadReceiver, BsreadSender
from camioc.streams.camera_stream import CAMERA_CHANNELS, CameraStreamPublisher
from tests.integration.streams.stream_helpers import psi_source, receive_until
from tests.support.server import free_port

NUMERIC = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
TS = (1_700_000_000, 123_456_789)


def every_type_payload() -> dict:
    rng = np.random.default_rng(7)
    data: dict = {}
    for t in NUMERIC:
        data[f"s_{t}"] = getattr(np, t)(5)
        data[f"a_{t}"] = np.arange(5).astype(t)
    data.update({
        "py_int": -3, "py_float": 2.25, "py_bool": True, "np_bool": np.bool_(False),
        "bool_array": np.array([True, False, True]), "string": "camioc ✓", "none": None,
        "image": rng.integers(0, 4096, (48, 64), dtype=np.uint16),  # height 48, width 64
        "big_endian": np.arange(4, dtype=">f8"),
    })
    return data


def assert_psi_values(values: dict, sent: dict) -> None:
    assert list(values) == list(sent)
    for name, expected in sent.items():
        got = values[name].value
        if expected is None:
            assert got is None, name
        elif isinstance(expected, str):
            assert got == expected
        elif isinstance(expected, np.ndarray):
            assert got.shape == expected.shape and got.dtype == expected.dtype, name
            np.testing.assert_array_equal(got, expected)
        else:
            assert got == expected, name
            if isinstance(expected, np.generic):
                assert got.dtype == expected.dtype, name


@pytest.mark.parametrize("mode", ["PUB", "PUSH"])
def test_psi_source_reads_every_type(mode: str) -> None:
    data = every_type_payload()
    with BsreadSender(mode=mode, block=True, send_timeout=5.0) as sender, \
            psi_source(sender.port, "SUB" if mode == "PUB" else "PULL") as source:
        message = receive_until(source.receive, lambda m: m.data.pulse_id == 42,
                                before=lambda: sender.send(data, pulse_id=42, timestamp=TS))
    assert (message.data.global_timestamp, message.data.global_timestamp_offset) == TS
    assert message.data.format_changed
    assert_psi_values(message.data.data, data)
    assert message.data.data["image"].value.shape == (48, 64)  # [width, height] on the wire
    assert message.data.data["py_int"].value.dtype == np.int64
    assert message.data.data["py_float"].value.dtype == np.float64
    channel = message.data.data["s_uint16"]
    assert (channel.timestamp, channel.timestamp_offset) == TS  # per-channel = global timestamp


def test_psi_source_sees_header_changes_and_bitshuffle() -> None:
    image_a = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    image_b = np.arange(30 * 20, dtype=np.int32).reshape(20, 30)
    with BsreadSender(mode="PUB", data_compression="bitshuffle_lz4",
                      data_header_compression="bitshuffle_lz4") as sender, psi_source(sender.port) as source:
        receive_until(source.receive, lambda m: True,
                      before=lambda: sender.send({"probe": 0}, pulse_id=0, timestamp=TS))
        sends = [({"image": image_a, "x": 1.0}, 1), ({"image": image_a, "x": 2.0}, 2),
                 ({"image": image_b, "x": 3.0}, 3), ({"image": image_b, "x": 4.0, "s": "new"}, 4)]
        for payload, pulse_id in sends:
            assert sender.send(payload, pulse_id=pulse_id, timestamp=TS)
        received = []
        while len(received) < 4:
            message = receive_until(source.receive, lambda m: m.data.pulse_id > 0)
            received.append(message.data)
    assert [m.pulse_id for m in received] == [1, 2, 3, 4]
    assert [m.format_changed for m in received] == [True, False, True, True]
    np.testing.assert_array_equal(received[0].data["image"].value, image_a)
    np.testing.assert_array_equal(received[2].data["image"].value, image_b)
    assert received[3].data["s"].value == "new" and received[3].data["x"].value == 4.0
    assert sender.header_changes == 4  # probe, image_a, image_b, +s


def test_camera_stream_as_psi_source_sees_it() -> None:
    height, width = 40, 60
    image = np.random.default_rng(3).integers(0, 1000, (height, width), dtype=np.uint16)
    x_axis, y_axis = np.linspace(0, width - 1, width), np.arange(height, dtype=np.float32)
    with CameraStreamPublisher(port=None) as pub, psi_source(pub.port) as source:
        assert pub.endpoint.startswith("tcp://127.0.0.1:")
        message = receive_until(source.receive, lambda m: True, before=lambda: pub.publish(
            image, x_axis, y_axis, pulse_id=10, timestamp=1_700_000_000.25))
        for pulse_id in range(11, 14):
            pub.publish(image, x_axis, y_axis, pulse_id=pulse_id, timestamp=1_700_000_000.5)
        assert pub.header_changes == 1
        pub.publish(image[:20], x_axis, y_axis[:20], pulse_id=20, timestamp=1_700_000_001.0,
                    extra={"intensity": 12.5})
        changed = receive_until(source.receive, lambda m: m.data.pulse_id == 20)
        assert pub.header_changes == 2
    values = message.data.data
    assert tuple(values) == CAMERA_CHANNELS
    assert values["width"].value == width and values["width"].value.dtype == np.int64
    assert values["height"].value == height and values["height"].value.dtype == np.int64
    assert values["timestamp"].value == 1_700_000_000.25 and values["timestamp"].value.dtype == np.float64
    np.testing.assert_array_equal(values["image"].value, image)
    assert values["x_axis"].value.dtype == np.float32 and values["x_axis"].value.shape == (width,)
    assert values["y_axis"].value.dtype == np.float32 and values["y_axis"].value.shape == (height,)
    np.testing.assert_array_equal(values["x_axis"].value, x_axis.astype(np.float32))
    header_stamp = (message.data.global_timestamp, message.data.global_timestamp_offset)
    assert header_stamp == (1_700_000_000, 250_000_000)
    assert changed.data.format_changed
    assert list(changed.data.data) == [*CAMERA_CHANNELS, "intensity"]
    assert changed.data.data["image"].value.shape == (20, width)
    assert changed.data.data["height"].value == 20


def test_camera_stream_bitshuffle_image_push() -> None:
    image = np.random.default_rng(5).poisson(100, (64, 96)).astype(np.uint16)
    axes = np.arange(96, dtype=np.float32), np.arange(64, dtype=np.float32)
    with CameraStreamPublisher(port=None, mode="PUSH", image_compression="bitshuffle_lz4",
                               send_timeout=5.0) as pub, psi_source(pub.port, "PULL") as source:
        assert pub.publish(image, *axes, pulse_id=1, timestamp=1.0)
        message = receive_until(source.receive, lambda m: True)
    assert [c.compression for c in pub.channels] == [None, None, None, "bitshuffle_lz4", None, None]
    np.testing.assert_array_equal(message.data.data["image"].value, image)


@pytest.mark.parametrize("mode", ["PUB", "PUSH"])
@pytest.mark.parametrize("compression", [None, "bitshuffle_lz4"])
def test_receiver_reads_psi_sender(mode: str, compression: str | None) -> None:
    port = free_port()
    data = every_type_payload()
    data.pop("none")  # psi-bsread declares None as float64 and cannot bitshuffle it
    data.pop("big_endian")  # psi-bsread bitshuffle packs the bytes but declares them little
    sender = bsread.Sender(port=port, address="tcp://127.0.0.1",
                           mode=bsread.PUB if mode == "PUB" else bsread.PUSH, block=True,
                           data_compression=compression, data_header_compression=compression)
    sender.open()
    try:
        with BsreadReceiver(f"tcp://127.0.0.1:{port}", mode="SUB" if mode == "PUB" else "PULL",
                            receive_timeout=0.1) as receiver:
            message = receive_until(receiver.receive, lambda m: m.pulse_id == 5,
                                    before=lambda: sender.send(data=data, pulse_id=5, timestamp=TS))
            changed = receive_until(receiver.receive, lambda m: m.pulse_id == 6,
                                    before=lambda: sender.send(data={"other": 1.5}, pulse_id=6, timestamp=TS))
    finally:
        sender.close()
    assert message.timestamp == TS and message.format_changed
    assert list(message.data) == list(data)
    for name, expected in data.items():
        got = message.data[name]
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == expected.dtype and not got.flags.writeable
        else:
            assert got == expected, name
    assert message.data["image"].shape == (48, 64)
    assert changed.format_changed and changed.data == {"other": 1.5}
    assert receiver.malformed == 0
