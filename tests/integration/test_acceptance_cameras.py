"""Issue 2's 'done when', checked against a real ``camioc`` process as a user meets it.

Each test talks to the server the way a facility's tools do: ``psi-camserver-client`` over HTTP,
``psi-bsread`` on the stream, pyepics (libca) on Channel Access.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import zmq
from cam_server_client import CamClient

from tests.support.server import REPO_ROOT, stop_camioc
from tests.support.waiting import receive, wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host.split("//")[1], int(port)




def test_camclient_stream_has_six_channels(camioc_server) -> None:
    client = CamClient(camioc_server.camera_url)
    assert "simulation" in client.get_cameras()
    address = client.get_instance_stream("simulation")
    message = receive(address, 2)[-1]
    data = message.data.data
    assert set(data) == {"image", "timestamp", "width", "height", "x_axis", "y_axis"}
    width, height = int(data["width"].value), int(data["height"].value)
    assert data["image"].value.shape == (height, width)
    assert client.get_camera_geometry("simulation") == [width, height]


def test_caget_array_size_matches_stream(camioc_server) -> None:
    p = camioc_server.prefix
    address = CamClient(camioc_server.camera_url).get_instance_stream("simulation")
    width = int(receive(address)[0].data.data["width"].value)
    # a fresh read, as the caget command does (pyepics would otherwise answer from its monitor)
    value = wait_until(lambda: epics.caget(f"{p}simulation:cam1:ArraySize0_RBV", timeout=2, use_monitor=False) == width,
                       what="ArraySize0_RBV to match the stream width")
    assert value


def test_caput_reverse_x_flips_streamed_image(camioc_server) -> None:
    p = camioc_server.prefix
    client = CamClient(camioc_server.camera_url)
    address = client.get_instance_stream("simulation2")  # static beam: every frame identical
    before = receive(address)[0].data.data["image"].value.copy()
    assert epics.caput(f"{p}simulation2:cam1:ReverseX", 1, wait=True, timeout=5) == 1

    def flipped():
        image = receive(address)[0].data.data["image"].value
        return np.array_equal(image, np.fliplr(before))

    wait_until(flipped, what="the streamed image to flip")
    assert client.get_camera_config("simulation2")["mirror_x"] is True
    assert wait_until(lambda: epics.caget(f"{p}simulation2:cam1:ReverseX_RBV", timeout=2, use_monitor=False) == 1, what="RBV")


def test_areadetector_viewer_reads_image(camioc_server) -> None:
    """What ImageJ's EPICS_AD_Viewer does: sizes + ArrayData, reshaped, equals the streamed image."""
    p = camioc_server.prefix + "simulation2:image1:"
    address = CamClient(camioc_server.camera_url).get_instance_stream("simulation2")
    streamed = receive(address)[0].data.data["image"].value
    wait_until(lambda: (epics.caget(p + "ArrayCounter_RBV", timeout=2, use_monitor=False) or 0) > 0, what="a published image")
    width = epics.caget(p + "ArraySize0_RBV", timeout=2)
    height = epics.caget(p + "ArraySize1_RBV", timeout=2)
    data = epics.caget(p + "ArrayData", timeout=5, count=width * height)
    assert (width, height) == (streamed.shape[1], streamed.shape[0])
    image = np.asarray(data).astype(np.int16).view(np.uint16).reshape(height, width)  # FTVL=SHORT reinterpretation
    assert np.array_equal(image, streamed)


def _start_test_ioc(prefix: str, convention: str, width: int, height: int) -> subprocess.Popen:
    env = dict(os.environ)
    port = env["CAMIOC_TEST_CA_PORT2"]
    env["EPICS_CA_SERVER_PORT"] = env["EPICS_CAS_SERVER_PORT"] = port
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "support" / "epics_camera_ioc.py"), "--prefix", prefix,
         "--convention", convention, "--width", str(width), "--height", str(height), "--rate", "10"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_epics_source_reads_areadetector_ioc(camioc_server, pv_prefix) -> None:
    ioc = _start_test_ioc(pv_prefix + "AD", "areadetector", 64, 48)
    try:
        wait_until(lambda: epics.caget(f"{pv_prefix}AD:cam1:ArraySize0_RBV", timeout=1, use_monitor=False) == 64, what="test IOC")
        client = CamClient(camioc_server.camera_url)
        client.set_camera_config("adcam", {"source": pv_prefix + "AD", "source_type": "epics",
                                           "epics_convention": "areadetector", "dtype": "uint16"})
        assert client.is_camera_online("adcam")
        address = client.get_instance_stream("adcam")
        messages = receive(address, 3)
        image = messages[-1].data.data["image"].value
        assert image.shape == (48, 64)
        pulse_ids = [m.data.pulse_id for m in messages]
        assert pulse_ids == sorted(pulse_ids) and pulse_ids[0] > 0  # ArrayCounter_RBV is the pulse id
    finally:
        ioc.kill()
        ioc.wait(5)


def test_recorded_stream_replays_through_bsread_source(camioc_server, camserver_fixtures: Path) -> None:
    parts_by_message: dict[str, list[bytes]] = {}
    for path in sorted(glob.glob(str(camserver_fixtures / "test_camera_dump" / "*.raw"))):
        message, _part = Path(path).stem.split("_")
        parts_by_message.setdefault(message, []).append(Path(path).read_bytes())
    context = zmq.Context.instance()
    push = context.socket(zmq.PUSH)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def replay() -> None:
        while not stop.is_set():
            for parts in parts_by_message.values():
                try:
                    push.send_multipart(parts, flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass
                time.sleep(0.05)

    thread = threading.Thread(target=replay, daemon=True)
    thread.start()
    try:
        client = CamClient(camioc_server.camera_url)
        client.set_camera_config("SLG-LCAM-C102", {"source": f"tcp://127.0.0.1:{port}", "source_type": "bsread"})
        address = client.get_instance_stream("SLG-LCAM-C102")
        message = receive(address)[0]
        image = message.data.data["image"].value
        assert image.shape == (494, 659) and image.dtype == np.uint16
        assert message.data.pulse_id in (3682521968, 3682521969)
        assert message.data.global_timestamp == 1508856598
        expected = np.frombuffer(parts_by_message["000000"][2], dtype="<u2").reshape(494, 659)
        expected2 = np.frombuffer(parts_by_message["000001"][2], dtype="<u2").reshape(494, 659)
        assert np.array_equal(image, expected) or np.array_equal(image, expected2)
    finally:
        stop.set()
        thread.join(5)
        push.close(linger=200)  # LINGER 0 mid-message can abort libzmq 4.3.5


def test_sigint_stops_everything(camioc_server) -> None:
    client = CamClient(camioc_server.camera_url)
    address = client.get_instance_stream("simulation")
    _host, stream_port = _host_port(address)
    parent = psutil.Process(camioc_server.proc.pid)
    workers = wait_until(lambda: [c for c in parent.children(recursive=True) if c.is_running()],
                         what="a worker process")
    assert stop_camioc(camioc_server) == 0
    for worker in workers:
        try:
            worker.wait(10)
        except psutil.TimeoutExpired:
            pytest.fail(f"worker {worker.pid} outlived the server")
    for port in (stream_port, int(camioc_server.camera_url.rsplit(":", 1)[1])):
        with socket.socket() as probe:
            # SO_REUSEADDR: a closed connection's TIME-WAIT is fine, a listener still there is not
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
            probe.listen()
