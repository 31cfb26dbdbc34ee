"""Pipeline PVs against the real services: CameraManager + PipelineManager with camera and pipeline
worker processes, the real CamiocIoc on the session's CA port, and real clients (the C tools,
pyepics, psi-bsread on the pipeline's stream).

One rig for the module (worker processes take seconds to start): camera ``sim`` (static beam, so
every frame gives the same results), saved pipeline ``sim_sp``. The tests run in file order and
share the rig: the shared instance is started and stopped in one test, the private instance
``sim_sp1`` lives from its first test to the last one, which stops it.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bsread
import numpy as np
import pytest
import pytest_asyncio
from ioc_support import ALL_METADATA, CaTools, metadata_requests, parse_cainfo, put_failed, same_field, wait_for

from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.model import dbgen
from camioc.model.blocks import IMAGE_PVS, MAX_SLICES, PIPELINE_ARRAY_PVS, PIPELINE_PVS, PROFILE_NELM
from camioc.model.pvnames import image_pv, pipeline_pv, service_pv

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIM = {"source": "simulation", "source_type": "simulation", "size_x": 200, "size_y": 150, "dtype": "uint16",
       "image_type": "static_beam", "frame_rate": 20.0, "no_client_timeout": 0}
USER_FUNCTION = '''
from camioc.processing.default import process_image as default_process_image

def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    out = default_process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata)
    out["my.value"] = 42.5
    out["my_label"] = "ok"
    return out
'''


@dataclass
class Rig:
    cameras: CameraManager
    pipelines: PipelineManager
    ioc: object
    prefix: str
    base: Path

    def pv(self, pipeline: str, name: str) -> str:
        return pipeline_pv(self.prefix, pipeline, name)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig(tmp_path_factory, ca_repeater, beacon_sink):
    from camioc.ioc.server import CamiocIoc

    base = tmp_path_factory.mktemp("pipelines")
    cams, pipes, scripts = base / "camera_config", base / "pipeline_config", base / "user_scripts"
    for folder in (cams, pipes, scripts):
        folder.mkdir()
    (cams / "sim.json").write_text(json.dumps({"name": "sim", **SIM}))
    (pipes / "sim_sp.json").write_text(json.dumps({"name": "sim_sp", "camera_name": "sim", "no_client_timeout": 0}))
    (scripts / "extra.py").write_text(USER_FUNCTION)
    start = random.randrange(46000, 52000, 200)
    cameras = CameraManager(ConfigStore(cams), hostname="127.0.0.1", port_range=(start, start + 100),
                            background_dir=base / "background_config")
    pipelines = PipelineManager(ConfigStore(pipes), cameras, BackgroundStore(base / "background_config"),
                                hostname="127.0.0.1", port_range=(start + 100, start + 200), scripts_dir=scripts)
    prefix = f"T{uuid.uuid4().hex[:8]}:"
    ioc = CamiocIoc(prefix, cameras, version="9.9.9-test", start_count=1, pipelines=pipelines,
                    result_publish_rate=20.0)
    await ioc.start()
    try:
        yield Rig(cameras, pipelines, ioc, prefix, base)
    finally:
        await pipelines.close()
        await cameras.close()
        await ioc.stop()


@pytest.fixture(scope="module")
def tools(ca_repeater) -> CaTools:
    return CaTools()


# ====================================================================== helpers
def receive(address: str, timeout: float = 10.0):
    """The data of one message of a bsread stream (psi-bsread)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host.split("//")[1], port=int(port), mode=bsread.SUB, receive_timeout=500) as source:
        while True:
            message = source.receive()
            if message is not None:
                return message.data.data
            assert time.monotonic() < deadline, "no message on the stream"


async def stream_data(address: str, predicate=lambda data: True, timeout: float = 10.0):
    """The first stream message (read with bsread) that satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        data = await asyncio.to_thread(receive, address)
        if predicate(data):
            return data
        assert time.monotonic() < deadline, "no matching message on the stream"


def parameters(data) -> dict:
    return json.loads(data["processing_parameters"].value)


async def alarm(tools: CaTools, pv: str) -> tuple[str, str]:
    """(status, severity) as ``caget -a`` reports them (empty for no alarm)."""
    result = await tools.caget("-a", pv)
    assert result.returncode == 0 and "not found" not in result.output, result.output
    fields = result.stdout.split()
    return (fields[-2], fields[-1]) if fields[-1] in ("MINOR", "MAJOR", "INVALID") else ("", "")


async def value_is(tools: CaTools, pv: str, expected: str, *options: str) -> bool:
    return await tools.try_get(pv, *options) == expected


async def alarm_is(tools: CaTools, pv: str, expected: tuple[str, str]) -> bool:
    return await alarm(tools, pv) == expected


async def caput_ok(tools: CaTools, pv: str, value: str, *options: str) -> None:
    result = await tools.caput(pv, value, "-c", *options, timeout=30.0)
    assert not put_failed(result), result.output


# ====================================================================== served PVs
async def test_saved_pipeline_pvs_are_served_with_record_fields(rig, tools):
    """Every pipeline PV (the spec tables and image1:) of the saved pipeline, with RTYP and DESC."""
    names = [(rig.pv("sim_sp", spec.name), spec) for spec in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)]
    names += [(image_pv(rig.prefix, "sim_sp", spec.name), spec) for spec in IMAGE_PVS]
    assert {name for name, _ in names} <= set(rig.ioc.pv_names())
    result = await tools.caget("-t", *(f"{name}.RTYP" for name, _ in names), *(f"{name}.DESC" for name, _ in names))
    assert result.returncode == 0 and "not found" not in result.output, result.output
    values = result.stdout.splitlines()
    assert values == [spec.record for _, spec in names] + [spec.desc for _, spec in names]
    assert await tools.get(rig.pv("sim_sp", "PluginType_RBV")) == "NDPluginStats"
    assert await tools.get(rig.pv("sim_sp", "NDArrayPort_RBV")) == "sim"
    assert await tools.get(rig.pv("sim_sp", "DetectorState_RBV")) == "Idle"
    assert await tools.get(rig.pv("sim_sp", "EnableCallbacks_RBV")) == "Disable"
    assert json.loads(await tools.get_text(rig.pv("sim_sp", "Config_RBV")))["camera_name"] == "sim"
    assert json.loads(await tools.get_text(service_pv(rig.prefix, "Pipelines_RBV"))) == ["sim_sp"]
    # No data while not running: results are UDF/INVALID.
    for name in ("CentroidX_RBV", "Total_RBV", "Slice0:Sigma_RBV", "ProfileX_RBV", "ArraySize0_RBV"):
        assert await alarm(tools, rig.pv("sim_sp", name)) == ("UDF", "INVALID"), name
    info = parse_cainfo(await tools.cainfo(rig.pv("sim_sp", "ProfileX_RBV")))
    assert (info["Native data type"], info["Element count"]) == ("DBF_DOUBLE", str(PROFILE_NELM))
    info = parse_cainfo(await tools.cainfo(rig.pv("sim_sp", "BackgroundId")))
    assert info["Native data type"] == "DBF_CHAR" and "no write" not in info["Access"]


async def test_served_pipeline_pvs_match_the_db_template(rig, tools):
    """Contract test: EPICS' own parse of db/camioc_pipeline.template vs what the IOC serves."""
    db = dbgen.DEFAULT_OUTPUT
    nelm = await tools.get(image_pv(rig.prefix, "sim_sp", "ArrayData.NELM"))
    ftvl = await tools.get(image_pv(rig.prefix, "sim_sp", "ArrayData.FTVL"))
    parsed = await asyncio.to_thread(dbgen.parse_with_epics, [
        (db / "camioc_pipeline.template", f"P={rig.prefix},ID=sim_sp"),
        (db / "camioc_image.template", f"P={rig.prefix},R=sim_sp:image1:,FTVL={ftvl},NELM={nelm}"),
    ], ("RTYP", "DESC", "EGU", "PREC", "NELM", "FTVL", *ALL_METADATA))
    served = {name for name in rig.ioc.pv_names() if name.startswith(rig.pv("sim_sp", ""))}
    assert set(parsed) == served
    requests = []
    for name in sorted(parsed):
        record = parsed[name]["RTYP"]
        requests += [(name, "RTYP"), (name, "DESC")]
        if record in ("ai", "ao", "longin", "longout", "int64in", "waveform"):
            requests.append((name, "EGU"))
        if record in ("ai", "ao", "waveform"):
            requests.append((name, "PREC"))
        if record == "waveform":
            requests += [(name, "NELM"), (name, "FTVL")]
        requests += metadata_requests(name, record)
    result = await tools.caget("-t", *(f"{name}.{field}" for name, field in requests), timeout=5.0)
    assert result.returncode == 0, result.output
    mismatches = [(f"{name}.{field}", parsed[name][field], value)
                  for (name, field), value in zip(requests, result.stdout.splitlines(), strict=True)
                  if not same_field(parsed[name][field], value)]
    assert mismatches == [], "\n".join(map(str, mismatches))


# ====================================================================== shared instance
async def test_enable_callbacks_runs_the_read_only_shared_instance(rig, tools):
    pv = lambda name: rig.pv("sim_sp", name)  # noqa: E731
    await caput_ok(tools, pv("EnableCallbacks"), "1")
    assert "sim_sp" in rig.pipelines.running_ids()
    address = rig.pipelines.instance_info("sim_sp")["stream_address"]
    await wait_for(lambda: value_is(tools, pv("StreamAddress_RBV"), address, "-S"), message="StreamAddress_RBV")
    assert await tools.get(pv("EnableCallbacks_RBV")) == "Enable"
    assert await tools.get(pv("ReadOnly_RBV")) == "Yes"
    await wait_for(lambda: value_is(tools, pv("DetectorState_RBV"), "Acquire"), timeout=10, message="Acquire")
    await wait_for(lambda: alarm_is(tools, pv("CentroidX_RBV"), ("", "")), timeout=10, message="results")
    instances = json.loads(await tools.get_text(service_pv(rig.prefix, "Instances_RBV")))
    assert set(instances) == {"sim", "sim_sp"}
    await wait_for(lambda: value_is(tools, service_pv(rig.prefix, "NumInstances_RBV"), "2"), message="NumInstances")

    # A read-only instance refuses every setting and changes nothing.
    config = rig.pipelines.instance_config("sim_sp")
    for name, value in (("CentroidThreshold", "20"), ("ROI:MinX", "5"), ("GoodRegion:Enable", "1"),
                        ("NumBackgroundImages", "3"), ("SaveBackground", "1")):
        before = await tools.get(pv(name))
        result = await tools.caput(pv(name), value)
        assert put_failed(result) and "Cannot set config on a read only instance." in result.output, result.output
        assert await tools.get(pv(name)) == before, name
    assert rig.pipelines.instance_config("sim_sp") == config
    assert await tools.get(pv("CentroidThreshold_RBV")) == "0"

    await caput_ok(tools, pv("EnableCallbacks"), "0")
    assert "sim_sp" not in rig.pipelines.running_ids()
    await wait_for(lambda: value_is(tools, pv("DetectorState_RBV"), "Idle"), message="Idle")
    assert await tools.get(pv("EnableCallbacks")) == "Disable"
    assert await tools.get(pv("ReadOnly_RBV")) == "No"
    await wait_for(lambda: alarm_is(tools, pv("CentroidX_RBV"), ("UDF", "INVALID")), message="INVALID when stopped")
    assert await alarm(tools, pv("FitX:Curve_RBV")) == ("UDF", "INVALID")
    assert rig.pv("sim_sp", "CentroidX_RBV") in rig.ioc.pv_names(), "a saved pipeline's PVs stay"

    # Stopped, the saved pipeline is writable: puts change the saved config.
    await caput_ok(tools, pv("CentroidThreshold"), "5")
    assert rig.pipelines.get_config("sim_sp")["image_threshold"] == 5
    assert rig.pipelines.status("sim_sp").config["image_threshold"] == 5, "status shows the saved config"
    assert await tools.get(pv("CentroidThreshold_RBV")) == "5"
    await caput_ok(tools, pv("CentroidThreshold"), "0")
    assert rig.pipelines.get_config("sim_sp")["image_threshold"] is None


# ====================================================================== private instance
async def test_private_instance_pvs_appear_and_settings_reach_the_stream(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    _id, address, _ = await rig.pipelines.create_instance(pipeline_name="sim_sp", instance_id="sim_sp1")
    await wait_for(lambda: pv("CentroidThreshold") in rig.ioc.pv_names(), message="sim_sp1 PVs")
    await wait_for(lambda: value_is(tools, pv("DetectorState_RBV"), "Acquire"), timeout=10, message="Acquire")
    assert await tools.get(pv("ReadOnly_RBV")) == "No"
    assert "sim_sp1" in json.loads(await tools.get_text(service_pv(rig.prefix, "Instances_RBV")))

    await caput_ok(tools, pv("CentroidThreshold"), "20")
    assert await tools.get(pv("CentroidThreshold_RBV")) == "20"
    assert rig.pipelines.instance_config("sim_sp1")["image_threshold"] == 20
    data = await stream_data(address, lambda d: parameters(d)["image_threshold"] == 20)
    assert json.loads(await tools.get_text(pv("Config_RBV")))["image_threshold"] == 20

    # The result PVs follow the stream (static beam: every frame gives the same values).
    data = await stream_data(address, lambda d: parameters(d)["image_threshold"] == 20)
    expected = {"CentroidX_RBV": "x_center_of_mass", "CentroidY_RBV": "y_center_of_mass", "SigmaX_RBV": "x_rms",
                "Total_RBV": "intensity", "MaxValue_RBV": "max_value", "FitX:Mean_RBV": "x_fit_mean",
                "FWHMY_RBV": "y_fwhm"}

    async def results_match() -> bool:
        values = (await tools.caget("-t", "-f", "6", *(pv(name) for name in expected))).stdout.split()
        return all(np.isclose(float(value), float(data[key].value), rtol=1e-6, atol=1e-4)
                   for value, key in zip(values, expected.values(), strict=True))

    await wait_for(results_match, timeout=5, message="result PVs equal the stream's values")
    streamed = np.asarray(data["x_profile"].value, float)
    result = await tools.caget("-t", "-f", "1", "-#", str(streamed.size), pv("ProfileX_RBV"))
    assert np.array_equal(np.asarray(result.stdout.split()[1:], float), streamed)
    assert await tools.get(pv("ArraySize0_RBV")) == "200"


async def test_roi_is_entered_pv_by_pv_and_applied_when_complete(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    for name, value in (("ROI:MinX", "10"), ("ROI:SizeX", "100"), ("ROI:MinY", "20"), ("ROI:Enable", "1")):
        await caput_ok(tools, pv(name), value)
        assert rig.pipelines.instance_config("sim_sp1")["image_region_of_interest"] is None, name
    assert (await tools.get(pv("ROI:MinX")), await tools.get(pv("ROI:MinX_RBV"))) == ("10", "0"), "pending kept"
    assert await tools.get(pv("ROI:Enable_RBV")) == "Disable"
    await caput_ok(tools, pv("ROI:SizeY"), "50")
    assert rig.pipelines.instance_config("sim_sp1")["image_region_of_interest"] == [10, 100, 20, 50]
    rbvs = [await tools.get(pv(f"ROI:{name}_RBV")) for name in ("MinX", "SizeX", "MinY", "SizeY", "Enable")]
    assert rbvs == ["10", "100", "20", "50", "Enable"]
    address = rig.pipelines.instance_info("sim_sp1")["stream_address"]
    await stream_data(address, lambda d: d["image"].value.shape == (50, 100))
    await wait_for(lambda: value_is(tools, pv("ArraySize0_RBV"), "100"), message="ArraySize0_RBV of the ROI")
    await caput_ok(tools, pv("ROI:MinX"), "30")  # applies at once while enabled
    assert rig.pipelines.instance_config("sim_sp1")["image_region_of_interest"] == [30, 100, 20, 50]
    await caput_ok(tools, pv("ROI:Enable"), "0")
    assert rig.pipelines.instance_config("sim_sp1")["image_region_of_interest"] is None
    assert [await tools.get(pv(f"ROI:{name}")) for name in ("MinX", "SizeX", "Enable")] == ["30", "100", "Disable"]
    assert await tools.get(pv("ROI:SizeX_RBV")) == "0"


INVALID_PUTS = [
    ("EnableBackground", "7", "7 is not a valid state"),
    ("Slices:Orientation", "2", "2 is not a valid state"),
    ("Slices:Number", "99", "Limits are set to 0 and 15"),
    ("GoodRegion:Threshold", "2", "Limits are set to 0.0 and 1.0"),
    ("NumBackgroundImages", "0", "Limits are set to 1 and 1000"),
    ("BackgroundId", "a/b", "not a valid background name"),
    ("Pause", "5", "5 is not a valid state"),
]


async def test_invalid_puts_are_refused_and_change_nothing(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    config = rig.pipelines.instance_config("sim_sp1")
    for name, value, message in INVALID_PUTS:
        options = ("-S",) if name == "BackgroundId" else ()
        before = await tools.get(pv(name), *options)
        result = await tools.caput(pv(name), value, *options)
        assert put_failed(result) and message in result.output, result.output
        assert await tools.get(pv(name), *options) == before, name  # and still readable (no poisoned enum)
    assert rig.pipelines.instance_config("sim_sp1") == config


async def test_good_region_and_slices(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    await caput_ok(tools, pv("GoodRegion:GFScale"), "2")  # pending while disabled
    assert rig.pipelines.instance_config("sim_sp1")["image_good_region"] is None
    await caput_ok(tools, pv("GoodRegion:Enable"), "1")
    assert rig.pipelines.instance_config("sim_sp1")["image_good_region"] == {"threshold": 0.3, "gfscale": 2}
    await caput_ok(tools, pv("Slices:Orientation"), "horizontal")  # pending: no slices yet
    await caput_ok(tools, pv("Slices:Number"), "3")
    assert rig.pipelines.instance_config("sim_sp1")["image_slices"] == {
        "number_of_slices": 3, "scale": 2, "orientation": "horizontal"}
    await caput_ok(tools, pv("Slices:Scale"), "1.5")
    assert rig.pipelines.instance_config("sim_sp1")["image_slices"]["scale"] == 1.5
    assert [await tools.get(pv(f"Slices:{n}_RBV")) for n in ("Number", "Scale", "Orientation")] == \
        ["3", "1.5", "horizontal"]
    await wait_for(lambda: alarm_is(tools, pv("Slice0:CenterY_RBV"), ("", "")), timeout=5, message="slice results")
    assert await alarm(tools, pv("GoodRegion:FitX:Mean_RBV")) == ("", "")
    assert await alarm(tools, pv(f"Slice{MAX_SLICES - 1}:CenterX_RBV")) == ("UDF", "INVALID"), "unused slice"
    await caput_ok(tools, pv("Slices:Number"), "0")
    await caput_ok(tools, pv("GoodRegion:Enable"), "0")
    config = rig.pipelines.instance_config("sim_sp1")
    assert (config["image_slices"], config["image_good_region"]) == (None, None)
    await wait_for(lambda: alarm_is(tools, pv("Slice0:CenterY_RBV"), ("UDF", "INVALID")), message="no slices")


async def test_processing_error_then_save_background(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    await caput_ok(tools, pv("BackgroundId"), "sim_19990101_000000_000000", "-S")
    await caput_ok(tools, pv("EnableBackground"), "Enable")
    assert await tools.get_text(pv("BackgroundId_RBV")) == "sim_19990101_000000_000000"
    await wait_for(lambda: alarm_is(tools, pv("CentroidX_RBV"), ("UDF", "INVALID")), timeout=5,
                   message="INVALID on a processing error")
    assert "sim_19990101_000000_000000" in await tools.get_text(pv("StatusMessage_RBV"))

    await caput_ok(tools, pv("NumBackgroundImages"), "10")
    put = asyncio.create_task(caput_ok(tools, pv("SaveBackground"), "1"))
    try:  # other PVs answer while the collection runs
        await wait_for(lambda: value_is(tools, pv("SaveBackground_RBV"), "Saving"), timeout=5, interval=0,
                       message="SaveBackground_RBV Saving")
        assert await tools.get(pv("DetectorState_RBV"))
    finally:
        await put
    background_id = await tools.get_text(pv("BackgroundId_RBV"))
    assert background_id.startswith("sim_") and background_id != "sim_19990101_000000_000000"
    assert rig.pipelines.instance_config("sim_sp1")["image_background"] == background_id
    assert await tools.get(pv("SaveBackground")) == "Done"
    assert await tools.get(pv("SaveBackground_RBV")) == "Done"
    # The static beam minus its own background is an empty image: valid sums of 0, no centroid.
    await wait_for(lambda: alarm_is(tools, pv("Total_RBV"), ("", "")), timeout=5, message="alarm cleared")
    assert await tools.get(pv("Total_RBV")) == "0"
    assert await tools.get_text(pv("StatusMessage_RBV")) == "Running"
    await wait_for(lambda: value_is(tools, pv("ValidBackground_RBV"), "Valid"), message="ValidBackground_RBV")
    await caput_ok(tools, pv("EnableBackground"), "Disable")
    await wait_for(lambda: alarm_is(tools, pv("CentroidX_RBV"), ("", "")), timeout=5, message="centroid back")


async def test_out_readback_appears_for_a_user_output(rig, tools):
    pv = lambda name: rig.pv("sim_sp1", name)  # noqa: E731
    assert not [name for name in rig.ioc.pv_names() if ":Out:" in name]
    await rig.pipelines.update_pipeline("sim_sp1", {"function": "extra.py"})  # as REST would
    await wait_for(lambda: pv("Out:my_value_RBV") in rig.ioc.pv_names(), timeout=10, message="Out: readback")
    await wait_for(lambda: value_is(tools, pv("Out:my_value_RBV"), "42.5"), message="Out:my_value_RBV")
    assert await tools.get(pv("Out:my_label_RBV")) == "ok"
    assert await tools.get(pv("Out:my_value_RBV.RTYP")) == "ai"
    assert await alarm(tools, pv("CentroidX_RBV")) == ("", ""), "the default results still flow"


async def test_processed_image_is_published_on_image1(rig, tools, epics_ca):
    image1 = lambda name: image_pv(rig.prefix, "sim_sp1", name)  # noqa: E731
    assert await tools.get(image1("PluginType_RBV")) == "NDPluginStdArrays"
    await wait_for(lambda: _int(tools, image1("ArrayCounter_RBV")), timeout=5, message="processed images")
    assert await tools.get(image1("ArraySize0_RBV")) == "200"
    address = rig.pipelines.instance_info("sim_sp1")["stream_address"]
    streamed = (await stream_data(address))["image"].value

    async def published_is_streamed() -> bool:
        # the CA image is a snapshot at <= 2 Hz: one taken before the previous test's last config
        # change may still be shown for a moment; the static beam then gives the streamed frame
        data = await asyncio.to_thread(epics_ca.caget, image1("ArrayData"), count=200 * 150, timeout=5)
        return np.array_equal(np.asarray(data).astype(np.int16).view(np.uint16).reshape(150, 200), streamed)

    await wait_for(published_is_streamed, timeout=5, interval=0.2, message="ArrayData is the streamed image")
    await caput_ok(tools, image1("MinCallbackTime"), "0.2")
    assert float(await tools.get(image1("MinCallbackTime_RBV"))) == 0.2


async def _int(tools: CaTools, pv: str) -> int:
    return int(await tools.try_get(pv) or 0)


async def test_stopped_private_instance_pvs_disappear(rig, tools, epics_ca):
    """Its clients see a disconnect; other PVs on the same circuit keep working."""
    from caproto.sync.client import write

    events: list[bool] = []
    beats: list[int] = []
    lock = threading.Lock()

    def on_connection(conn=None, **_):
        with lock:
            events.append(bool(conn))

    def on_beat(value=None, **_):
        with lock:
            beats.append(value)

    monitor = await asyncio.to_thread(epics_ca.PV, rig.pv("sim_sp1", "CentroidX_RBV"), auto_monitor=True,
                                      connection_callback=on_connection)
    heartbeat = await asyncio.to_thread(epics_ca.PV, service_pv(rig.prefix, "HEARTBEAT"), auto_monitor=True,
                                        callback=on_beat)
    try:
        assert await asyncio.to_thread(monitor.wait_for_connection, 5)
        assert await asyncio.to_thread(heartbeat.wait_for_connection, 5)
        await asyncio.to_thread(epics_ca.ca.flush_io)  # send the subscriptions now
        # The put removes its own PV: it still completes (caproto's client waits for the put's
        # response and raises on a refusal; `caput` would wait in vain to read the new value back).
        await asyncio.to_thread(write, rig.pv("sim_sp1", "EnableCallbacks"), 0, notify=True, timeout=10,
                                repeater=False)
        await wait_for(lambda: events[-1:] == [False], timeout=5, message="the client sees the PVs disconnect")
        assert "sim_sp1" not in rig.pipelines.running_ids()
        assert not [name for name in rig.ioc.pv_names() if ":sim_sp1:" in name]
        count = len(beats)
        await wait_for(lambda: len(beats) > count, timeout=3, message="HEARTBEAT monitor on the same circuit")
        assert await asyncio.to_thread(epics_ca.caget, service_pv(rig.prefix, "START_CNT"), timeout=5) == 1
        result = await tools.caget(rig.pv("sim_sp1", "CentroidX_RBV"), timeout=0.5)
        assert "not found" in result.output, result.output
        await wait_for(lambda: _no_instance(tools, rig.prefix, "sim_sp1"), message="Instances_RBV")
    finally:
        for pv in (monitor, heartbeat):
            await asyncio.to_thread(pv.disconnect)


async def _no_instance(tools: CaTools, prefix: str, instance: str) -> bool:
    text = await tools.try_get(service_pv(prefix, "Instances_RBV"), "-S")
    return text is not None and instance not in json.loads(text)
