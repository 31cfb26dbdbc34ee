"""The IOC inside a whole ``camioc`` process (``python -m camioc``), against real camera workers.

One server for the module (starting one costs seconds). The clients are the ones a facility uses:
pyepics and the C tools on CA, psi-camserver-client on REST, psi-bsread on the stream. Tests that
change a camera put it back; the destructive ones work on cameras they create.
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import bsread
import numpy as np
import pytest
from cam_server_client import CamClient, PipelineClient
from ioc_support import CaTools, put_failed

from camioc import __version__
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, PIPELINE_ARRAY_PVS, PIPELINE_PVS, SERVICE_PVS
from tests.support.server import TEST_CONFIGS, start_camioc, stop_camioc
from tests.support.waiting import wait_until

SIM = "simulation2"  # 640 x 480 uint16, static beam: every frame identical


@pytest.fixture(scope="module")
def server(tmp_path_factory, ca_repeater, beacon_sink):
    base = tmp_path_factory.mktemp("camioc") / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    handle = start_camioc(base, base.parent / "camioc.log")
    try:
        yield handle
    finally:
        stop_camioc(handle)


@pytest.fixture(scope="module")
def client(server) -> CamClient:
    return CamClient(server.camera_url)


@pytest.fixture(scope="module")
def tools(ca_repeater) -> CaTools:
    return CaTools()




def get(tools: CaTools, pv: str, *options: str) -> str:
    result = tools.run_sync("caget", "-w", "2", "-t", *options, pv)
    assert result.returncode == 0 and "not found" not in result.output, result.output
    text = result.stdout.strip()
    return text.encode("latin-1").decode("unicode_escape") if "-S" in options else text


def poll_get(tools: CaTools, pv: str, *options: str) -> str | None:
    """:func:`get` for polling: None while the read fails."""
    try:
        return get(tools, pv, *options)
    except AssertionError:
        return None


def put(tools: CaTools, pv: str, value: str, *options: str):
    return tools.run_sync("caput", "-w", "5", *options, pv, value, timeout=20)


def frame(address: str, timeout: float = 10.0):
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host.split("//")[1], port=int(port), mode=bsread.SUB, receive_timeout=500) as source:
        while True:
            message = source.receive()
            if message is not None:
                return message.data.data
            assert time.monotonic() < deadline, "no frame on the stream"


def streamed_image(address: str) -> np.ndarray:
    return frame(address)["image"].value.copy()


def test_every_pv_is_served_by_the_real_server(server, client, tools):
    p = server.prefix
    names = [p + s.name for s in SERVICE_PVS]
    for camera in client.get_cameras():
        names += [f"{p}{camera}:cam1:{s.name}" for s in CAMERA_PVS]
        names += [f"{p}{camera}:image1:{s.name}" for s in IMAGE_PVS]
    result = tools.run_sync("caget", "-w", "3", "-t", *(f"{name}.RTYP" for name in names), timeout=30)
    assert result.returncode == 0 and "not found" not in result.output, result.output
    assert len(result.stdout.split()) == len(names)
    assert json.loads(get(tools, p + "Cameras_RBV", "-S")) == sorted(client.get_cameras())
    assert get(tools, p + "Version_RBV") == __version__
    assert get(tools, p + "START_CNT") == "1"


def test_acquire_and_geometry_follow_the_stream(server, client, tools):
    p, cam = server.prefix, f"{server.prefix}{SIM}:cam1:"
    result = put(tools, cam + "Acquire", "1", "-c")
    assert not put_failed(result), result.output
    assert client.is_instance_running(SIM)
    address = client.get_instance_stream(SIM)
    assert wait_until(lambda: poll_get(tools, cam + "StreamAddress_RBV", "-S") == address, what="StreamAddress_RBV")
    assert get(tools, cam + "Acquire_RBV") == "Acquiring"
    data = frame(address)
    width, height = int(data["width"].value), int(data["height"].value)
    wait_until(lambda: poll_get(tools, cam + "ArraySize0_RBV") == str(width), what="ArraySize0_RBV")
    assert (get(tools, cam + "ArraySize1_RBV"), get(tools, cam + "MaxSizeX_RBV"), get(tools, cam + "MaxSizeY_RBV")) \
        == (str(height), "640", "480")
    assert get(tools, cam + "DataType_RBV") == "UInt16"
    assert SIM in json.loads(get(tools, p + "Instances_RBV", "-S"))

    try:
        # Binning through CA changes the stream and the readbacks.
        assert not put_failed(put(tools, cam + "BinX", "2", "-c"))
        wait_until(lambda: frame(address)["image"].value.shape == (height, width // 2), what="binned stream")
        assert client.get_camera_config(SIM)["binning_x"] == 2
        wait_until(lambda: poll_get(tools, cam + "ArraySize0_RBV") == str(width // 2), what="binned ArraySize0_RBV")
        # An ROI entered PV by PV applies once both sizes are set.
        for name, value in (("MinX", "20"), ("SizeX", "100"), ("MinY", "30"), ("SizeY", "60")):
            assert not put_failed(put(tools, cam + name, value, "-c")), name
        assert client.get_camera_config(SIM)["roi"] == [20, 100, 30, 60]
        wait_until(lambda: frame(address)["image"].value.shape == (60, 100), what="ROI stream")
        assert not put_failed(put(tools, cam + "SizeX", "0", "-c"))
        assert client.get_camera_config(SIM)["roi"] is None
    finally:
        put(tools, cam + "BinX", "1", "-c")
        put(tools, cam + "SizeX", "0", "-c")

    assert not put_failed(put(tools, cam + "Acquire", "0", "-c"))
    wait_until(lambda: not client.is_instance_running(SIM), what="instance stopped")
    assert wait_until(lambda: poll_get(tools, cam + "Acquire_RBV") == "Done", what="Acquire_RBV Done")


def test_reverse_x_flips_the_stream_and_the_ca_image(server, client, tools, epics_ca):
    p = server.prefix
    cam, image1 = f"{p}{SIM}:cam1:", f"{p}{SIM}:image1:"
    address = client.get_instance_stream(SIM)
    before = streamed_image(address)
    try:
        assert epics_ca.caput(cam + "ReverseX", 1, wait=True, timeout=5) == 1
        wait_until(lambda: np.array_equal(streamed_image(address), np.fliplr(before)), what="flipped stream")
        assert client.get_camera_config(SIM)["mirror_x"] is True
        assert wait_until(lambda: epics_ca.caget(cam + "ReverseX_RBV", timeout=2, use_monitor=False) == 1, what="ReverseX_RBV")

        # A CA client reads the image with ArraySize0/1_RBV: it is the streamed (flipped) image.
        def ca_image():
            width = epics_ca.caget(image1 + "ArraySize0_RBV", timeout=2)
            height = epics_ca.caget(image1 + "ArraySize1_RBV", timeout=2)
            if not width or not height:
                return None
            data = epics_ca.caget(image1 + "ArrayData", count=width * height, timeout=5)
            if data is None:
                return None
            return np.asarray(data).astype(np.int16).view(np.uint16).reshape(height, width)

        flipped = np.fliplr(before)
        wait_until(lambda: (image := ca_image()) is not None and np.array_equal(image, flipped),
                   what="the CA image to be the flipped streamed image")
        assert epics_ca.caget(image1 + "DataType_RBV", as_string=True) == "UInt16"
    finally:
        epics_ca.caput(cam + "ReverseX", 0, wait=True, timeout=5)


def test_invalid_puts_are_refused_by_the_real_server(server, client, tools):
    cam = f"{server.prefix}simulation:cam1:"
    before = client.get_camera_config("simulation")
    for name, value, message in (("BinX", "0", "Limits are set to 1"), ("ReverseY", "7", "not a valid state"),
                                 ("SizeY", "-1", "Limits are set to 0")):
        result = put(tools, cam + name, value)
        assert put_failed(result) and message in result.output, result.output
        assert get(tools, cam + name) == get(tools, cam + f"{name}_RBV")
    assert client.get_camera_config("simulation") == before


def test_rest_camera_lifecycle_reaches_ca_clients(server, client, tools, epics_ca):
    p = server.prefix
    client.set_camera_config("e2ecam", {"source": "e2ecam", "source_type": "simulation", "size_x": 64, "size_y": 48,
                                        "image_type": "static_beam", "no_client_timeout": 0})
    wait_until(lambda: "e2ecam" in json.loads(poll_get(tools, p + "Cameras_RBV", "-S") or "[]"), what="Cameras_RBV")
    events: list[bool] = []
    lock = threading.Lock()

    def on_connection(conn=None, **_):
        with lock:
            events.append(bool(conn))

    monitor = epics_ca.PV(f"{p}e2ecam:cam1:BinX_RBV", connection_callback=on_connection, auto_monitor=True)
    heartbeat = epics_ca.PV(p + "HEARTBEAT", auto_monitor=True)
    try:
        assert monitor.wait_for_connection(5) and heartbeat.wait_for_connection(5)
        assert monitor.get(timeout=2) == 1
        client.delete_camera_config("e2ecam")
        wait_until(lambda: events[-1:] == [False], what="the client to see the camera's PVs disconnect")
        beat = heartbeat.get(timeout=2)
        wait_until(lambda: (heartbeat.get(timeout=2) or 0) > beat, timeout=5, what="service PVs on the same circuit")
        assert "e2ecam" not in json.loads(get(tools, p + "Cameras_RBV", "-S"))
    finally:
        monitor.disconnect()
        heartbeat.disconnect()


def test_stop_all_from_ca(server, client, tools):
    p = server.prefix
    for camera in ("simulation", SIM):
        client.get_instance_stream(camera)
    wait_until(lambda: poll_get(tools, p + "NumInstances_RBV") == "2", what="two instances")
    result = put(tools, p + "StopAll", "1", "-c")
    assert not put_failed(result), result.output
    assert not client.get_server_info()["active_instances"]
    wait_until(lambda: poll_get(tools, p + "NumInstances_RBV") == "0", what="NumInstances_RBV 0")
    assert json.loads(get(tools, p + "Instances_RBV", "-S")) == []


def test_pipeline_pvs_of_the_real_server(server, tools):
    """The saved pipeline's PVs; EnableCallbacks runs its shared instance (seen on REST)."""
    p, sp = server.prefix, f"{server.prefix}simulation_sp:"
    names = [sp + s.name for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)] + [f"{sp}image1:{s.name}" for s in IMAGE_PVS]
    result = tools.run_sync("caget", "-w", "3", "-t", *(f"{name}.RTYP" for name in names), timeout=30)
    assert result.returncode == 0 and "not found" not in result.output, result.output
    assert json.loads(get(tools, p + "Pipelines_RBV", "-S")) == ["simulation_sp"]
    assert get(tools, sp + "NDArrayPort_RBV") == "simulation"
    pipelines = PipelineClient(server.pipeline_url)
    try:
        assert not put_failed(put(tools, sp + "EnableCallbacks", "1", "-c"))
        info = pipelines.get_instance_info("simulation_sp")
        assert info["read_only"] is True
        assert wait_until(lambda: poll_get(tools, sp + "StreamAddress_RBV", "-S") == info["stream_address"],
                          what="StreamAddress_RBV")
        wait_until(lambda: "INVALID" not in tools.run_sync("caget", "-w", "2", "-a", sp + "CentroidX_RBV").stdout,
                   what="results")
        assert "simulation_sp" in json.loads(get(tools, p + "Instances_RBV", "-S"))
    finally:
        assert not put_failed(put(tools, sp + "EnableCallbacks", "0", "-c"))
    wait_until(lambda: "simulation_sp" not in pipelines.get_server_info()["active_instances"], what="stopped")
    assert wait_until(lambda: poll_get(tools, sp + "DetectorState_RBV") == "Idle", what="Idle")
