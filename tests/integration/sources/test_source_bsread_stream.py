"""bsread camera source reading cam_server's recorded camera stream, replayed over real ZeroMQ."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from camioc.config.camera import CameraConfig
from camioc.errors import CameraOfflineError, ConfigError
from camioc.sources import create_source
from camioc.sources.bsread_source import BsreadSource
from camioc.streams.bsread import BsreadSender
from tests.support.bsread_replay import CAMERA_DUMP, BsreadReplayServer, load_dump
from tests.support.server import free_port

CAMERA = CAMERA_DUMP.channel.split(":")[0]  # SLG-LCAM-C102: its image channel is <name>:FPICTURE


@pytest.fixture(scope="module")
def dump(camserver_fixtures):
    return load_dump(camserver_fixtures / "test_camera_dump")


def bsread_source(address: str, name: str = CAMERA, **keys) -> BsreadSource:
    cfg = CameraConfig.from_dict({"name": name, "source": address, "source_type": "bsread", **keys})
    source = create_source(cfg)
    assert isinstance(source, BsreadSource)
    return source


def expected_timestamps() -> set[float]:
    return {sec + ns * 1e-9 for sec, ns in CAMERA_DUMP.timestamps}


@pytest.mark.parametrize(("server_mode", "keys"), [("PUSH", {}), ("PUSH", {"mode": "PULL"}), ("PUB", {"mode": "SUB"})])
def test_reads_recorded_camera_stream(dump, server_mode, keys):
    with BsreadReplayServer(dump, mode=server_mode, interval=0.01) as server:
        with bsread_source(server.endpoint, **keys) as source:
            source.connect(timeout=5.0)
            assert source.channel == CAMERA_DUMP.channel
            assert source.geometry() == (CAMERA_DUMP.shape[1], CAMERA_DUMP.shape[0])  # 659 x 494
            frames = [source.read(2.0) for _ in range(6)]
    assert all(f is not None for f in frames)
    for frame in frames:
        assert frame.image.shape == CAMERA_DUMP.shape
        assert frame.image.dtype == np.dtype(CAMERA_DUMP.dtype)
        assert frame.pulse_id in CAMERA_DUMP.pulse_ids
        assert frame.timestamp == pytest.approx(
            CAMERA_DUMP.timestamps[CAMERA_DUMP.pulse_ids.index(frame.pulse_id)][0]
            + CAMERA_DUMP.timestamps[CAMERA_DUMP.pulse_ids.index(frame.pulse_id)][1] * 1e-9
        )
        assert frame.extra == {}  # the recorded stream has only the image channel
        assert int(frame.image.max()) > int(frame.image.min())  # a real camera picture
    # both recorded frames, in stream order, and their pixels match the raw value part
    by_id = {f.pulse_id: f.image for f in frames}
    assert set(by_id) == set(CAMERA_DUMP.pulse_ids)
    for index, pulse_id in enumerate(CAMERA_DUMP.pulse_ids):
        raw = np.frombuffer(dump[index][2], dtype="<u2").reshape(CAMERA_DUMP.shape)
        np.testing.assert_array_equal(by_id[pulse_id], raw)


def test_explicit_channel_and_missing_channel(dump):
    with BsreadReplayServer(dump, mode="PUSH") as server:
        with bsread_source(server.endpoint, name="other", channel=CAMERA_DUMP.channel) as source:
            source.connect(timeout=5.0)
            assert source.read(2.0).image.shape == CAMERA_DUMP.shape
        with bsread_source(server.endpoint, name="other") as source:
            expected = r"other:FPICTURE or image not in bsread stream.*SLG-LCAM-C102:FPICTURE"
            with pytest.raises(ConfigError, match=expected):
                source.connect(timeout=5.0)


def test_image_channel_fallback_and_extra_channels():
    """A stream without <name>:FPICTURE: the source takes channel 'image'; others go to extra."""
    image = np.arange(12, dtype=np.float32).reshape(3, 4)

    def send_three(sender: BsreadSender) -> None:  # PUSH blocks until the source connects
        for pulse_id in range(100, 103):
            sender.send({"image": image + pulse_id, "intensity": 1.5, "status": "ok"}, pulse_id=pulse_id,
                        timestamp=(1700000000, pulse_id))

    with BsreadSender(mode="PUSH", queue_size=10, block=True, send_timeout=10.0) as sender:
        thread = threading.Thread(target=send_three, args=(sender,), daemon=True)
        thread.start()
        with bsread_source(sender.endpoint, name="cam") as source:
            source.connect(timeout=5.0)
            frames = [source.read(2.0) for _ in range(3)]
        thread.join(5)
    assert source.channel == "image"
    assert [f.pulse_id for f in frames] == [100, 101, 102]
    assert frames[0].timestamp == pytest.approx(1700000000 + 100e-9)
    np.testing.assert_array_equal(frames[2].image, image + 102)
    assert frames[0].extra == {"intensity": 1.5, "status": "ok"}


def test_nothing_sending_is_offline():
    address = f"tcp://127.0.0.1:{free_port()}"
    with bsread_source(address) as source:
        t0 = time.monotonic()
        with pytest.raises(CameraOfflineError) as info:
            source.connect(timeout=0.3)
        assert time.monotonic() - t0 < 1.5
    assert str(info.value) == f"Camera with prefix {address} is offline"


def test_stream_address_from_bsreadconfig_pv(dump, camera_ioc):
    """cam_server's bsread cameras: 'source' is a PV prefix; <source>:BSREADCONFIG holds the address."""
    with BsreadReplayServer(dump, mode="PUSH") as server:
        prefix = camera_ioc("camserver", "--bsread-address", server.endpoint, rate=1)
        with bsread_source(prefix) as source:
            source.connect(timeout=5.0)
            assert source.address == server.endpoint
            frame = source.read(2.0)
    assert frame.pulse_id in CAMERA_DUMP.pulse_ids and frame.image.shape == CAMERA_DUMP.shape


@pytest.mark.parametrize(("sender_mode", "keys"), [("PUSH", {}), ("PUB", {"mode": "SUB"})])
def test_parallel_connections_deliver_every_frame_in_pulse_id_order(sender_mode, keys):
    """cam_server's ``connections``: N receivers on one stream, re-ordered by pulse id.

    PUSH load-balances the messages over the three PULL connections, so they arrive interleaved;
    SUB connections each get every message (duplicates, dropped by the re-ordering). Either way
    the camera delivers each pulse id once, in increasing order.
    """
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    pulse_ids = list(range(500, 560))
    connected = threading.Event()

    def send_all(sender: BsreadSender) -> None:
        warm_up = 1
        while not connected.is_set():  # until every connection is up (PUB drops for late joiners)
            sender.send({"image": image}, pulse_id=warm_up, timestamp=(1700000000, warm_up))
            warm_up += 1
            connected.wait(0.01)
        for pulse_id in pulse_ids:
            sender.send({"image": image + (pulse_id % 7)}, pulse_id=pulse_id, timestamp=(1700000000, pulse_id))
            time.sleep(0.002)  # paced like a camera (pacing, not waiting for a condition)

    with BsreadSender(mode=sender_mode, queue_size=100, block=True, send_timeout=10.0) as sender:
        thread = threading.Thread(target=send_all, args=(sender,), daemon=True)
        thread.start()
        with bsread_source(sender.endpoint, name="cam", connections=3, buffer_size=6, **keys) as source:
            source.connect(timeout=5.0)
            deadline = time.monotonic() + 5.0
            while sender.client_count() < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            connected.set()
            frames = []
            deadline = time.monotonic() + 20.0
            while len(frames) < len(pulse_ids) and time.monotonic() < deadline:
                frame = source.read(0.5)
                if frame is not None and frame.pulse_id >= pulse_ids[0]:
                    frames.append(frame)
        thread.join(10)
    received = [f.pulse_id for f in frames]
    assert received == pulse_ids, f"received {received}"
    np.testing.assert_array_equal(frames[-1].image, image + (pulse_ids[-1] % 7))
    if sender_mode == "PUB":
        assert source.late_messages >= 2 * len(pulse_ids)  # every frame came in three times
