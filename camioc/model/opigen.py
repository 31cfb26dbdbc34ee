"""Generate camioc's Phoebus display files (``opi/*.bob``) from :mod:`camioc.model.blocks`.

- ``camioc_service.bob``: the service overview (health, lists, StopAll) and a button that opens a
  camera's screen.
- ``camioc_camera.bob``: one camera: Start/Stop, state, stream, geometry, transforms (setting +
  readback per row, straight from the spec table), CA image publishing, and the image itself (an
  ``image`` widget on ``image1:ArrayData`` whose ``data_width``/``data_height`` follow
  ``ArraySize0_RBV``/``ArraySize1_RBV`` through rules; ``unsigned`` true, switched off by a rule
  for the signed data types).
- ``camioc_pipeline.bob``: one pipeline: Start/Stop (``EnableCallbacks``), state, stream and
  counters; every setting with its readback (threshold, ROI, background with Save, good region,
  slices, averaging, rate, pause); the results (scalars, Gaussian fits, slices as grids); the
  profiles (``xyplot``: ``ProfileX_RBV``/``FitX:Curve_RBV`` over ``AxisX_RBV``, same for Y) and the
  processed image (``$(ID):image1:``, as on the camera screen).

Macros: ``P`` (service prefix), ``CAM`` (camera name) and ``ID`` (pipeline id) come from the caller
(``phoebus -resource "file:/.../camioc_camera.bob?P=CAMIOC:&CAM=simulation"``); the files define no
top-level ``P`` (a display's own macros would override the caller's). Regenerate with
``python -m camioc.model.opigen`` (``--check`` fails if the files are stale).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from camioc.model.blocks import (
    BACKGROUND_EXTRAS,
    CAMERA_PVS,
    CAMERA_SETTINGS,
    IMAGE_PVS,
    MAX_SLICES,
    PIPELINE_PVS,
    PIPELINE_RESULT_PVS,
    PIPELINE_SETTINGS,
    SERVICE_PVS,
)
from camioc.model.generated import generator_main, stale_files, write_files
from camioc.model.pvnames import CAMERA_DRIVER, IMAGE_PLUGIN
from camioc.model.records import DATA_TYPES, PVDef, spec_by_name
from camioc.model.settings import DeviceSettings

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "opi"

#: Widget versions Phoebus writes today (a file with a newer major version only logs a warning).
WIDGET_VERSIONS = {
    "label": "2.0.0",
    "textupdate": "2.0.0",
    "textentry": "3.0.0",
    "combo": "2.0.0",
    "led": "2.0.0",
    "action_button": "3.0.0",
    "group": "3.0.0",
    "image": "2.0.0",
    "xyplot": "3.0.0",
}
#: Phoebus text format "STRING" (shows CHAR waveforms as text).
FORMAT_STRING = "6"

SERVICE = "$(P)"
CAMERA = f"$(P)$(CAM):{CAMERA_DRIVER}"
IMAGE = f"$(P)$(CAM):{IMAGE_PLUGIN}"
PIPELINE = "$(P)$(ID):"
PIPELINE_IMAGE = f"$(P)$(ID):{IMAGE_PLUGIN}"

ROW = 24
LABEL_W = 230
VALUE_W = 150
MARGIN = 10


class Display:
    """A ``<display>`` being built, with a cursor for row layout."""

    def __init__(self, name: str, width: int, height: int) -> None:
        self.root = ET.Element("display", version="2.0.0")
        _text(self.root, "name", name)
        self._width = _text(self.root, "width", str(width))
        self._height = _text(self.root, "height", str(height))
        self.y = MARGIN
        self._count = 0

    def widget(self, kind: str, x: int, y: int, width: int, height: int, parent: ET.Element | None = None, /,
               name: str | None = None, **props: str) -> ET.Element:
        """A ``<widget>`` in ``parent`` (default: the display); ``props`` are its property elements.

        ``parent`` is positional-only, so a ``**props`` mapping cannot fill it.
        """
        self._count += 1
        element = ET.SubElement(parent if parent is not None else self.root, "widget", type=kind,
                                version=WIDGET_VERSIONS[kind])
        _text(element, "name", name or f"{kind}_{self._count}")
        for key, value in props.items():
            _text(element, key, value)
        for key, value in (("x", x), ("y", y), ("width", width), ("height", height)):
            _text(element, key, str(value))
        return element

    def heading(self, text: str, x: int = MARGIN, width: int = 560) -> None:
        self.y += 6
        label = self.widget("label", x, self.y, width, ROW, text=text)
        font = ET.SubElement(label, "font")
        ET.SubElement(font, "font", family="Liberation Sans", style="BOLD", size="14")
        self.y += ROW + 4

    def fit(self, min_width: int, min_height: int) -> None:
        width, height = self._width.text, self._height.text
        assert width is not None and height is not None  # set in __init__
        self._width.text = str(max(int(width), min_width))
        self._height.text = str(max(int(height), min_height, self.y + MARGIN))

    def xml(self) -> str:
        ET.indent(self.root, space="  ")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(self.root, encoding="unicode") + "\n"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _tooltip(spec: PVDef) -> str:
    return f"{spec.desc} ($(pv_name))"


def _readback(display: Display, prefix: str, spec: PVDef, x: int, width: int = VALUE_W) -> None:
    props = {"pv_name": prefix + spec.name, "tooltip": _tooltip(spec)}
    if spec.is_text:
        props["format"] = FORMAT_STRING
    if spec.record == "bi":
        display.widget("led", x, display.y + 2, 20, 20, **props)
        display.widget("textupdate", x + 26, display.y, width - 26, ROW - 4, **props)
    else:
        props["show_units"] = "true"
        display.widget("textupdate", x, display.y, width, ROW - 4, **props)


def _setting(display: Display, prefix: str, spec: PVDef, x: int) -> None:
    props = {"pv_name": prefix + spec.name, "tooltip": _tooltip(spec)}
    if spec.is_text:
        props["format"] = FORMAT_STRING
    if spec.is_enum:
        display.widget("combo", x, display.y, VALUE_W, ROW - 2, **props)
    else:
        display.widget("textentry", x, display.y, VALUE_W, ROW - 2, show_units="true", **props)


def spec_rows(display: Display, prefix: str, table: tuple[PVDef, ...], names: list[str], x0: int = MARGIN) -> None:
    """One row per PV: setting + readback for pairs, readback only for read-only PVs."""
    specs = spec_by_name(table)
    for name in names:
        spec = specs[name]
        display.widget("label", x0, display.y, LABEL_W, ROW - 4, text=spec.desc)
        x = x0 + LABEL_W + 6
        if spec.writable:
            _setting(display, prefix, spec, x)
            rbv = specs.get(f"{name}_RBV")
            if rbv is not None:
                _readback(display, prefix, rbv, x + VALUE_W + 6)
        else:
            width = 2 * VALUE_W + 6 if spec.is_text else VALUE_W
            _readback(display, prefix, spec, x, width)
        display.y += ROW


def spec_grid(display: Display, prefix: str, x0: int, columns: list[str], rows: list[tuple[str, list[str]]],
              width: int = 95) -> None:
    """A table of readbacks: a header of ``columns``, then per row a label and one PV per column."""
    label_w = 140
    for index, column in enumerate(columns):
        display.widget("label", x0 + label_w + 6 + index * (width + 4), display.y, width, ROW - 4, text=column)
    display.y += ROW
    specs = spec_by_name(PIPELINE_PVS)
    for label, names in rows:
        display.widget("label", x0, display.y, label_w, ROW - 4, text=label)
        for index, name in enumerate(names):
            spec = specs[name]
            display.widget("textupdate", x0 + label_w + 6 + index * (width + 4), display.y, width, ROW - 4,
                           pv_name=prefix + name, tooltip=_tooltip(spec))
        display.y += ROW


def _write_button(display: Display, x: int, width: int, pv: str, value: str, text: str) -> None:
    button = display.widget("action_button", x, display.y, width, ROW + 6, text=text, pv_name=pv,
                            tooltip=f"Write {value} to $(pv_name)")
    actions = ET.SubElement(button, "actions")
    action = ET.SubElement(actions, "action", type="write_pv")
    _text(action, "pv_name", "$(pv_name)")
    _text(action, "value", value)
    _text(action, "description", text)


def _rule(parent: ET.Element, name: str, prop: str, pv: str, expressions: list[tuple[str, str | None]]) -> None:
    """A Phoebus rule: ``expressions`` = [(bool_exp, value or None for out_exp=pv0)]."""
    out_exp = expressions[0][1] is None
    rule = ET.SubElement(parent, "rule", name=name, prop_id=prop, out_exp="true" if out_exp else "false")
    for condition, value in expressions:
        exp = ET.SubElement(rule, "exp", bool_exp=condition)
        if value is None:
            _text(exp, "expression", "pv0")
        else:
            _text(exp, "value", value)
    ET.SubElement(rule, "pv_name", trigger="true").text = pv


def image_widget(display: Display, x: int, y: int, width: int, height: int, prefix: str = IMAGE) -> ET.Element:
    image = display.widget("image", x, y, width, height, name="Image",
                           pv_name=f"{prefix}ArrayData", data_width="320", data_height="240",
                           unsigned="true", autoscale="true", show_toolbar="true",
                           tooltip="$(pv_name): image1:ArrayData shaped by ArraySize0/1_RBV")
    rules = ET.SubElement(image, "rules")
    _rule(rules, "width from ArraySize0_RBV", "data_width", f"{prefix}ArraySize0_RBV", [("pv0 > 0", None)])
    _rule(rules, "height from ArraySize1_RBV", "data_height", f"{prefix}ArraySize1_RBV", [("pv0 > 0", None)])
    signed = " || ".join(f"pv0 == {DATA_TYPES.index(t)}" for t in ("Int8", "Int16", "Int32", "Int64"))
    _rule(rules, "signed data types", "unsigned", f"{prefix}DataType_RBV", [(signed, "false")])
    return image


#: Trace colours (Phoebus' default blue, then red).
_TRACE_COLORS = ((0, 0, 255), (255, 0, 0))


def xyplot_widget(display: Display, x: int, y: int, width: int, height: int, title: str, x_title: str,
                  traces: list[tuple[str, str, str]]) -> ET.Element:
    """A Phoebus XY plot; ``traces`` = [(name, x_pv, y_pv)] (waveforms, y over x)."""
    plot = display.widget("xyplot", x, y, width, height, name=title, title=title, show_toolbar="false",
                          show_legend="true")
    x_axis = ET.SubElement(plot, "x_axis")
    _text(x_axis, "title", x_title)
    _text(x_axis, "autoscale", "true")
    y_axes = ET.SubElement(plot, "y_axes")
    y_axis = ET.SubElement(y_axes, "y_axis")
    _text(y_axis, "title", "")
    _text(y_axis, "autoscale", "true")
    elements = ET.SubElement(plot, "traces")
    for (name, x_pv, y_pv), (red, green, blue) in zip(traces, _TRACE_COLORS, strict=False):
        trace = ET.SubElement(elements, "trace")
        _text(trace, "name", name)
        _text(trace, "x_pv", x_pv)
        _text(trace, "y_pv", y_pv)
        _text(trace, "err_pv", "")
        _text(trace, "axis", "0")
        _text(trace, "trace_type", "1")
        color = ET.SubElement(trace, "color")
        ET.SubElement(color, "color", red=str(red), green=str(green), blue=str(blue))
        _text(trace, "line_width", "1")
        _text(trace, "point_type", "0")
        _text(trace, "point_size", "4")
        _text(trace, "visible", "true")
    return plot


def camera_display() -> str:
    display = Display("camioc camera $(CAM)", 1260, 700)
    title = display.widget("label", MARGIN, display.y, 1200, 30, text="camioc camera $(CAM)  ($(P)$(CAM):)")
    font = ET.SubElement(title, "font")
    ET.SubElement(font, "font", family="Liberation Sans", style="BOLD", size="18")
    display.y += 36

    display.heading("Acquisition")
    _write_button(display, MARGIN, 110, f"{CAMERA}Acquire", "1", "Start")
    _write_button(display, MARGIN + 120, 110, f"{CAMERA}Acquire", "0", "Stop")
    acquire_rbv = spec_by_name(CAMERA_PVS)["Acquire_RBV"]
    _readback(display, CAMERA, acquire_rbv, MARGIN + LABEL_W + 6 + VALUE_W + 6)
    display.y += ROW + 10
    spec_rows(display, CAMERA, CAMERA_PVS, ["DetectorState_RBV", "StatusMessage_RBV"])

    display.heading("Stream")
    spec_rows(display, CAMERA, CAMERA_PVS,
              ["StreamAddress_RBV", "Clients_RBV", "ArrayCounter_RBV", "ArrayRate_RBV", "UniqueId_RBV"])

    display.heading("Geometry")
    spec_rows(display, CAMERA, CAMERA_PVS,
              ["ArraySize0_RBV", "ArraySize1_RBV", "MaxSizeX_RBV", "MaxSizeY_RBV", "DataType_RBV", "ColorMode_RBV"])

    display.heading("Transforms (setting, in force)")
    spec_rows(display, CAMERA, CAMERA_PVS, setting_rows(CAMERA_SETTINGS))

    display.heading("Image on Channel Access")
    spec_rows(display, IMAGE, IMAGE_PVS, ["EnableCallbacks", "MinCallbackTime", "ArrayCounter_RBV", "UniqueId_RBV"])

    image_widget(display, 600, 56, 640, 512)
    display.fit(1260, 580)
    return display.xml()


PIPELINE_STATUS_ROWS = ["DetectorState_RBV", "StatusMessage_RBV", "NDArrayPort_RBV", "ReadOnly_RBV",
                        "StreamAddress_RBV", "ArrayCounter_RBV", "ArrayRate_RBV", "ExecutionTime_RBV",
                        "DroppedArrays_RBV", "UniqueId_RBV"]
#: Results shown as grids (Gaussian fits, slices) rather than one row each.
_GRID_RESULT = re.compile(r"(GoodRegion:)?Fit[XY]:|Slice\d+:")


def setting_rows(settings: DeviceSettings, extras: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """One row per setting of the device model, in its order (``extras``: rows after a config key)."""
    rows: list[str] = []
    for setting in settings.settings:
        rows.append(setting.setpoint.name)
        if extras and setting.key in extras:
            rows.extend(extras[setting.key])
    return rows


#: The pipeline's settings, and the number of background images (Save and Valid have rows of their own).
PIPELINE_SETTING_ROWS = setting_rows(PIPELINE_SETTINGS, {"image_background": (BACKGROUND_EXTRAS[2].name,)})
#: The scalar results (the size of the processed image first), fits and slices are grids.
PIPELINE_RESULT_ROWS = ["ArraySize0_RBV", "ArraySize1_RBV"] + [
    spec.name for spec in PIPELINE_RESULT_PVS if not _GRID_RESULT.match(spec.name)]
_FIT_COLUMNS = ("Mean", "Sigma", "Amplitude", "Offset")
_SLICE_COLUMNS = ("CenterX", "CenterY", "Sigma", "Total")


def pipeline_display() -> str:
    display = Display("camioc pipeline $(ID)", 1820, 1000)
    title = display.widget("label", MARGIN, display.y, 1200, 30, text="camioc pipeline $(ID)  ($(P)$(ID):)")
    font = ET.SubElement(title, "font")
    ET.SubElement(font, "font", family="Liberation Sans", style="BOLD", size="18")
    top = display.y = display.y + 36

    # Column 1: instance and settings.
    display.heading("Instance", width=540)
    _write_button(display, MARGIN, 110, f"{PIPELINE}EnableCallbacks", "1", "Start")
    _write_button(display, MARGIN + 120, 110, f"{PIPELINE}EnableCallbacks", "0", "Stop")
    _readback(display, PIPELINE, spec_by_name(PIPELINE_PVS)["EnableCallbacks_RBV"], MARGIN + LABEL_W + 6 + VALUE_W + 6)
    display.y += ROW + 10
    spec_rows(display, PIPELINE, PIPELINE_PVS, PIPELINE_STATUS_ROWS)
    display.heading("Settings (setting, in force)", width=540)
    spec_rows(display, PIPELINE, PIPELINE_PVS, PIPELINE_SETTING_ROWS)
    display.y += 4
    _write_button(display, MARGIN, 180, f"{PIPELINE}SaveBackground", "1", "Collect background")
    _readback(display, PIPELINE, spec_by_name(PIPELINE_PVS)["SaveBackground_RBV"], MARGIN + LABEL_W + 6 + VALUE_W + 6)
    display.y += ROW + 10
    spec_rows(display, PIPELINE, PIPELINE_PVS, ["ValidBackground_RBV"])
    bottom = display.y

    # Column 2: results.
    x0 = MARGIN + LABEL_W + 2 * VALUE_W + 30
    display.y = top
    display.heading("Results", x=x0, width=540)
    spec_rows(display, PIPELINE, PIPELINE_PVS, PIPELINE_RESULT_ROWS, x0=x0)
    display.heading("Gaussian fits", x=x0, width=540)
    spec_grid(display, PIPELINE, x0, list(_FIT_COLUMNS), [
        (label, [f"{prefix}{column}_RBV" for column in _FIT_COLUMNS])
        for label, prefix in (("Profile X", "FitX:"), ("Profile Y", "FitY:"), ("Good region X", "GoodRegion:FitX:"),
                              ("Good region Y", "GoodRegion:FitY:"))])
    display.heading("Slices", x=x0, width=540)
    spec_grid(display, PIPELINE, x0, list(_SLICE_COLUMNS), [
        (f"Slice {index}", [f"Slice{index}:{column}_RBV" for column in _SLICE_COLUMNS]) for index in range(MAX_SLICES)])
    bottom = max(bottom, display.y)

    # Column 3: processed image and profiles.
    x0 += 560
    image_widget(display, x0, top, 640, 440, prefix=PIPELINE_IMAGE)
    xyplot_widget(display, x0, top + 450, 640, 240, "Profile X", "x (AxisX_RBV)",
                  [("ProfileX_RBV", f"{PIPELINE}AxisX_RBV", f"{PIPELINE}ProfileX_RBV"),
                   ("FitX:Curve_RBV", f"{PIPELINE}AxisX_RBV", f"{PIPELINE}FitX:Curve_RBV")])
    xyplot_widget(display, x0, top + 700, 640, 240, "Profile Y", "y (AxisY_RBV)",
                  [("ProfileY_RBV", f"{PIPELINE}AxisY_RBV", f"{PIPELINE}ProfileY_RBV"),
                   ("FitY:Curve_RBV", f"{PIPELINE}AxisY_RBV", f"{PIPELINE}FitY:Curve_RBV")])
    display.y = max(bottom, top + 950)
    display.fit(x0 + 640 + MARGIN, 1000)
    return display.xml()


def service_display() -> str:
    display = Display("camioc service $(P)", 620, 420)
    title = display.widget("label", MARGIN, display.y, 600, 30, text="camioc service $(P)")
    font = ET.SubElement(title, "font")
    ET.SubElement(font, "font", family="Liberation Sans", style="BOLD", size="18")
    display.y += 36
    display.heading("Health")
    spec_rows(display, SERVICE, SERVICE_PVS, ["Version_RBV", "HEARTBEAT", "UPTIME", "START_CNT"])
    display.heading("Cameras, pipelines, instances")
    spec_rows(display, SERVICE, SERVICE_PVS, ["Cameras_RBV", "Pipelines_RBV", "Instances_RBV", "NumInstances_RBV"])
    display.y += 6
    _write_button(display, MARGIN, 180, f"{SERVICE}StopAll", "1", "Stop all instances")
    camera = display.widget("action_button", MARGIN + 200, display.y, 300, ROW + 6,
                            text="Open camera $(CAM=simulation)", tooltip="Camera screen; set macro CAM")
    actions = ET.SubElement(camera, "actions")
    action = ET.SubElement(actions, "action", type="open_display")
    _text(action, "file", "camioc_camera.bob")
    _text(action, "target", "tab")
    macros = ET.SubElement(action, "macros")
    _text(macros, "CAM", "$(CAM=simulation)")
    _text(action, "description", "Open camera screen")
    display.y += ROW + 12
    pipeline = display.widget("action_button", MARGIN + 200, display.y, 300, ROW + 6,
                              text="Open pipeline $(ID=simulation_sp)", tooltip="Pipeline screen; set macro ID")
    actions = ET.SubElement(pipeline, "actions")
    action = ET.SubElement(actions, "action", type="open_display")
    _text(action, "file", "camioc_pipeline.bob")
    _text(action, "target", "tab")
    macros = ET.SubElement(action, "macros")
    _text(macros, "ID", "$(ID=simulation_sp)")
    _text(action, "description", "Open pipeline screen")
    display.y += ROW + 16
    display.fit(620, 300)
    return display.xml()


def generate() -> dict[str, str]:
    """File name -> content of every generated ``opi/`` file."""
    return {"camioc_service.bob": service_display(), "camioc_camera.bob": camera_display(),
            "camioc_pipeline.bob": pipeline_display()}


def write(output: Path = DEFAULT_OUTPUT) -> list[Path]:
    """Regenerate every ``opi/`` file into ``output``."""
    return write_files(generate(), output)


def stale(output: Path = DEFAULT_OUTPUT) -> list[str]:
    """Names of generated files that are missing or differ from what would be generated."""
    return stale_files(generate(), output)

def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None  # this module's docstring
    return generator_main(argv, prog="python -m camioc.model.opigen", description=__doc__.split("\n\n")[0],
                          generate=generate, default_output=DEFAULT_OUTPUT)


if __name__ == "__main__":
    raise SystemExit(main())
