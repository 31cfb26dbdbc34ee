"""``opi/`` Phoebus screens: up to date, structurally valid, and every PV they use exists.

No Phoebus runtime can be installed here, so the files are validated offline the way the display
builder reads them (reference/epics-conventions.md §3.4): well-formed XML, ``display`` version
2.0.0, known widget types and versions, only properties those widgets have (Phoebus silently skips
unknown ones; the XY plot's axes and traces too), every PV name (``pv_name``, trace ``x_pv``/``y_pv``)
a PV the spec defines once macros are expanded, no top-level ``P``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from camioc.model import opigen
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, PIPELINE_ARRAY_PVS, PIPELINE_PVS, SERVICE_PVS
from camioc.model.pvnames import camera_pv, image_pv, pipeline_pv, service_pv

OPI = opigen.DEFAULT_OUTPUT
FILES = sorted(opigen.generate())
MACROS = {"P": "TST:", "CAM": "cam", "ID": "pipe"}

COMMON = {"name", "x", "y", "width", "height", "tooltip", "rules", "actions", "visible", "class", "font",
          "foreground_color", "background_color", "scripts"}
#: Property elements per widget type (from phoebus' *Widget.java descriptors; the subset we use).
ALLOWED = {
    "label": COMMON | {"text", "horizontal_alignment", "vertical_alignment", "transparent"},
    "textupdate": COMMON | {"pv_name", "format", "precision", "show_units", "border_alarm_sensitive",
                            "horizontal_alignment"},
    "textentry": COMMON | {"pv_name", "format", "precision", "show_units", "multi_line"},
    "combo": COMMON | {"pv_name", "items", "items_from_pv", "editable"},
    "led": COMMON | {"pv_name", "bit", "on_color", "off_color", "on_label", "off_label", "square"},
    "action_button": COMMON | {"pv_name", "text"},
    "image": COMMON | {"pv_name", "data_width", "data_height", "unsigned", "autoscale", "color_map",
                       "minimum", "maximum", "show_toolbar", "color_mode", "interpolation"},
    "xyplot": COMMON | {"title", "title_font", "show_toolbar", "show_legend", "x_axis", "y_axes", "traces"},
}
#: XY plot parts (phoebus XYPlotWidget / AxisWidgetProperty / TraceWidgetProperty).
AXIS = {"title", "autoscale", "log_scale", "minimum", "maximum", "show_grid", "title_font", "scale_font",
        "visible", "color", "on_right"}
TRACE = {"name", "x_pv", "y_pv", "err_pv", "axis", "trace_type", "color", "line_width", "line_style", "point_type",
         "point_size", "visible"}


def _defined_pvs() -> set[str]:
    names = {service_pv(MACROS["P"], s.name) for s in SERVICE_PVS}
    names |= {camera_pv(MACROS["P"], MACROS["CAM"], s.name) for s in CAMERA_PVS}
    names |= {image_pv(MACROS["P"], MACROS["CAM"], s.name) for s in IMAGE_PVS}
    names |= {pipeline_pv(MACROS["P"], MACROS["ID"], s.name) for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)}
    names |= {image_pv(MACROS["P"], MACROS["ID"], s.name) for s in IMAGE_PVS}
    return names


def _expand(text: str, macros: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name, _, default = match.group(1).partition("=")
        if name in macros:
            return macros[name]
        if default:
            return default
        raise AssertionError(f"unresolved macro $({name}) in {text!r}")

    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\$\(([^()]+)\)", replace, text)
    return text


def test_committed_screens_are_up_to_date():
    """Golden test: regenerate with ``python -m camioc.model.opigen`` after changing the device model."""
    assert opigen.stale(OPI) == [], "opi/ is stale: run python -m camioc.model.opigen"


@pytest.mark.parametrize("file", FILES)
def test_screen_structure(file: str):
    root = ET.parse(OPI / file).getroot()
    assert root.tag == "display"
    assert root.get("version") == "2.0.0"
    top_macros = root.find("macros")
    assert top_macros is None or top_macros.find("P") is None, "a display's own P would override the caller's"
    widgets = list(root.iter("widget"))
    assert widgets
    for widget in widgets:
        kind = widget.get("type")
        assert kind in ALLOWED, kind
        assert widget.get("version") == opigen.WIDGET_VERSIONS[kind]
        children = {child.tag for child in widget}
        assert {"name", "x", "y", "width", "height"} <= children
        assert children <= ALLOWED[kind], f"{kind}: unknown properties {children - ALLOWED[kind]}"
        for action in widget.iter("action"):
            assert action.get("type") in ("write_pv", "open_display")
            if action.get("type") == "open_display":
                assert (OPI / action.findtext("file")).is_file()
        if kind == "xyplot":
            axes = [widget.find("x_axis"), *widget.find("y_axes").findall("y_axis")]
            assert len(axes) >= 2 and {child.tag for axis in axes for child in axis} <= AXIS
            traces = widget.find("traces").findall("trace")
            assert traces
            for trace in traces:
                assert {child.tag for child in trace} <= TRACE
                assert trace.findtext("y_pv")


@pytest.mark.parametrize("file", FILES)
def test_every_pv_on_a_screen_is_defined(file: str):
    defined = _defined_pvs()
    root = ET.parse(OPI / file).getroot()
    used = set()
    for widget in root.iter("widget"):
        own = widget.findtext("pv_name")
        macros = dict(MACROS, pv_name=_expand(own, MACROS) if own else "")
        for element in widget.iter():
            if element.tag in ("pv_name", "x_pv", "y_pv", "err_pv") and element.text:
                used.add(_expand(element.text, macros))
    assert used, "a screen without PVs"
    assert used <= defined, f"undefined PVs: {sorted(used - defined)}"


def test_camera_screen_image_widget():
    root = ET.parse(OPI / "camioc_camera.bob").getroot()
    (image,) = [w for w in root.iter("widget") if w.get("type") == "image"]
    assert image.findtext("pv_name") == "$(P)$(CAM):image1:ArrayData"
    assert image.findtext("unsigned") == "true"
    rules = {rule.get("prop_id"): rule for rule in image.iter("rule")}
    assert rules["data_width"].find("pv_name").text == "$(P)$(CAM):image1:ArraySize0_RBV"
    assert rules["data_height"].find("pv_name").text == "$(P)$(CAM):image1:ArraySize1_RBV"
    assert rules["data_width"].get("out_exp") == "true"
    writes = {(a.findtext("value"), _expand(w.findtext("pv_name"), MACROS))
              for w in root.iter("widget") for a in w.iter("action") if a.get("type") == "write_pv"}
    assert {("1", "TST:cam:cam1:Acquire"), ("0", "TST:cam:cam1:Acquire")} <= writes


def test_camera_screen_shows_every_setting_and_readback():
    text = (OPI / "camioc_camera.bob").read_text()
    for spec in CAMERA_PVS:
        assert f"$(P)$(CAM):cam1:{spec.name}<" in text, spec.name


def test_generated_files_match_written(tmp_path: Path):
    opigen.write(tmp_path)
    assert opigen.stale(tmp_path) == []
    assert opigen.main(["--output", str(tmp_path), "--check"]) == 0


def test_pipeline_screen():
    root = ET.parse(OPI / "camioc_pipeline.bob").getroot()
    text = (OPI / "camioc_pipeline.bob").read_text()
    for spec in PIPELINE_PVS:
        if spec.writable:  # every setting with its readback
            assert f"$(P)$(ID):{spec.name}<" in text, spec.name
            assert spec.name == "SaveBackground" or f"$(P)$(ID):{spec.name}_RBV<" in text, spec.name
    for name in ("CentroidX_RBV", "FitY:Offset_RBV", "GoodRegion:FitX:Mean_RBV", "Slice14:Total_RBV", "Coupling_RBV"):
        assert f"$(P)$(ID):{name}<" in text, name
    (image,) = [w for w in root.iter("widget") if w.get("type") == "image"]
    assert image.findtext("pv_name") == "$(P)$(ID):image1:ArrayData"
    rules = {rule.get("prop_id"): rule for rule in image.iter("rule")}
    assert rules["data_width"].find("pv_name").text == "$(P)$(ID):image1:ArraySize0_RBV"
    traces = {(t.findtext("x_pv"), t.findtext("y_pv")) for w in root.iter("widget") if w.get("type") == "xyplot"
              for t in w.iter("trace")}
    assert traces == {("$(P)$(ID):AxisX_RBV", "$(P)$(ID):ProfileX_RBV"), ("$(P)$(ID):AxisX_RBV", "$(P)$(ID):FitX:Curve_RBV"),
                      ("$(P)$(ID):AxisY_RBV", "$(P)$(ID):ProfileY_RBV"), ("$(P)$(ID):AxisY_RBV", "$(P)$(ID):FitY:Curve_RBV")}
    writes = {(a.findtext("value"), _expand(w.findtext("pv_name"), MACROS))
              for w in root.iter("widget") for a in w.iter("action") if a.get("type") == "write_pv"}
    assert {("1", "TST:pipe:EnableCallbacks"), ("0", "TST:pipe:EnableCallbacks"),
            ("1", "TST:pipe:SaveBackground")} <= writes


def test_service_screen_opens_the_camera_and_pipeline_screens():
    root = ET.parse(OPI / "camioc_service.bob").getroot()
    files = {action.findtext("file") for action in root.iter("action") if action.get("type") == "open_display"}
    assert files == {"camioc_camera.bob", "camioc_pipeline.bob"}
