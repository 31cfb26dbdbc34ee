"""Phoebus display builder (``.bob``) renderer of :mod:`camioc.model.screens`.

Written with :mod:`xml.etree` in the format Phoebus' ``ModelWriter`` writes (display 2.0.0, one
``<widget type= version=>`` per widget, properties as child elements, groups holding their
children with coordinates relative to the group). Macros are written ``$(P)``/``$(R)`` and come
from the caller (``phoebus -resource "file:.../camioc_camera.bob?P=CAMIOC:&R=simulation:"``);
no ``<macros>`` at the top (a display's own macros override the caller's).

CA PVs carry no protocol (Phoebus' default is ``ca://``), the image is ``pva://``. Write widgets
(text entry, combo, buttons) show the PV's CA access rights: a read-only PV (policy denies writes)
is shown disabled by Phoebus itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from camioc.model.screens import (
    Group,
    Image,
    OpenButton,
    Panel,
    Plot,
    PvRef,
    Readback,
    Screen,
    Setting,
    Text,
    Widget,
    WriteButton,
)

#: Widget versions Phoebus writes today (a file with a newer major version only logs a warning).
WIDGET_VERSIONS = {
    "label": "2.0.0",
    "textupdate": "2.0.0",
    "textentry": "3.0.0",
    "combo": "2.0.0",
    "action_button": "3.0.0",
    "group": "3.0.0",
    "image": "2.0.0",
    "xyplot": "3.0.0",
}
#: Phoebus text format "STRING" (shows CHAR waveforms as text).
FORMAT_STRING = "6"
MACRO = "$({})"

MARGIN = 10
ROW = 26
LABEL_W = 200
CELL_W = 120
GAP = 6
#: Room for a group's border and title: Phoebus insets a group's children by them at runtime.
GROUP_TITLE = 30
GROUP_INSET = 16
GROUP_PAD = 8
TITLE_H = 32


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def pv_name(ref: PvRef) -> str:
    """A widget's ``pv_name``: CA without protocol, the NTNDArray with ``pva://``."""
    return ("pva://" if ref.pva else "") + ref.address(MACRO)


class _Writer:
    def __init__(self) -> None:
        self._count = 0

    def widget(
        self,
        parent: ET.Element,
        kind: str,
        x: int,
        y: int,
        width: int,
        height: int,
        name: str | None = None,
        **props: str,
    ) -> ET.Element:
        self._count += 1
        element = ET.SubElement(parent, "widget", type=kind, version=WIDGET_VERSIONS[kind])
        _text(element, "name", name or f"{kind}_{self._count}")
        for key, value in props.items():
            _text(element, key, value)
        for key, value in (("x", x), ("y", y), ("width", width), ("height", height)):
            _text(element, key, str(value))
        return element

    # ------------------------------------------------------------------ row widgets
    def cell(self, parent: ET.Element, widget: Widget, x: int, y: int, width: int) -> None:
        height = ROW - 4
        if isinstance(widget, Text):
            self.widget(parent, "label", x, y, width, height, text=widget.text)
        elif isinstance(widget, Readback):
            props = {"pv_name": pv_name(widget.pv), "tooltip": f"{widget.pv.spec.desc} ($(pv_name))"}
            if widget.pv.spec.is_text:
                props["format"] = FORMAT_STRING
            else:
                props["show_units"] = "true"
            self.widget(parent, "textupdate", x, y, width, height, **props)
        elif isinstance(widget, Setting):
            spec = widget.pv.spec
            props = {"pv_name": pv_name(widget.pv), "tooltip": f"{spec.desc} ($(pv_name))"}
            if spec.is_enum:
                self.widget(parent, "combo", x, y, width, height, **props)
            else:
                if spec.is_text:
                    props["format"] = FORMAT_STRING
                else:
                    props["show_units"] = "true"
                self.widget(parent, "textentry", x, y, width, height, **props)
        elif isinstance(widget, WriteButton):
            button = self.widget(
                parent,
                "action_button",
                x,
                y - 1,
                width,
                height + 2,
                text=widget.text,
                pv_name=pv_name(widget.pv),
                tooltip=f"Write {widget.value} to $(pv_name)",
            )
            action = ET.SubElement(ET.SubElement(button, "actions"), "action", type="write_pv")
            _text(action, "pv_name", "$(pv_name)")
            _text(action, "value", widget.value)
            _text(action, "description", widget.text)
        elif isinstance(widget, OpenButton):
            button = self.widget(
                parent,
                "action_button",
                x,
                y - 1,
                width,
                height + 2,
                text=widget.text,
                tooltip=f"Open {widget.screen} with R={widget.r}",
            )
            action = ET.SubElement(ET.SubElement(button, "actions"), "action", type="open_display")
            _text(action, "file", f"{widget.screen}.bob")
            _text(action, "target", "tab")
            _text(ET.SubElement(action, "macros"), "R", widget.r)
            _text(action, "description", widget.text)
        else:  # pragma: no cover - the union is exhaustive
            raise TypeError(widget)

    # ------------------------------------------------------------------ panels
    def group(self, parent: ET.Element, group: Group, x: int, y: int, width: int) -> int:
        """The group at (x, y); returns its height."""
        height = GROUP_TITLE + 2 * GROUP_PAD + ROW * (len(group.rows) + (1 if group.header else 0))
        element = self.widget(parent, "group", x, y, width, height, name=group.title)
        row_y = GROUP_PAD
        cell_x = GROUP_PAD + LABEL_W + GAP
        if group.header:
            for index, title in enumerate(group.header):
                if title:
                    self.widget(element, "label", cell_x + index * (CELL_W + GAP), row_y, CELL_W, ROW - 4, text=title)
            row_y += ROW
        for row in group.rows:
            self.widget(element, "label", GROUP_PAD, row_y, LABEL_W, ROW - 4, text=row.label)
            column = 0
            for widget in row.widgets:
                span = getattr(widget, "span", 1)
                self.cell(element, widget, cell_x + column * (CELL_W + GAP), row_y, span * CELL_W + (span - 1) * GAP)
                column += span
            row_y += ROW
        return height

    def image(self, parent: ET.Element, panel: Image, x: int, y: int) -> int:
        height = panel.height + GROUP_TITLE + 2 * GROUP_PAD
        element = self.widget(parent, "group", x, y, panel_width(panel), height, name=panel.title)
        self.widget(
            element,
            "image",
            GROUP_PAD,
            GROUP_PAD,
            panel.width,
            panel.height,
            name="Image",
            pv_name=pv_name(panel.pv),
            autoscale="true",
            show_toolbar="true",
            tooltip="$(pv_name): NTNDArray (size, type and colour from the PV)",
        )
        return height

    def plot(self, parent: ET.Element, panel: Plot, x: int, y: int) -> int:
        height = panel.height + GROUP_TITLE + 2 * GROUP_PAD
        element = self.widget(parent, "group", x, y, panel_width(panel), height, name=panel.title)
        plot = self.widget(
            element,
            "xyplot",
            GROUP_PAD,
            GROUP_PAD,
            panel.width,
            panel.height,
            name=panel.title,
            title=panel.title,
            show_toolbar="false",
            show_legend="true",
        )
        x_axis = ET.SubElement(plot, "x_axis")
        _text(x_axis, "title", panel.x_title)
        _text(x_axis, "autoscale", "true")
        y_axis = ET.SubElement(ET.SubElement(plot, "y_axes"), "y_axis")
        _text(y_axis, "title", "")
        _text(y_axis, "autoscale", "true")
        traces = ET.SubElement(plot, "traces")
        for trace, (red, green, blue) in zip(panel.traces, _TRACE_COLORS, strict=False):
            element = ET.SubElement(traces, "trace")
            for key, value in (
                ("name", trace.name),
                ("x_pv", pv_name(trace.x)),
                ("y_pv", pv_name(trace.y)),
                ("err_pv", ""),
                ("axis", "0"),
                ("trace_type", "1"),
            ):
                _text(element, key, value)
            ET.SubElement(ET.SubElement(element, "color"), "color", red=str(red), green=str(green), blue=str(blue))
            for key, value in (("line_width", "1"), ("point_type", "0"), ("point_size", "4"), ("visible", "true")):
                _text(element, key, value)
        return height


#: Trace colours: Phoebus' default blue, then red (the fit).
_TRACE_COLORS = ((0, 0, 255), (255, 0, 0))


def panel_width(panel: Panel) -> int:
    if isinstance(panel, Group):
        return 2 * GROUP_PAD + GROUP_INSET + LABEL_W + GAP + max(panel.cells, len(panel.header)) * (CELL_W + GAP)
    return panel.width + 2 * GROUP_PAD + GROUP_INSET


def render(screen: Screen) -> str:
    """The ``.bob`` text of ``screen``."""
    writer = _Writer()
    root = ET.Element("display", version="2.0.0")
    title = screen.title.format(P=MACRO.format("P"), R=MACRO.format("R"))
    _text(root, "name", title)
    width_element = _text(root, "width", "0")
    height_element = _text(root, "height", "0")
    label = writer.widget(root, "label", MARGIN, MARGIN, 900, TITLE_H - 4, name="Title", text=title)
    ET.SubElement(ET.SubElement(label, "font"), "font", family="Liberation Sans", style="BOLD", size="18")
    x, bottom = MARGIN, MARGIN + TITLE_H
    for column in screen.columns:
        width = max(panel_width(panel) for panel in column)
        y = MARGIN + TITLE_H
        for panel in column:
            if isinstance(panel, Group):
                y += writer.group(root, panel, x, y, width) + GAP
            elif isinstance(panel, Image):
                y += writer.image(root, panel, x, y) + GAP
            else:
                y += writer.plot(root, panel, x, y) + GAP
        x += width + GAP
        bottom = max(bottom, y)
    width_element.text = str(max(x + MARGIN, 600))
    label_width = label.find("width")
    assert label_width is not None  # written by widget()
    label_width.text = str(int(width_element.text) - 2 * MARGIN)
    height_element.text = str(bottom + MARGIN)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["FORMAT_STRING", "WIDGET_VERSIONS", "pv_name", "render"]
