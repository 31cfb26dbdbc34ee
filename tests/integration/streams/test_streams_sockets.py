"""camioc's bsread sockets on loopback: recorded stream, client counting, PUSH back-pressure."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from camioc.errors import InstanceError
from camioc.streams.bsread import (
    BsreadDecoder,
    BsreadEncoder,
    BsreadReceiver,
    BsreadSender,
    MalformedMessageError,
)
from camioc.streams.camera_stream import CameraStreamPublisher
from tests.integration.streams.stream_helpers import psi_source, receive_until, wait_until
from tests.support.bsread_replay import CAMERA_DUMP, BsreadReplayServer, replay_once


# ---------------------------------------------------------------- recorded real stream
def test_receiver_decodes_recorded_camera_stream_over_push(dump_messages) -> None:
    context = zmq.Context.instance()
    with context.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 200)  # never 0 on a sender (libzmq abort race)
        port = push.bind_to_random_port("tcp://127.0.0.1")
        with BsreadReceiver(f"tcp://127.0.0.1:{port}", mode="PULL", receive_timeout=5.0) as receiver:
            replay_once(push, dump_messages)
            messages = [receiver.receive(), receiver.receive()]
    assert [m.pulse_id for m in messages] == list(CAMERA_DUMP.pulse_ids)
    assert [m.timestamp for m in messages] == list(CAMERA_DUMP.timestamps)
    assert [m.format_changed for m in messages] == [True, False]
    for message, parts in zip(messages, dump_messages, strict=True):
        image = message.data[CAMERA_DUMP.channel]
        assert image.shape == CAMERA_DUMP.shape == (494, 659) and image.dtype == np.uint16
        np.testing.assert_array_equal(image.ravel(), np.frombuffer(parts[2], "<u2"))
        assert not image.flags.writeable
    assert messages[1].timestamp_float == pytest.approx(1508856598.965543311)


def test_receiver_and_psi_source_read_the_looping_replay_over_pub(dump_messages) -> None:
    with BsreadReplayServer(dump_messages, mode="PUB", interval=0.005) as server:
        with BsreadReceiver(server.endpoint, receive_timeout=0.2) as receiver:
            seen = {receive_until(receiver.receive, lambda m: True).pulse_id for _ in range(4)}
        with psi_source(server.port) as source:
            psi = receive_until(source.receive, lambda m: True)
    assert seen == set(CAMERA_DUMP.pulse_ids)
    assert psi.data.data[CAMERA_DUMP.channel].value.shape == CAMERA_DUMP.shape


def test_receiver_drops_malformed_messages_and_keeps_going() -> None:
    context = zmq.Context.instance()
    with context.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 200)  # never 0 on a sender (libzmq abort race)
        port = push.bind_to_random_port("tcp://127.0.0.1")
        with BsreadReceiver(f"tcp://127.0.0.1:{port}", mode="PULL", receive_timeout=5.0) as receiver:
            push.send_multipart([b"garbage"])
            push.send_multipart([b'{"htype": "bsr_d-1.1", "channels": []}', b"x"])
            parts = BsreadEncoder().encode({"a": 1.0}, pulse_id=3, timestamp=1.0)
            push.send_multipart([bytes(memoryview(p)) for p in parts])
            message = receiver.receive()
            assert receiver.receive(timeout=0) is None
    assert message.pulse_id == 3 and message.data == {"a": 1.0}
    assert receiver.malformed == 2


# ---------------------------------------------------------------- client counting
@pytest.mark.parametrize("mode", ["PUB", "PUSH"])
def test_client_count_follows_connects_and_disconnects(mode: str) -> None:
    client_mode = "SUB" if mode == "PUB" else "PULL"
    with BsreadSender(mode=mode) as sender:
        assert sender.client_count() == 0
        wait_until(lambda: sender.seconds_without_clients() > 0)
        first = BsreadReceiver(sender.endpoint, mode=client_mode)
        first.connect()
        assert sender.wait_for_clients(1, timeout=5)
        assert sender.seconds_without_clients() == 0.0
        with psi_source(sender.port, client_mode):
            assert sender.wait_for_clients(2, timeout=5)
        wait_until(lambda: sender.client_count() == 1)
        first.close()
        wait_until(lambda: sender.client_count() == 0)
        idle_since = sender.seconds_without_clients()
        wait_until(lambda: sender.seconds_without_clients() > idle_since)
    assert sender.client_count() == 0


def test_camera_publisher_counts_subscribers() -> None:
    with CameraStreamPublisher(port=None) as pub:
        with BsreadReceiver(pub.endpoint):
            assert pub.wait_for_clients(1, timeout=5)
            assert pub.client_count() == 1
        wait_until(lambda: pub.client_count() == 0)
        assert pub.seconds_without_clients() >= 0.0


def test_connecting_sender_to_binding_receiver(tmp_path) -> None:
    with BsreadReceiver("tcp://127.0.0.1:*", mode="PULL", conn_type="bind", receive_timeout=5.0) as receiver:
        assert receiver.address.startswith("tcp://127.0.0.1:") and not receiver.address.endswith("*")
        with BsreadSender(mode="PUSH", conn_type="connect", address=receiver.address,
                          block=True, send_timeout=5.0) as sender:
            assert sender.wait_for_clients(1, timeout=5)
            assert sender.send({"v": np.arange(3)}, pulse_id=1, timestamp=2.0)
            message = receiver.receive()
    np.testing.assert_array_equal(message.data["v"], [0, 1, 2])


def test_ipc_endpoint(tmp_path) -> None:
    address = f"ipc://{tmp_path}/stream.ipc"
    with BsreadSender(mode="PUSH", address=address, block=True, send_timeout=5.0) as sender:
        assert sender.endpoint == address and sender.port == 0
        with BsreadReceiver(address, mode="PULL", receive_timeout=5.0) as receiver:
            assert sender.wait_for_clients(1, timeout=5)
            sender.send({"s": "over ipc"}, pulse_id=1, timestamp=0.0)
            assert receiver.receive().data == {"s": "over ipc"}


def test_bind_conflict_is_a_clear_error() -> None:
    with BsreadSender(mode="PUB") as first:
        second = BsreadSender(mode="PUB", port=first.port)
        with pytest.raises(InstanceError, match="Cannot bind"):
            second.open()
    with pytest.raises(InstanceError):
        BsreadSender().send({"a": 1}, pulse_id=1, timestamp=0.0)


# ---------------------------------------------------------------- PUSH back-pressure
def test_push_with_slow_consumer_never_emits_malformed_messages() -> None:
    """psi-bsread's Sender(PUSH, block=False) truncates messages at a full queue (bsread.md §5.2 1b)."""
    payload = np.arange(40_000, dtype=np.float32)  # 160 kB: the zero-copy path
    decoder = BsreadDecoder()
    received: list[int] = []
    context = zmq.Context.instance()
    with BsreadSender(mode="PUSH", queue_size=2, block=False) as sender, context.socket(zmq.PULL) as pull:
        pull.setsockopt(zmq.RCVHWM, 2)
        pull.setsockopt(zmq.LINGER, 0)
        pull.connect(sender.endpoint)
        assert sender.wait_for_clients(1, timeout=5)
        results = []
        for pulse_id in range(400):
            results.append(sender.send({"a": pulse_id, "array": payload, "s": "x" * (pulse_id % 7)},
                                       pulse_id=pulse_id, timestamp=float(pulse_id)))
            # A consumer much slower than the producer (the first sends may precede the handshake).
            if pulse_id % 25 == 0 and sum(results) > len(received):
                assert pull.poll(5000), "a message reported as sent did not arrive"
                received.append(decoder.decode(pull.recv_multipart(copy=False)).pulse_id)
        sent = sum(results)
        assert 0 < sent < 400 and sender.messages_dropped == 400 - sent
        deadline = time.monotonic() + 10
        while len(received) < sent and time.monotonic() < deadline:
            if pull.poll(100):
                parts = pull.recv_multipart(copy=False)
                try:
                    message = decoder.decode(parts)
                except MalformedMessageError as exc:  # pragma: no cover - the failure we guard against
                    pytest.fail(f"malformed message on the wire: {exc}")
                np.testing.assert_array_equal(message.data["array"], payload)
                received.append(message.pulse_id)
        assert pull.poll(50) == 0  # nothing beyond what send() reported as sent
    assert received == sorted(received) and len(received) == sent
    assert received == [p for p, ok in enumerate(results) if ok]


# ---------------------------------------------------------------- buffer_size
@pytest.mark.parametrize("mode", ["PUB", "PUSH"])
def test_buffered_sender_delivers_the_messages_made_before_the_first_client(mode: str) -> None:
    """cam_server's pipeline ``buffer_size``: the last N messages sent before the first client
    connected reach it (read with psi-bsread, the reference client), then the live ones."""
    image = np.arange(300 * 400, dtype=np.uint16).reshape(300, 400)  # 240 kB: the zero-copy path
    with BsreadSender(mode=mode, buffer_size=5, queue_size=10, block=mode == "PUSH") as sender:
        for pulse_id in range(12):  # no client yet: kept, not sent, not dropped
            assert sender.send({"image": image, "n": pulse_id}, pulse_id=pulse_id, timestamp=float(pulse_id))
        assert sender.buffered == 5 and sender.messages_sent == 0 and sender.messages_dropped == 0
        with psi_source(sender.port, "SUB" if mode == "PUB" else "PULL", timeout_ms=200) as source:
            wait_until(lambda: sender.client_count() > 0)
            next_pid = 12

            def send_next() -> None:
                nonlocal next_pid
                sender.send({"image": image, "n": next_pid}, pulse_id=next_pid, timestamp=float(next_pid))
                next_pid += 1

            first = receive_until(source.receive, lambda m: True, before=send_next)
            received = [first]
            while len(received) < 8:
                message = receive_until(source.receive, lambda m: True, before=send_next)
                received.append(message)
    pulse_ids = [m.data.pulse_id for m in received]
    assert pulse_ids == list(range(pulse_ids[0], pulse_ids[0] + len(pulse_ids)))  # nothing lost
    if mode == "PUSH":  # the connected peer is known before the next send: exactly the last 5
        assert pulse_ids[:6] == [7, 8, 9, 10, 11, 12]
    else:  # the subscription may arrive a send later: still the 5 newest made before it
        assert 7 <= pulse_ids[0] <= 11
    assert [int(m.data.data["n"].value) for m in received] == pulse_ids
    np.testing.assert_array_equal(received[0].data.data["image"].value, image)
    assert [m.data.global_timestamp for m in received] == pulse_ids
    assert sender.buffered == 0


def test_buffer_size_must_be_a_non_negative_integer() -> None:
    with pytest.raises(ValueError, match="buffer_size must be an integer >= 0"):
        BsreadSender(buffer_size=-1)
