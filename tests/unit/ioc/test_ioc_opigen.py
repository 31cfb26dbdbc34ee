"""``opi/`` screens: up to date, valid for their tool, and every PV they use is defined.

Offline checks of the generated files (the live ones, with a running camioc, PyDM opening the
``.ui`` files and CA/PVA connecting to every PV, are in ``tests/integration/screens/``):

- Phoebus ``.bob``: display 2.0.0, widget types, versions and property names from the allow-list
  derived from Phoebus' widget model (``tests/support/phoebus_schema.py``), XY plot axes/traces,
  actions, no top-level macros (a display's own ``P``/``R`` would override the caller's).
- PyDM ``.ui``: Qt Designer XML, every custom widget class declared with an importable header.
- Both: only the macros ``P`` and ``R``; every PV name, expanded, is a PV of the tables.
"""

from __future__ import annotations

import importlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from camioc.model import opigen, screens
from camioc.model.blocks import (
    BACKGROUND_EXTRAS,
    CAMERA_PVS,
    CAMERA_SETTINGS,
    IMAGE_PVS,
    PIPELINE_ARRAY_PVS,
    PIPELINE_PVS,
    PIPELINE_SETTINGS,
    SERVICE_PVS,
)
from camioc.model.instance_names import camera_pv_name, pipeline_pv_name
from camioc.model.pvnames import PIPELINE_IMAGE_PLUGIN, PVA_IMAGE, camera_pv, image_pv, pipeline_pv, service_pv
from tests.support import phoebus_schema
from tests.support.screen_files import bob_pvs, bob_widgets, macro_names, split_protocol, ui_channels

OPI = opigen.DEFAULT_OUTPUT
FILES = sorted(opigen.generate())
BOB = [name for name in FILES if name.endswith(".bob")]
UI = [name for name in FILES if name.endswith(".ui")]
P = "TST:"
#: R of each screen for the checks (the overview names its cameras and pipelines itself).
R = {"camioc_service": "", "camioc_camera": "cam:", "camioc_pipeline": "pipe:", "camioc_pipeline_image2": "cam:"}


def _defined_pvs() -> set[str]:
    """Every PV the tables define for a camera ``cam``, a pipeline ``pipe`` and the configured ones."""
    cameras = {"cam", *(camera_pv_name(c) for c in ("simulation", "simulation2"))}
    pipelines = {"pipe", pipeline_pv_name("simulation_sp")}
    names = {service_pv(P, s.name) for s in SERVICE_PVS}
    for owner in cameras:
        names |= {camera_pv(P, owner, s.name) for s in CAMERA_PVS}
        names |= {image_pv(P, owner, s.name) for s in IMAGE_PVS} | {image_pv(P, owner, PVA_IMAGE)}
    for owner in pipelines:
        names |= {pipeline_pv(P, owner, s.name) for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)}
        names |= {image_pv(P, owner, s.name) for s in IMAGE_PVS} | {image_pv(P, owner, PVA_IMAGE)}
    # a pipeline named like a camera (cam): its PVs beside the camera's, its image under image2:
    names |= {pipeline_pv(P, "cam", s.name) for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)}
    names |= {image_pv(P, "cam", s.name, PIPELINE_IMAGE_PLUGIN) for s in IMAGE_PVS}
    names.add(image_pv(P, "cam", PVA_IMAGE, PIPELINE_IMAGE_PLUGIN))
    return names


def _macros(file: str) -> dict[str, str]:
    return {"P": P, "R": R[Path(file).stem]}


def test_committed_screens_are_up_to_date():
    """Golden test: regenerate with ``python -m camioc.model.opigen`` after changing the device model."""
    assert opigen.stale(OPI) == [], "opi/ is stale: run python -m camioc.model.opigen"


def test_every_screen_in_both_formats():
    stems = {screen.stem for screen in screens.screens()}
    assert stems == {"camioc_service", "camioc_camera", "camioc_pipeline", "camioc_pipeline_image2"}
    assert set(FILES) == {f"{stem}{suffix}" for stem in stems for suffix in (".bob", ".ui")}


@pytest.mark.parametrize("file", FILES)
def test_only_the_macros_p_and_r(file: str):
    used = macro_names((OPI / file).read_text())
    assert used <= {"P", "R"}, used
    assert "P" in used


@pytest.mark.parametrize("file", BOB)
def test_phoebus_screen_against_the_allow_list(file: str):
    root = ET.parse(OPI / file).getroot()
    assert root.tag == "display" and root.get("version") == phoebus_schema.DISPLAY_VERSION
    assert root.find("macros") is None, "a display's own macros would override the caller's P and R"
    problems = []
    widgets = list(bob_widgets(OPI / file))
    assert len(widgets) > 10
    for widget in widgets:
        kind = widget.get("type")
        problems += phoebus_schema.widget_problems(kind, widget.get("version"), {child.tag for child in widget})
        for action in widget.findall("actions/action"):
            kind_of_action = action.get("type")
            assert kind_of_action in phoebus_schema.ACTIONS, kind_of_action
            assert {child.tag for child in action} <= phoebus_schema.ACTIONS[kind_of_action]
            if kind_of_action == "open_display":
                assert (OPI / action.findtext("file", "")).is_file()
                assert action.findtext("target") in phoebus_schema.OPEN_TARGETS
                assert {m.tag for m in action.find("macros") or []} == {"R"}
        if kind == "xyplot":
            axes = [widget.find("x_axis"), *widget.find("y_axes").findall("y_axis")]
            assert len(axes) >= 2
            problems += [f"axis property {c.tag}" for axis in axes for c in axis if c.tag not in phoebus_schema.XY_AXIS]
            traces = widget.find("traces").findall("trace")
            assert traces and all(trace.findtext("y_pv") for trace in traces)
            problems += [f"trace property {c.tag}" for t in traces for c in t if c.tag not in phoebus_schema.XY_TRACE]
    assert problems == []


def test_the_allow_list_catches_a_typo():
    assert phoebus_schema.widget_problems("textupdate", "2.0.0", {"name", "x", "y", "width", "height", "pv"})
    assert phoebus_schema.widget_problems("textupdates", "2.0.0", {"name"})
    assert phoebus_schema.widget_problems("group", "2.0.0", {"name", "x", "y", "width", "height"})


@pytest.mark.parametrize("file", UI)
def test_pydm_screen_is_designer_xml_with_pydm_widgets(file: str):
    root = ET.parse(OPI / file).getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    declared = {c.findtext("class"): c.findtext("header") for c in root.iter("customwidget")}
    for cls, header in declared.items():
        assert hasattr(importlib.import_module(header), cls), (cls, header)
    used = {w.get("class") for w in root.iter("widget")}
    assert used - declared.keys() <= {"QWidget", "QLabel", "QGroupBox"}
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "widget names must be unique in a .ui"
    for button in root.iter("widget"):
        if button.get("class") == "PyDMRelatedDisplayButton":
            props = {p.get("name"): p for p in button.iter("property")}
            (target,) = [s.text for s in props["filenames"].iter("string")]
            assert (OPI / str(target)).is_file()
            (macros,) = [json.loads(s.text or "") for s in props["macros"].iter("string")]
            assert set(macros) == {"R"}


@pytest.mark.parametrize("file", FILES)
def test_every_pv_on_a_screen_is_defined(file: str):
    macros = _macros(file)
    used = bob_pvs(OPI / file, macros) if file.endswith(".bob") else ui_channels(OPI / file, macros)
    assert used, "a screen without PVs"
    names = set()
    for address in used:
        protocol, name = split_protocol(address)
        assert (protocol == "pva") == name.endswith(PVA_IMAGE), address
        names.add(name)
    defined = _defined_pvs()
    assert names <= defined, f"undefined PVs: {sorted(names - defined)}"


def test_both_renderings_name_the_same_pvs():
    for screen in screens.screens(["simulation", "simulation2"], ["simulation_sp"]):
        macros = _macros(screen.stem)
        bob = {split_protocol(a)[1] for a in bob_pvs(OPI / f"{screen.stem}.bob", macros)}
        ui = {split_protocol(a)[1] for a in ui_channels(OPI / f"{screen.stem}.ui", macros)}
        described = {ref.expand(P, macros["R"]) for ref in screen.pvs()}
        assert bob == ui == described, screen.stem


def test_a_screen_cannot_name_a_pv_that_is_not_served():
    with pytest.raises(KeyError, match="serves no PV"):
        screens.camera("no_such_attribute")
    with pytest.raises(KeyError):
        screens.PvRef("pipeline", "pva_image", pva=True)


def test_camera_screen():
    camera = screens.camera_screen()
    suffixes = {ref.suffix for ref in camera.pvs()}
    assert "image1:Pva1:Image" in suffixes
    for spec in CAMERA_SETTINGS.pvs():  # every transform setting with its readback
        assert f"cam1:{spec.name}" in suffixes, spec.name
    for name in (
        "Acquire",
        "Acquire_RBV",
        "DetectorState_RBV",
        "StatusMessage_RBV",
        "StreamAddress_RBV",
        "Clients_RBV",
        "ArrayRate_RBV",
        "ArrayCounter_RBV",
        "ArraySize0_RBV",
        "DataType_RBV",
    ):
        assert f"cam1:{name}" in suffixes, name
    text = (OPI / "camioc_camera.bob").read_text()
    assert "<pv_name>pva://$(P)$(R)image1:Pva1:Image</pv_name>" in text
    ui = (OPI / "camioc_camera.ui").read_text()
    assert "<string>pva://${P}${R}image1:Pva1:Image</string>" in ui
    assert "PyDMImageView::WidthFirst" in ui
    writes = {
        (a.findtext("value"), w.findtext("pv_name"))
        for w in bob_widgets(OPI / "camioc_camera.bob")
        for a in w.findall("actions/action")
        if a.get("type") == "write_pv"
    }
    assert {("1", "$(P)$(R)cam1:Acquire"), ("0", "$(P)$(R)cam1:Acquire")} <= writes


def test_pipeline_screen():
    pipeline = screens.pipeline_screen()
    suffixes = {ref.suffix for ref in pipeline.pvs()}
    for spec in (*PIPELINE_SETTINGS.pvs(), *BACKGROUND_EXTRAS):  # every setting with its readback
        assert spec.name in suffixes, spec.name
    for name in (
        "CentroidX_RBV",
        "FitY:Offset_RBV",
        "GoodRegion:FitX:Mean_RBV",
        "Slice14:Total_RBV",
        "Coupling_RBV",
        "StatusMessage_RBV",
        "DetectorState_RBV",
        "image1:Pva1:Image",
    ):
        assert name in suffixes, name
    traces = {
        (t.findtext("x_pv"), t.findtext("y_pv"))
        for w in bob_widgets(OPI / "camioc_pipeline.bob")
        if w.get("type") == "xyplot"
        for t in w.iter("trace")
    }
    assert traces == {
        ("$(P)$(R)AxisX_RBV", "$(P)$(R)ProfileX_RBV"),
        ("$(P)$(R)AxisX_RBV", "$(P)$(R)FitX:Curve_RBV"),
        ("$(P)$(R)AxisY_RBV", "$(P)$(R)ProfileY_RBV"),
        ("$(P)$(R)AxisY_RBV", "$(P)$(R)FitY:Curve_RBV"),
    }
    writes = {
        (a.findtext("value"), w.findtext("pv_name"))
        for w in bob_widgets(OPI / "camioc_pipeline.bob")
        for a in w.findall("actions/action")
        if a.get("type") == "write_pv"
    }
    assert {
        ("1", "$(P)$(R)EnableCallbacks"),
        ("0", "$(P)$(R)EnableCallbacks"),
        ("1", "$(P)$(R)SaveBackground"),
    } <= writes


def test_service_screen_lists_the_configured_cameras_and_pipelines():
    root = ET.parse(OPI / "camioc_service.bob").getroot()
    opens = {
        (a.findtext("file"), a.find("macros").findtext("R"))
        for a in root.iter("action")
        if a.get("type") == "open_display"
    }
    assert opens == {
        ("camioc_camera.bob", "simulation:"),
        ("camioc_camera.bob", "simulation2:"),
        ("camioc_pipeline.bob", "simulation_sp:"),
    }
    writes = {
        w.findtext("pv_name")
        for w in root.iter("widget")
        for a in w.findall("actions/action")
        if a.get("type") == "write_pv"
    }
    assert writes == {"$(P)StopAll"}
    pvs = bob_pvs(OPI / "camioc_service.bob", {"P": P})
    assert {
        f"{P}simulation:cam1:DetectorState_RBV",
        f"{P}simulation:cam1:ArrayRate_RBV",
        f"{P}simulation:cam1:Clients_RBV",
        f"{P}simulation_sp:DetectorState_RBV",
        f"{P}Instances_RBV",
    } <= pvs


def test_overview_for_another_config_folder(tmp_path: Path):
    base = tmp_path / "configs"
    (base / "camera_config").mkdir(parents=True)
    (base / "camera_config" / "a_very_long_camera_name_that_does_not_fit_in_a_pv_name.json").write_text("{}")
    out = tmp_path / "opi"
    assert opigen.main(["--output", str(out), "--config-base", str(base)]) == 0
    assert opigen.main(["--output", str(out), "--config-base", str(base), "--check"]) == 0
    assert opigen.main(["--output", str(out), "--check"]) == 1  # the shipped configs' overview differs
    short = camera_pv_name("a_very_long_camera_name_that_does_not_fit_in_a_pv_name")
    assert short != "a_very_long_camera_name_that_does_not_fit_in_a_pv_name"
    assert f"<R>{short}:</R>" in (out / "camioc_service.bob").read_text()
    assert "Pipelines" not in (out / "camioc_service.ui").read_text()  # no saved pipeline, no group


def _box(widget: ET.Element) -> tuple[int, int, int, int]:
    return tuple(int(widget.findtext(key, "0")) for key in ("x", "y", "width", "height"))  # type: ignore[return-value]


@pytest.mark.parametrize("file", BOB)
def test_phoebus_layout_has_no_overlaps(file: str):
    """Siblings do not overlap and a group's children fit inside it (Phoebus places what it is told)."""

    def check(parent: ET.Element, width: int, height: int) -> list[str]:
        children = parent.findall("widget")
        problems = []
        for child in children:
            x, y, w, h = _box(child)
            if x < 0 or y < 0 or x + w > width or y + h > height:
                problems.append(f"{child.findtext('name')} outside {parent.findtext('name')}")
            if child.get("type") == "group":
                problems += check(child, w, h)
        for index, a in enumerate(children):
            ax, ay, aw, ah = _box(a)
            for b in children[index + 1 :]:
                bx, by, bw, bh = _box(b)
                if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                    problems.append(f"{a.findtext('name')} overlaps {b.findtext('name')}")
        return problems

    root = ET.parse(OPI / file).getroot()
    assert check(root, int(root.findtext("width", "0")), int(root.findtext("height", "0"))) == []


def test_a_pipeline_named_like_a_camera_opens_the_image2_screen(tmp_path: Path):
    """cam_server sites name pipelines after their camera: such a pipeline's image is under image2:."""
    image2 = {ref.suffix for ref in screens.pipeline_screen(PIPELINE_IMAGE_PLUGIN).pvs() if ref.block == "image"}
    assert image2 == {"image2:Pva1:Image"}
    base = tmp_path / "configs"
    for kind, name in (("camera_config", "cam"), ("pipeline_config", "cam"), ("pipeline_config", "other")):
        (base / kind).mkdir(parents=True, exist_ok=True)
        (base / kind / f"{name}.json").write_text("{}")
    overview = opigen.generate(base)["camioc_service.bob"]
    opens = {
        (a.findtext("file"), a.findtext("macros/R"))
        for a in ET.fromstring(overview).iter("action")
        if a.get("type") == "open_display"
    }
    assert opens == {
        ("camioc_camera.bob", "cam:"),
        ("camioc_pipeline_image2.bob", "cam:"),
        ("camioc_pipeline.bob", "other:"),
    }
