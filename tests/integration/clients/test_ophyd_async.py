"""ophyd-async's stock adcore IO classes and SimDetector (a StandardDetector) with bluesky against a
real camioc: the README's snippet, run as it stands."""

from __future__ import annotations

import math
import time

import pytest

from tests.integration.clients.clients_support import StreamRecorder
from tests.integration.clients.readme_snippets import run_snippet
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI
pytest.importorskip("ophyd_async")  # in the test extra; never skips in CI


def _key(descriptor: dict, pv: str) -> str:
    """The data key a descriptor gives the reading of ``pv``."""
    keys = [key for key, info in descriptor["data_keys"].items() if info["source"].endswith(pv)]
    assert len(keys) == 1, (pv, descriptor["data_keys"])
    return keys[0]


def test_count_reads_the_frame_each_trigger_acquired(camioc: CamiocServer) -> None:
    p = camioc.prefix
    # the pipeline runs (and streams) before the plan, its camera in Multiple mode: no frame yet
    assert epics.caput(f"{p}simulation:cam1:ImageMode", "Multiple", wait=True, timeout=10) == 1
    assert epics.caput(f"{p}simulation_sp:EnableCallbacks", 1, wait=True, timeout=60) == 1
    address = wait_until(lambda: epics.caget(f"{p}simulation_sp:StreamAddress_RBV", as_string=True,
                                             use_monitor=False), timeout=30, what="the pipeline's stream")
    with StreamRecorder(address) as stream:
        started = time.time()
        namespace = run_snippet("ophyd-async", CAMIOC_PREFIX=p)
        with stream.lock:
            streamed = dict(stream.by_pulse)
    documents = namespace["documents"]
    assert isinstance(documents, list)
    descriptor = next(doc for name, doc in documents if name == "descriptor")
    unique_id = _key(descriptor, f"{p}simulation_sp:UniqueId_RBV")
    centroid = _key(descriptor, f"{p}simulation_sp:CentroidX_RBV")
    total = _key(descriptor, f"{p}simulation_sp:Total_RBV")
    assert (descriptor["data_keys"][centroid]["dtype"], descriptor["data_keys"][centroid]["shape"]) == ("number", [])
    events = [doc for name, doc in documents if name == "event"]
    assert len(events) == 3
    pulses = [int(event["data"][unique_id]) for event in events]
    assert pulses == sorted(set(pulses)), pulses
    # the camera published exactly the three frames its three triggers acquired, nothing between
    assert sorted(streamed) == pulses, (sorted(streamed), pulses)
    for event, pulse in zip(events, pulses, strict=True):
        frame = streamed[pulse]
        assert float(frame["timestamp"]) > started
        assert math.isclose(event["data"][centroid], frame["x_center_of_mass"], rel_tol=1e-9)
        assert event["data"][total] == pytest.approx(float(frame["intensity"]))
        assert event["timestamps"][centroid] == pytest.approx(float(frame["timestamp"]), abs=1e-3)
    # the driver's configuration readings (AcquirePeriod/AcquireTime: the simulation's 10 Hz)
    config = next(doc for name, doc in documents if name == "descriptor")["configuration"]
    values = {key: value for device in config.values() for key, value in device["data"].items()}
    assert any(key.endswith("acquire_period") and value == pytest.approx(0.1) for key, value in values.items())
    assert epics.caget(f"{p}simulation:cam1:WaitForPlugins_RBV", as_string=True, use_monitor=False) == "Yes"


def test_uint16_image_reads_with_the_native_dtype_over_pva(camioc: CamiocServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """ophyd-async reads the NTNDArray with its native dtype (PVA has unsigned types; CA serves
    uint16 as SHORT with DataType_RBV UInt16, ADCore's convention, test_ad_pvs.py)."""
    import asyncio

    import numpy as np
    from ophyd_async.core import init_devices
    from ophyd_async.epics.core import epics_signal_r

    p = camioc.prefix

    async def read() -> np.ndarray:
        async with init_devices():
            image = epics_signal_r(np.ndarray, f"pva://{p}simulation:image1:Pva1:Image")
        return await image.get_value()

    for key, value in camioc.pva_conf().items():  # p4p's client finds this server only
        monkeypatch.setenv(key, value)
    assert epics.caput(f"{p}simulation:cam1:ImageMode", "Single", wait=True, timeout=10) == 1
    assert epics.caput(f"{p}simulation:cam1:Acquire", 1, wait=True, timeout=60) == 1
    image = asyncio.run(read())
    assert image.dtype == np.uint16 and image.shape == (960, 1280)
    assert epics.caget(f"{p}simulation:image1:DataType_RBV", as_string=True, use_monitor=False) == "UInt16"
