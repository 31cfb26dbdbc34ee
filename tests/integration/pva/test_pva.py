"""PV Access against a real camioc process: the same records as CA, one value, and NTNDArray images.

Clients are the ones users run: p4p's ``Context('pva')``, pyepics (libca) for CA, psi-camserver-client
for REST and psi-bsread for the streams.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import bsread
import numpy as np
import pytest
from cam_server_client import CamClient, PipelineClient
from p4p.client.thread import Context, RemoteError

from tests.support.server import REPO_ROOT, CamiocServer
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI


def _get(pva: Context, name: str) -> Any:
    return pva.get(name, timeout=5)


def test_scalar_setting_has_the_records_metadata(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    binx = _get(pva, f"{p}simulation:cam1:BinX")
    assert binx == 1 and isinstance(binx, int)
    assert binx.raw.getID() == "epics:nt/NTScalar:1.0"
    assert (binx.raw.control.limitLow, binx.raw.control.limitHigh) == (1, 256)
    assert (binx.raw.display.limitLow, binx.raw.display.limitHigh) == (1, 256)
    # the first CA read of a field just after start can come back empty on a cold machine: poll
    # (use_monitor=False: pyepics would otherwise keep answering the monitored first value)
    desc = wait_until(lambda: epics.caget(f"{p}simulation:cam1:BinX.DESC", timeout=5, use_monitor=False),
                      what="BinX.DESC over CA")
    assert binx.raw.display.description == desc
    period = _get(pva, f"{p}simulation:image1:MinCallbackTime")
    assert period.raw.display.units == "s" and period.raw.display.precision == 3
    reverse = _get(pva, f"{p}simulation:cam1:ReverseX")
    assert reverse.raw.getID() == "epics:nt/NTEnum:1.0"
    assert list(reverse.raw.value.choices) == ["No", "Yes"] and reverse.raw.value.index == 0
    assert _get(pva, f"{p}Version_RBV") == epics.caget(f"{p}Version_RBV", timeout=5, as_string=True)


def test_result_pv_follows_the_running_pipeline(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    centroid = _get(pva, f"{p}simulation_sp:CentroidX_RBV")
    assert centroid.severity == 3  # INVALID: not running, no data
    assert centroid.raw.alarm.message == "UDF"
    assert centroid.raw.display.precision == 3
    PipelineClient(camioc_pva.pipeline_url).get_instance_stream("simulation_sp")
    fresh = wait_until(lambda: (v := _get(pva, f"{p}simulation_sp:CentroidX_RBV")).severity == 0 and v,
                       timeout=30, what="CentroidX_RBV with data over PVA")
    assert 0 < float(fresh) < 1280  # a centroid inside the simulated 1280 x 960 image
    assert abs(fresh.timestamp - time.time()) < 60  # the frame's time, not 1970
    over_ca = epics.caget(f"{p}simulation_sp:ArraySize0_RBV", timeout=5)
    assert _get(pva, f"{p}simulation_sp:ArraySize0_RBV") == over_ca == 1280


def test_put_over_pva_is_seen_over_ca_and_rest(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    client = CamClient(camioc_pva.camera_url)
    assert client.get_camera_config("simulation2")["mirror_y"] is False
    pva.put(f"{p}simulation2:cam1:ReverseY", "Yes", timeout=10)
    assert wait_until(lambda: epics.caget(f"{p}simulation2:cam1:ReverseY_RBV", timeout=2, use_monitor=False) == 1, what="CA _RBV")
    assert epics.caget(f"{p}simulation2:cam1:ReverseY", timeout=2) == 1  # the CA setpoint too
    assert client.get_camera_config("simulation2")["mirror_y"] is True
    assert _get(pva, f"{p}simulation2:cam1:ReverseY_RBV").raw.value.index == 1
    # and the other way round: a caput shows over PVA
    assert epics.caput(f"{p}simulation2:cam1:ReverseY", 0, wait=True, timeout=5) == 1
    wait_until(lambda: _get(pva, f"{p}simulation2:cam1:ReverseY").raw.value.index == 0, what="PVA setpoint")
    assert _get(pva, f"{p}simulation2:cam1:ReverseY_RBV").raw.value.index == 0


def test_refused_put_over_pva_changes_nothing(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    client = CamClient(camioc_pva.camera_url)
    before = client.get_camera_config("simulation2")
    with pytest.raises(RemoteError, match=r"outside the limits 1 \.\. 256"):
        pva.put(f"{p}simulation2:cam1:BinX", 1000, timeout=10)
    with pytest.raises(RemoteError, match="read-only"):
        pva.put(f"{p}simulation2:cam1:ArraySize0_RBV", 5, timeout=10)
    # a shared (read-only) pipeline instance refuses settings, as over CA and REST
    PipelineClient(camioc_pva.pipeline_url).get_instance_stream("simulation_sp")
    wait_until(lambda: epics.caget(f"{p}simulation_sp:EnableCallbacks_RBV", timeout=2, use_monitor=False) == 1, what="running")
    rate = _get(pva, f"{p}simulation_sp:MaxArrayRate_RBV")
    with pytest.raises(RemoteError, match="Cannot set config on a read only instance"):
        pva.put(f"{p}simulation_sp:MaxArrayRate", 3.0, timeout=10)
    assert float(_get(pva, f"{p}simulation_sp:MaxArrayRate_RBV")) == float(rate)
    assert _get(pva, f"{p}simulation2:cam1:BinX") == 1
    assert epics.caget(f"{p}simulation2:cam1:BinX_RBV", timeout=2) == 1
    assert client.get_camera_config("simulation2") == before
    assert "refused" in epics.caget(f"{p}simulation_sp:StatusMessage_RBV", timeout=2, as_string=True)


class _Images:
    """NTNDArray monitor updates, by the pulse id they carry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_pulse: dict[int, Any] = {}

    def __call__(self, value: Any) -> None:
        if isinstance(value, Exception) or value.size == 0:
            return
        with self.lock:
            self.by_pulse[int(value.attrib["PulseId"])] = value


def _frame_matching_pva(address: str, images: _Images, timeout: float = 30.0) -> tuple[Any, Any]:
    """Read the bsread stream until a frame's pulse id is one the PVA client got; both."""
    host, port = address.rsplit(":", 1)
    frames: dict[int, np.ndarray] = {}
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host.split("//")[1], port=int(port), mode=bsread.SUB, receive_timeout=200) as source:
        while True:
            assert time.monotonic() < deadline, f"no PVA image with the pulse id of a streamed frame ({len(frames)} read)"
            message = source.receive()
            if message is not None:
                frames[message.data.pulse_id] = message.data.data["image"].value
                if len(frames) > 200:
                    frames.pop(next(iter(frames)))
            with images.lock:
                common = sorted(set(frames) & set(images.by_pulse))
                if common:
                    return frames[common[-1]], images.by_pulse[common[-1]]


def _check_image(pva_image: Any, frame: np.ndarray) -> None:
    assert pva_image.raw.getID() == "epics:nt/NTNDArray:1.0"
    assert pva_image.dtype == frame.dtype
    assert pva_image.shape == frame.shape
    dims = [d.size for d in pva_image.raw.dimension]
    assert dims == [frame.shape[1], frame.shape[0]]  # (x, y)
    pulse_id = int(pva_image.attrib["PulseId"])
    assert pva_image.raw.uniqueId == pulse_id % 2**31
    assert abs(pva_image.timestamp - time.time()) < 60
    assert np.array_equal(np.asarray(pva_image), frame)


def test_camera_ntndarray_equals_the_streamed_frame(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    pva.put(f"{p}simulation:image1:MinCallbackTime", 0.1, timeout=10)  # through Device.put, as a caput
    assert wait_until(lambda: abs(epics.caget(f"{p}simulation:image1:MinCallbackTime_RBV", timeout=2, use_monitor=False) - 0.1) < 1e-9,
                      what="MinCallbackTime_RBV over CA")
    images = _Images()
    subscription = pva.monitor(f"{p}simulation:image1:Pva1:Image", images, notify_disconnect=True)
    try:
        address = CamClient(camioc_pva.camera_url).get_instance_stream("simulation")
        frame, image = _frame_matching_pva(address, images)
    finally:
        subscription.close()
    assert image.dtype == np.uint16  # the 16-bit simulation stays uint16 (not CA's signed SHORT)
    _check_image(image, frame)


def test_pipeline_ntndarray_equals_the_streamed_frame(camioc_pva: CamiocServer, pva: Context) -> None:
    p = camioc_pva.prefix
    pva.put(f"{p}simulation_sp:image1:MinCallbackTime", 0.1, timeout=10)
    images = _Images()
    subscription = pva.monitor(f"{p}simulation_sp:image1:Pva1:Image", images, notify_disconnect=True)
    try:
        address = PipelineClient(camioc_pva.pipeline_url).get_instance_stream("simulation_sp")
        frame, image = _frame_matching_pva(address, images)
    finally:
        subscription.close()
    _check_image(image, frame)
    # a pipeline's image carries its axes (pixel indices for an uncalibrated camera)
    assert np.array_equal(image.attrib["x_axis"], np.arange(frame.shape[1]))
    assert np.array_equal(image.attrib["y_axis"], np.arange(frame.shape[0]))


def _readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## PV Access\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_runs_as_written(camioc_pva: CamiocServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's PV Access block, with only the prefix and the server's ports put in."""
    p = camioc_pva.prefix
    CamClient(camioc_pva.camera_url).get_instance_stream("simulation")
    with Context("pva", conf=camioc_pva.pva_conf(), useenv=False) as pva:
        wait_until(lambda: _get(pva, f"{p}simulation:image1:Pva1:Image").size > 0, timeout=20, what="an image")
    for key, value in camioc_pva.pva_conf().items():  # the snippet's Context("pva") reads the environment
        monkeypatch.setenv(key, value)
    snippet = _readme_snippet()
    assert 'Context("pva")' in snippet and "CAMIOC:" in snippet
    namespace: dict[str, Any] = {}
    try:
        exec(compile(snippet.replace("CAMIOC:", p), "README.md", "exec"), namespace)
    finally:
        epics.caput(f"{p}simulation2:cam1:ReverseY", 0, wait=True, timeout=5)
    assert namespace["pulse_id"] > 0
