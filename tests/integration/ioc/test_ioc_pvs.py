"""The IOC serves every spec PV with its record fields, and matches the db/ templates (contract)."""

from __future__ import annotations

import asyncio
import json
import re

from ioc_support import ALL_METADATA, metadata_requests, parse_cainfo, same_field, wait_for

from camioc.model import dbgen
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, SERVICE_PVS
from camioc.model.pvnames import camera_pv, image_pv, service_pv
from camioc.model.records import DEFAULT_IMAGE_ELEMENTS

#: Fields each record type has (EPICS and caproto alike).
EGU_RECORDS = {"ai", "ao", "longin", "longout", "int64in", "waveform"}
PREC_RECORDS = {"ai", "ao", "waveform"}


def _camera_names(prefix: str, camera: str) -> list[str]:
    return [camera_pv(prefix, camera, s.name) for s in CAMERA_PVS] + [image_pv(prefix, camera, s.name) for s in IMAGE_PVS]


async def test_every_spec_pv_is_served(ioc, pv_prefix):
    expected = {service_pv(pv_prefix, s.name) for s in SERVICE_PVS}
    for camera in ("cam_a", "cam_b"):
        expected |= set(_camera_names(pv_prefix, camera))
    assert set(ioc.pv_names()) == expected


async def test_record_fields_answer_on_every_pv(ioc, ca, pv_prefix):
    specs = [(service_pv(pv_prefix, s.name), s) for s in SERVICE_PVS]
    specs += [(camera_pv(pv_prefix, "cam_a", s.name), s) for s in CAMERA_PVS]
    specs += [(image_pv(pv_prefix, "cam_a", s.name), s) for s in IMAGE_PVS]
    fields = [f"{name}.RTYP" for name, _ in specs] + [f"{name}.DESC" for name, _ in specs]
    result = await ca.caget("-t", *fields)
    assert result.returncode == 0, result.output
    values = result.stdout.splitlines()
    assert len(values) == 2 * len(specs)
    for index, (name, spec) in enumerate(specs):
        assert values[index] == spec.record, name
        assert values[len(specs) + index] == spec.desc, name


async def test_served_pvs_match_the_db_templates(ioc, ca, pv_prefix):
    """Contract test: EPICS' own parse of db/ (with this IOC's macros) vs what the IOC serves."""
    nelm = await ca.get(image_pv(pv_prefix, "cam_a", "ArrayData.NELM"))
    ftvl = await ca.get(image_pv(pv_prefix, "cam_a", "ArrayData.FTVL"))
    assert (int(nelm), ftvl) == (DEFAULT_IMAGE_ELEMENTS, "SHORT")
    db = dbgen.DEFAULT_OUTPUT
    parsed = await asyncio.to_thread(dbgen.parse_with_epics, [
        (db / "camioc_service.template", f"P={pv_prefix}"),
        (db / "camioc_camera.template", f"P={pv_prefix},CAM=cam_a"),
        (db / "camioc_image.template", f"P={pv_prefix},R=cam_a:image1:,FTVL={ftvl},NELM={nelm}"),
        (db / "camioc_camera.template", f"P={pv_prefix},CAM=cam_b"),
        (db / "camioc_image.template", f"P={pv_prefix},R=cam_b:image1:,FTVL={ftvl},NELM={nelm}"),
    ], ("RTYP", "DESC", "EGU", "PREC", "NELM", "FTVL", *ALL_METADATA))
    assert set(parsed) == set(ioc.pv_names())

    names = sorted(name for name in parsed if ":cam_b:" not in name)
    requests: list[tuple[str, str]] = []
    for name in names:
        record = parsed[name]["RTYP"]
        requests += [(name, "RTYP"), (name, "DESC")]
        if record in EGU_RECORDS:
            requests.append((name, "EGU"))
        if record in PREC_RECORDS:
            requests.append((name, "PREC"))
        if record == "waveform":
            requests += [(name, "NELM"), (name, "FTVL")]
        requests += metadata_requests(name, record)
    result = await ca.caget("-t", *(f"{name}.{field}" for name, field in requests), timeout=15.0)
    assert result.returncode == 0, result.output
    served = result.stdout.splitlines()
    assert len(served) == len(requests)
    mismatches = [(f"{name}.{field}", parsed[name][field], value)
                  for (name, field), value in zip(requests, served, strict=True)
                  if not same_field(parsed[name][field], value)]
    assert mismatches == [], "\n".join(map(str, mismatches))


async def test_native_types_and_metadata(ioc, ca, pv_prefix):
    info = parse_cainfo(await ca.cainfo(image_pv(pv_prefix, "cam_a", "ArrayData")))
    assert info["Native data type"] == "DBF_SHORT"
    assert info["Element count"] == str(DEFAULT_IMAGE_ELEMENTS)
    assert "no write" in info["Access"]
    info = parse_cainfo(await ca.cainfo(camera_pv(pv_prefix, "cam_a", "StatusMessage_RBV")))
    assert (info["Native data type"], info["Element count"]) == ("DBF_CHAR", "256")
    info = parse_cainfo(await ca.cainfo(camera_pv(pv_prefix, "cam_a", "BinX")))
    assert info["Native data type"] == "DBF_LONG"
    assert "write" in info["Access"] and "no write" not in info["Access"]
    ctrl = await ca.caget("-d", "DBR_CTRL_DOUBLE", camera_pv(pv_prefix, "cam_a", "ArrayRate_RBV"))
    assert re.search(r"Units:\s+Hz", ctrl.stdout) and re.search(r"Precision:\s+2", ctrl.stdout), ctrl.stdout
    ctrl = await ca.caget("-d", "DBR_CTRL_LONG", camera_pv(pv_prefix, "cam_a", "BinX"))
    assert re.search(r"Lo ctrl limit:\s+1", ctrl.stdout) and re.search(r"Hi ctrl limit:\s+256", ctrl.stdout), ctrl.stdout
    states = await ca.caget("-d", "DBR_CTRL_ENUM", camera_pv(pv_prefix, "cam_a", "DetectorState_RBV"))
    assert re.search(r"Enums:\s+\(11\)", states.stdout) and "[ 9] Disconnected" in states.stdout, states.stdout


async def test_service_pvs(ioc, ca, service, pv_prefix):
    assert await ca.get(service_pv(pv_prefix, "Version_RBV")) == "9.9.9-test"
    assert await ca.get(service_pv(pv_prefix, "START_CNT")) == "7"
    assert json.loads(await ca.get_text(service_pv(pv_prefix, "Cameras_RBV"))) == ["cam_a", "cam_b"]
    assert json.loads(await ca.get_text(service_pv(pv_prefix, "Cameras_RBV.$"))) == ["cam_a", "cam_b"]
    assert json.loads(await ca.get_text(service_pv(pv_prefix, "Instances_RBV"))) == []
    assert await ca.get(image_pv(pv_prefix, "cam_a", "PluginType_RBV")) == "NDPluginStdArrays"

    async def beats() -> int:
        return int(await ca.get(service_pv(pv_prefix, "HEARTBEAT")))

    first = await wait_for(beats, timeout=3, interval=0.1)
    await wait_for(lambda: _greater(beats, first), timeout=3, interval=0.1, message="HEARTBEAT does not count")
    assert re.fullmatch(r"0 days, 00:00:0\d", await ca.get(service_pv(pv_prefix, "UPTIME")))


async def _greater(read, value) -> bool:
    return await read() > value


async def test_scan_is_what_the_db_templates_declare(ioc, ca, pv_prefix):
    """Readbacks are I/O Intr (posted when they change), settings Passive: archivers rely on it."""
    result = await ca.caget("-t", camera_pv(pv_prefix, "cam_a", "ArrayRate_RBV.SCAN"),
                            camera_pv(pv_prefix, "cam_a", "BinX_RBV.SCAN"), camera_pv(pv_prefix, "cam_a", "BinX.SCAN"),
                            image_pv(pv_prefix, "cam_a", "ArrayData.SCAN"))
    assert result.stdout.splitlines() == ["I/O Intr", "I/O Intr", "Passive", "I/O Intr"], result.output
