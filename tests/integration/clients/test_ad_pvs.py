"""ADCore's PV sets on a real camioc over CA (pyepics): ImageMode/NumImages honoured, the driver's
identity and frame period, kept settings, a fixed NDArrayPort, ADCore's image type convention."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integration.clients.clients_support import StreamRecorder
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI


def _get(name: str, **kwargs: object) -> object:
    value = epics.caget(name, timeout=5, use_monitor=False, **kwargs)
    assert value is not None, f"{name} did not answer"
    return value


def test_multiple_and_single_image_modes_acquire_that_many_frames(camioc: CamiocServer) -> None:
    cam = f"{camioc.prefix}simulation:cam1:"
    assert _get(cam + "ImageMode_RBV", as_string=True) == "Continuous"
    assert epics.caput(cam + "ImageMode", "Multiple", wait=True, timeout=10) == 1
    assert epics.caput(cam + "NumImages", 3, wait=True, timeout=10) == 1
    assert _get(cam + "NumImages_RBV") == 3
    # the put completes when the frames are published (ADCore's Acquire with a callback)
    assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1
    assert _get(cam + "Acquire_RBV", as_string=True) == "Done"
    assert _get(cam + "Acquire", as_string=True) == "Done"
    assert _get(cam + "NumImagesCounter_RBV") == 3
    wait_until(lambda: _get(cam + "DetectorState_RBV", as_string=True) == "Idle", what="Idle after Multiple")
    first = int(_get(cam + "ArrayCounter_RBV"))
    assert first == 3  # a fresh camera: exactly the acquired frames were published
    assert epics.caput(cam + "ImageMode", "Single", wait=True, timeout=10) == 1
    assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1
    assert _get(cam + "NumImagesCounter_RBV") == 1
    # between acquisitions no frame is published: the counter moved by exactly one
    assert int(_get(cam + "ArrayCounter_RBV")) == first + 1
    # ArrayCounter sets the counter (ADCore): the next frames count from there
    assert epics.caput(cam + "ArrayCounter", 100, wait=True, timeout=10) == 1
    assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1
    assert int(_get(cam + "ArrayCounter_RBV")) == 101
    # Continuous again: Acquire 1 streams until Acquire 0, which stops the instance
    assert epics.caput(cam + "ImageMode", "Continuous", wait=True, timeout=10) == 1
    assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1
    wait_until(lambda: int(_get(cam + "ArrayCounter_RBV")) > 103, timeout=30, what="frames in Continuous")
    assert _get(cam + "Acquire_RBV", as_string=True) == "Acquiring"
    assert epics.caput(cam + "Acquire", 0, wait=True, timeout=30) == 1
    wait_until(lambda: _get(cam + "Acquire_RBV", as_string=True) == "Done", what="stopped")


def test_driver_identity_and_frame_period(camioc: CamiocServer) -> None:
    cam = f"{camioc.prefix}simulation:cam1:"
    assert _get(cam + "Manufacturer_RBV") == "camioc"
    assert _get(cam + "Model_RBV") == "simulation"
    assert _get(cam + "PortName_RBV") == "simulation"
    assert _get(cam + "DriverVersion_RBV")
    # the simulation's frame_rate is 10 Hz: the frame period in force, whatever was put
    assert abs(float(_get(cam + "AcquirePeriod_RBV")) - 0.1) < 1e-9
    assert epics.caput(cam + "AcquireTime", 0.5, wait=True, timeout=10) == 1
    assert abs(float(_get(cam + "AcquireTime")) - 0.5) < 1e-9
    assert abs(float(_get(cam + "AcquireTime_RBV")) - 0.1) < 1e-9


def test_kept_settings_and_fixed_ports(camioc: CamiocServer) -> None:
    p = camioc.prefix
    assert epics.caput(f"{p}simulation:cam1:Gain", 2.5, wait=True, timeout=10) == 1
    assert abs(float(_get(f"{p}simulation:cam1:Gain_RBV")) - 2.5) < 1e-9
    assert epics.caput(f"{p}simulation_sp:QueueSize", 7, wait=True, timeout=10) == 1
    assert _get(f"{p}simulation_sp:QueueSize_RBV") == 7
    assert _get(f"{p}simulation:image1:NDArrayPort_RBV") == "simulation"
    assert _get(f"{p}simulation_sp:NDArrayPort_RBV") == "simulation"
    # the input of a block is what it is: another port is refused, the same one accepted
    epics.caput(f"{p}simulation:image1:NDArrayPort", "other", wait=True, timeout=10)
    assert _get(f"{p}simulation:image1:NDArrayPort", as_string=True) == "simulation"
    assert _get(f"{p}simulation_sp:PluginType_RBV") == "NDPluginStats"
    assert _get(f"{p}simulation:image1:PluginType_RBV") == "NDPluginStdArrays"


def test_uint16_image_follows_adcore_convention(camioc: CamiocServer) -> None:
    """NDStdArrays: a uint16 image is a SHORT waveform and DataType_RBV says UInt16, so a client
    reinterprets the bits (as ophyd-async's adcore chooses the numpy dtype from DataType_RBV); the
    pixels are the streamed frame's."""
    p = camioc.prefix
    cam, image = f"{p}simulation:cam1:", f"{p}simulation:image1:"
    assert epics.caput(image + "MinCallbackTime", 0.0, wait=True, timeout=10) == 1
    assert epics.caput(cam + "ImageMode", "Single", wait=True, timeout=10) == 1
    assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1  # starts the camera: a stream
    with StreamRecorder(str(_get(cam + "StreamAddress_RBV", as_string=True))) as stream:
        assert epics.caput(cam + "Acquire", 1, wait=True, timeout=60) == 1
        pulse_id = wait_until(lambda: max(stream.by_pulse, default=None), timeout=30, what="the acquired frame")
        frame = stream.get(pulse_id)["image"]
    wait_until(lambda: int(_get(image + "UniqueId_RBV")) == pulse_id, timeout=30, what="the frame on image1:")
    assert _get(image + "DataType_RBV", as_string=True) == "UInt16"
    assert _get(image + "ArrayData.FTVL", as_string=True) == "SHORT"
    height, width = frame.shape
    assert (int(_get(image + "ArraySize0_RBV")), int(_get(image + "ArraySize1_RBV"))) == (width, height)
    assert (int(_get(image + "ArraySizeX_RBV")), int(_get(image + "ArraySizeY_RBV"))) == (width, height)
    assert list(_get(image + "Dimensions_RBV"))[:2] == [width, height]
    raw = np.asarray(_get(image + "ArrayData", count=width * height))
    assert raw.dtype == np.int16  # CA has no unsigned 16-bit type
    assert frame.dtype == np.uint16
    assert np.array_equal(raw.astype(np.int16).view(np.uint16).reshape(height, width), frame)
