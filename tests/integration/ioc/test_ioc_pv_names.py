"""PV names of instances (issue 10): at most 60 characters, and a camera and a pipeline may share a name.

One rig for the module: the real CameraManager + PipelineManager (worker processes), the real
CamiocIoc on the session's CA port and a real PvaServer on free ports, a prefix as long as the
default ``CAMIOC:``. Cameras ``simulation`` and a long-named one; saved pipelines ``simulation``
(named after its camera, as cam_server sites do) and a long-named one; a private instance (UUID id).
Clients are the C tools (CA) and p4p (PVA).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass

import pytest
import pytest_asyncio
from ioc_support import CaTools, wait_for
from p4p.client.thread import Context

from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from camioc.model.instance_names import camera_pv_name, pipeline_pv_name
from camioc.model.pvnames import (
    DEFAULT_PREFIX,
    MAX_PV_NAME_LENGTH,
    PIPELINE_IMAGE_PLUGIN,
    camera_pv,
    image_pv,
    pipeline_pv,
    service_pv,
)
from tests.support.server import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIM = {"source": "simulation", "source_type": "simulation", "size_x": 64, "size_y": 48, "dtype": "uint16",
       "image_type": "static_beam", "frame_rate": 10.0, "no_client_timeout": 0}
LONG_CAMERA = "SARES20-CAMS142-M5-PROFILE-MONITOR-DOWNSTREAM"
LONG_PIPELINE = "SARES20-CAMS142-M5-PROFILE-MONITOR_sp_with_roi"
#: the long camera is calibrated: its pipeline's positions are not in pixels
CALIBRATION = {"reference_marker": [0, 0, 60, 40], "reference_marker_width": 100.0,
               "reference_marker_height": 100.0, "angle_horizontal": 0.0, "angle_vertical": 0.0}


@dataclass
class Rig:
    ioc: object
    pva: object
    prefix: str
    pipelines: PipelineManager
    private_id: str


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig(tmp_path_factory, ca_repeater, beacon_sink):
    from camioc.ioc.server import CamiocIoc
    from camioc.pva.server import PvaServer

    base = tmp_path_factory.mktemp("pvnames")
    cams, pipes = base / "camera_config", base / "pipeline_config"
    for folder in (cams, pipes):
        folder.mkdir()
    (cams / "simulation.json").write_text(json.dumps({"name": "simulation", **SIM}))
    (cams / f"{LONG_CAMERA}.json").write_text(json.dumps({"name": LONG_CAMERA, **SIM, "camera_calibration": CALIBRATION}))
    for pipeline, camera in (("simulation", "simulation"), (LONG_PIPELINE, LONG_CAMERA)):
        (pipes / f"{pipeline}.json").write_text(json.dumps({"name": pipeline, "camera_name": camera,
                                                            "no_client_timeout": 0}))
    start = random.randrange(46000, 52000, 200)
    cameras = CameraManager(ConfigStore(cams), hostname="127.0.0.1", port_range=(start, start + 100),
                            background_dir=base / "background_config")
    pipelines = PipelineManager(ConfigStore(pipes), cameras, BackgroundStore(base / "background_config"),
                                hostname="127.0.0.1", port_range=(start + 100, start + 200))
    # a prefix as long as the default one: the 60-character budget is the default prefix's
    prefix = f"T{uuid.uuid4().hex[:len(DEFAULT_PREFIX) - 2]}:"
    ioc = CamiocIoc(prefix, cameras, version="9.9.9-test", start_count=1, pipelines=pipelines,
                    result_publish_rate=20.0)
    with pytest.MonkeyPatch.context() as env:
        pva_port, pva_udp = free_port(), free_port()
        env.setenv("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")
        env.setenv("EPICS_PVAS_SERVER_PORT", str(pva_port))
        env.setenv("EPICS_PVAS_BROADCAST_PORT", str(pva_udp))
        env.setenv("EPICS_PVAS_AUTO_BEACON_ADDR_LIST", "NO")
        env.setenv("EPICS_PVAS_BEACON_ADDR_LIST", "127.0.0.1")
        pva = PvaServer()
        await pva.start()
    ioc.add_transport(pva)
    await ioc.start()
    try:
        await pipelines.get_instance_stream("simulation")
        await pipelines.get_instance_stream(LONG_PIPELINE)
        private_id, _, _ = await pipelines.create_instance({"camera_name": "simulation"})
        rig = Rig(ioc, pva, prefix, pipelines, private_id)
        rig.pva_conf = {"EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO",  # type: ignore
                        "EPICS_PVA_SERVER_PORT": str(pva_port), "EPICS_PVA_BROADCAST_PORT": str(pva_udp)}
        yield rig
    finally:
        await pipelines.close()
        await cameras.close()
        await ioc.stop()
        await pva.stop()


@pytest.fixture(scope="module")
def tools(ca_repeater) -> CaTools:
    return CaTools()


@pytest.fixture(scope="module")
def pva_client(rig):
    context = Context("pva", conf=rig.pva_conf, useenv=False)
    try:
        yield context
    finally:
        context.close()


def _served(rig: Rig) -> tuple[list[str], list[str]]:
    return rig.ioc.pv_names(), rig.pva.names()  # type: ignore[attr-defined]


async def test_every_served_pv_name_fits_in_60_characters(rig):
    """Cameras, saved pipelines and the private (UUID) instance: every CA and PVA name <= 60."""
    short = pipeline_pv_name(rig.private_id)
    assert short != rig.private_id and len(rig.private_id) == 36
    expected = [
        pipeline_pv(rig.prefix, short, "GoodRegion:FitX:Amplitude_RBV"),
        pipeline_pv(rig.prefix, pipeline_pv_name(LONG_PIPELINE), "CentroidX_RBV"),
        camera_pv(rig.prefix, camera_pv_name(LONG_CAMERA), "DetectorState_RBV"),
        image_pv(rig.prefix, short, "Pva1:Image"),
    ]

    def all_there():
        ca, pva = _served(rig)
        return all(name in ca or name in pva for name in expected)

    await wait_for(all_there, timeout=60, message=f"not all served: {expected}")
    ca, pva = _served(rig)
    too_long = sorted({name for name in [*ca, *pva] if len(name) > MAX_PV_NAME_LENGTH})
    assert not too_long, too_long
    # the budget is used, not wasted: the longest names are close to the limit
    assert max(map(len, ca)) >= MAX_PV_NAME_LENGTH - 3
    assert not any(rig.private_id in name for name in [*ca, *pva])


async def test_pv_names_are_served_in_PvNames_RBV_over_ca(rig, tools):
    """A client knowing a REST id (the private instance's UUID) finds its PV name."""
    async def names():
        text = await tools.try_get(service_pv(rig.prefix, "PvNames_RBV"), "-S")
        data = json.loads(text) if text else {}
        return data if rig.private_id in data.get("pipelines", {}) else None

    data = await wait_for(names, timeout=30, message="PvNames_RBV lacks the private instance")
    assert data["pipelines"][rig.private_id] == pipeline_pv_name(rig.private_id)
    assert data["pipelines"]["simulation"] == "simulation"
    assert data["cameras"][LONG_CAMERA] == camera_pv_name(LONG_CAMERA) != LONG_CAMERA
    short = data["pipelines"][rig.private_id]
    await wait_for(lambda: _is(tools, pipeline_pv(rig.prefix, short, "NDArrayPort_RBV"), "simulation"),
                   timeout=30, message="the private instance's PVs under its PV name")


async def _is(tools: CaTools, pv: str, expected: str) -> bool:
    return await tools.try_get(pv) == expected


async def test_a_camera_and_a_pipeline_of_the_same_name_are_both_served(rig, tools, pva_client):
    """Camera ``simulation`` keeps ``image1:``; pipeline ``simulation`` serves its image under ``image2:``."""
    camera_image = image_pv(rig.prefix, "simulation", "UniqueId_RBV")
    pipeline_image = image_pv(rig.prefix, "simulation", "UniqueId_RBV", PIPELINE_IMAGE_PLUGIN)
    await wait_for(lambda: _is(tools, pipeline_pv(rig.prefix, "simulation", "DetectorState_RBV"), "Acquire"),
                   timeout=60, message="pipeline simulation not acquiring")
    assert await tools.get(pipeline_pv(rig.prefix, "simulation", "NDArrayPort_RBV")) == "simulation"
    assert await tools.get(camera_pv(rig.prefix, "simulation", "MaxSizeX_RBV")) == "64"

    async def both_images() -> bool:
        ids = [await tools.try_get(pv) for pv in (camera_image, pipeline_image)]
        return all(value not in (None, "0") for value in ids)

    await wait_for(both_images, timeout=30, message="both images over CA")
    for plugin in ("image1:", PIPELINE_IMAGE_PLUGIN):
        name = image_pv(rig.prefix, "simulation", "Pva1:Image", plugin)
        # the client blocks: off the loop the in-process servers run on
        (value,) = await wait_for(lambda n=name: asyncio.to_thread(_pva_get, pva_client, n), timeout=30,
                                  message=f"{name} over PVA")
        assert value.shape == (48, 64) and value.dtype == "uint16"


def _pva_get(context: Context, name: str):
    try:
        value = context.get(name, timeout=2.0)
    except Exception:  # not (yet) served, or no frame yet: poll again
        return None
    return (value,) if getattr(value, "size", 0) else None  # a tuple: wait_for tests truthiness


async def test_positions_are_in_pixels_or_the_calibrated_unit(rig, tools, pva_client):
    """EGU of a position: ``px`` on an uncalibrated camera's pipeline, none claimed on a calibrated one's
    (cam_server's calibration names no unit); db/ declares it as ``$(XYEGU=px)``; PVA shows the same."""
    from camioc.model import dbgen

    calibrated = pipeline_pv_name(LONG_PIPELINE)
    plain = pipeline_pv(rig.prefix, "simulation", "CentroidX_RBV")
    other = pipeline_pv(rig.prefix, calibrated, "CentroidX_RBV")
    assert await tools.get(plain + ".EGU") == "px"
    assert await tools.get(other + ".EGU") == ""
    assert await tools.get(pipeline_pv(rig.prefix, calibrated, "Total_RBV.EGU")) == ""
    assert await tools.get(pipeline_pv(rig.prefix, calibrated, "ArraySize0_RBV.EGU")) == "px"
    parsed = await asyncio.to_thread(dbgen.parse_with_epics, [
        (dbgen.DEFAULT_OUTPUT / "camioc_pipeline.template", f"P={rig.prefix},ID=simulation"),
        (dbgen.DEFAULT_OUTPUT / "camioc_pipeline.template", f"P={rig.prefix},ID={calibrated},XYEGU="),
    ], ("RTYP", "EGU"))
    assert (parsed[plain]["EGU"], parsed[other]["EGU"]) == ("px", "")
    units = await asyncio.to_thread(lambda: pva_client.get(plain, timeout=5.0).raw["display"]["units"])
    assert units == "px"
