"""PyDM (``.ui``, Qt Designer XML with PyDM's widget classes) renderer of :mod:`camioc.model.screens`.

Layout is Qt's (columns of ``QGroupBox`` with a ``QGridLayout`` each), so the screen follows the
window size. Macros are PyDM's ``${P}``/``${R}`` (``string.Template``, substituted in the whole file
when it is opened: ``pydm -m '{"P": "CAMIOC:", "R": "simulation:"}' opi/camioc_camera.ui``); a
related-display button passes its ``R`` and PyDM adds the opening display's ``P``.

Channels: ``ca://`` for every PV, ``pva://`` for the NTNDArray image (PyDM's PVA plugin uses p4p;
``dimensionOrder=WidthFirst``: the NTNDArray's dimension 0 is the width, areaDetector order).
Write widgets (line edit, enum combo box, push button) follow the CA access rights: PyDM disables
them, with a tooltip, when the policy makes a PV read-only.
"""

from __future__ import annotations

import json
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

MACRO = "${{{}}}"

#: Custom widget classes: (class, base, header module), as Qt Designer writes them for PyDM.
CUSTOM_WIDGETS: dict[str, tuple[str, str]] = {
    "PyDMLabel": ("QLabel", "pydm.widgets.label"),
    "PyDMLineEdit": ("QLineEdit", "pydm.widgets.line_edit"),
    "PyDMEnumComboBox": ("QComboBox", "pydm.widgets.enum_combo_box"),
    "PyDMPushButton": ("QPushButton", "pydm.widgets.pushbutton"),
    "PyDMRelatedDisplayButton": ("QPushButton", "pydm.widgets.related_display_button"),
    "PyDMImageView": ("QWidget", "pydm.widgets.image"),
    "PyDMWaveformPlot": ("QGraphicsView", "pydm.widgets.waveformplot"),
}

_TRACE_COLORS = ("#0000ff", "#ff0000")


def channel(ref: PvRef) -> str:
    """A PyDM channel address."""
    return ("pva://" if ref.pva else "ca://") + ref.address(MACRO)


class _Writer:
    def __init__(self) -> None:
        self._count = 0
        self.used: set[str] = set()

    def name(self, kind: str) -> str:
        self._count += 1
        return f"{kind[0].lower()}{kind[1:]}_{self._count}"

    def widget(self, parent: ET.Element, cls: str, name: str | None = None) -> ET.Element:
        if cls in CUSTOM_WIDGETS:
            self.used.add(cls)
        return ET.SubElement(parent, "widget", {"class": cls, "name": name or self.name(cls)})

    @staticmethod
    def prop(widget: ET.Element, name: str, kind: str, value: str | list[str], stdset: bool = True) -> None:
        attrs = {"name": name} if stdset else {"name": name, "stdset": "0"}
        element = ET.SubElement(widget, "property", attrs)
        if kind == "stringlist":
            values = ET.SubElement(element, "stringlist")
            for item in value:
                ET.SubElement(values, "string").text = item
        else:
            assert isinstance(value, str)
            ET.SubElement(element, kind).text = value

    @staticmethod
    def size(widget: ET.Element, name: str, width: int, height: int) -> None:
        size = ET.SubElement(ET.SubElement(widget, "property", name=name), "size")
        ET.SubElement(size, "width").text = str(width)
        ET.SubElement(size, "height").text = str(height)

    # ------------------------------------------------------------------ row widgets
    def cell(self, parent: ET.Element, widget: Widget) -> None:
        if isinstance(widget, Text):
            element = self.widget(parent, "QLabel")
            self.prop(element, "text", "string", widget.text)
        elif isinstance(widget, Readback):
            spec = widget.pv.spec
            element = self.widget(parent, "PyDMLabel")
            self.prop(element, "toolTip", "string", spec.desc)
            self.prop(element, "channel", "string", channel(widget.pv), stdset=False)
            if spec.is_text:
                self.prop(element, "displayFormat", "enum", "PyDMLabel::String", stdset=False)
            else:
                self.prop(element, "showUnits", "bool", "true", stdset=False)
        elif isinstance(widget, Setting):
            spec = widget.pv.spec
            element = self.widget(parent, "PyDMEnumComboBox" if spec.is_enum else "PyDMLineEdit")
            self.prop(element, "toolTip", "string", spec.desc)
            self.prop(element, "channel", "string", channel(widget.pv), stdset=False)
            if not spec.is_enum:
                if spec.is_text:
                    self.prop(element, "displayFormat", "enum", "PyDMLineEdit::String", stdset=False)
                else:
                    self.prop(element, "showUnits", "bool", "true", stdset=False)
        elif isinstance(widget, WriteButton):
            element = self.widget(parent, "PyDMPushButton")
            self.prop(element, "text", "string", widget.text)
            self.prop(element, "toolTip", "string", f"Write {widget.value} to {widget.pv.suffix}")
            self.prop(element, "channel", "string", channel(widget.pv), stdset=False)
            self.prop(element, "pressValue", "string", widget.value, stdset=False)
        elif isinstance(widget, OpenButton):
            element = self.widget(parent, "PyDMRelatedDisplayButton")
            self.prop(element, "text", "string", widget.text)
            self.prop(element, "toolTip", "string", f"Open {widget.screen} with R={widget.r}")
            self.prop(element, "filenames", "stringlist", [f"{widget.screen}.ui"], stdset=False)
            self.prop(element, "macros", "stringlist", [json.dumps({"R": widget.r})], stdset=False)
            self.prop(element, "openInNewWindow", "bool", "true", stdset=False)
            self.prop(element, "showIcon", "bool", "false", stdset=False)
        else:  # pragma: no cover - the union is exhaustive
            raise TypeError(widget)

    # ------------------------------------------------------------------ panels
    def box(self, parent: ET.Element, title: str) -> tuple[ET.Element, ET.Element]:
        box = self.widget(ET.SubElement(parent, "item"), "QGroupBox")
        self.prop(box, "title", "string", title)
        return box, ET.SubElement(box, "layout", {"class": "QGridLayout", "name": self.name("grid")})

    def group(self, parent: ET.Element, group: Group) -> None:
        _, grid = self.box(parent, group.title)
        row = 0
        if group.header:
            for index, title in enumerate(group.header):
                if title:
                    item = ET.SubElement(grid, "item", row="0", column=str(index + 1))
                    label = self.widget(item, "QLabel")
                    self.prop(label, "text", "string", f"<b>{title}</b>")
            row = 1
        for entry in group.rows:
            label = self.widget(ET.SubElement(grid, "item", row=str(row), column="0"), "QLabel")
            self.prop(label, "text", "string", entry.label)
            column = 1
            for widget in entry.widgets:
                span = getattr(widget, "span", 1)
                attrs = {"row": str(row), "column": str(column)}
                if span > 1:
                    attrs["colspan"] = str(span)
                self.cell(ET.SubElement(grid, "item", attrs), widget)
                column += span
            row += 1

    def image(self, parent: ET.Element, panel: Image) -> None:
        _, grid = self.box(parent, panel.title)
        view = self.widget(ET.SubElement(grid, "item", row="0", column="0"), "PyDMImageView", "image")
        self.size(view, "minimumSize", panel.width, panel.height)
        self.prop(view, "toolTip", "string", panel.pv.suffix)
        self.prop(view, "imageChannel", "string", channel(panel.pv), stdset=False)
        self.prop(view, "readingOrder", "enum", "PyDMImageView::Clike", stdset=False)
        self.prop(view, "dimensionOrder", "enum", "PyDMImageView::WidthFirst", stdset=False)
        self.prop(view, "normalizeData", "bool", "true", stdset=False)
        self.prop(view, "maxRedrawRate", "number", "10", stdset=False)

    def plot(self, parent: ET.Element, panel: Plot) -> None:
        _, grid = self.box(parent, panel.title)
        plot = self.widget(ET.SubElement(grid, "item", row="0", column="0"), "PyDMWaveformPlot")
        self.size(plot, "minimumSize", panel.width, panel.height)
        # one named y axis, declared before the curves that use it (as Designer saves a plot): curves
        # on PyDM's implicit axis get a view box that is never laid out, and are not drawn
        axis = {
            "name": "Axis 1",
            "orientation": "left",
            "label": "",
            "minRange": 0.0,
            "maxRange": 1.0,
            "autoRange": True,
            "logMode": False,
        }
        self.prop(plot, "yAxes", "stringlist", [json.dumps(axis)], stdset=False)
        curves = [
            json.dumps(
                {
                    "name": trace.name,
                    "x_channel": channel(trace.x),
                    "y_channel": channel(trace.y),
                    "color": color,
                    "lineStyle": 1,
                    "lineWidth": 1,
                    "redraw_mode": 2,
                    "yAxisName": axis["name"],
                }
            )
            for trace, color in zip(panel.traces, _TRACE_COLORS, strict=False)
        ]
        self.prop(plot, "curves", "stringlist", curves, stdset=False)
        self.prop(plot, "title", "string", panel.title, stdset=False)
        self.prop(plot, "showLegend", "bool", "true", stdset=False)
        self.prop(plot, "xLabels", "stringlist", [panel.x_title], stdset=False)


def _spacer(parent: ET.Element, name: str) -> None:
    spacer = ET.SubElement(ET.SubElement(parent, "item"), "spacer", name=name)
    orientation = ET.SubElement(spacer, "property", name="orientation")
    ET.SubElement(orientation, "enum").text = "Qt::Vertical"


def render(screen: Screen) -> str:
    """The ``.ui`` text of ``screen``."""
    writer = _Writer()
    root = ET.Element("ui", version="4.0")
    ET.SubElement(root, "class").text = "Display"
    form = ET.SubElement(root, "widget", {"class": "QWidget", "name": "Display"})
    title = screen.title.format(P=MACRO.format("P"), R=MACRO.format("R"))
    writer.prop(form, "windowTitle", "string", title)
    layout = ET.SubElement(form, "layout", {"class": "QVBoxLayout", "name": "display_layout"})
    heading = writer.widget(ET.SubElement(layout, "item"), "QLabel", "title")
    writer.prop(heading, "text", "string", f"<b><big>{title}</big></b>")
    # the last column (images, plots) takes the room the others leave
    stretch = ",".join(["0"] * (len(screen.columns) - 1) + ["1"])
    columns = ET.SubElement(
        ET.SubElement(layout, "item"), "layout", {"class": "QHBoxLayout", "name": "columns", "stretch": stretch}
    )
    for index, column in enumerate(screen.columns, start=1):
        stack = ET.SubElement(
            ET.SubElement(columns, "item"), "layout", {"class": "QVBoxLayout", "name": f"column_{index}"}
        )
        for panel in column:
            _panel(writer, stack, panel)
        _spacer(stack, f"column_{index}_end")
    custom = ET.SubElement(root, "customwidgets")
    for cls in sorted(writer.used):
        base, header = CUSTOM_WIDGETS[cls]
        element = ET.SubElement(custom, "customwidget")
        ET.SubElement(element, "class").text = cls
        ET.SubElement(element, "extends").text = base
        ET.SubElement(element, "header").text = header
    ET.SubElement(root, "resources")
    ET.SubElement(root, "connections")
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _panel(writer: _Writer, stack: ET.Element, panel: Panel) -> None:
    if isinstance(panel, Group):
        writer.group(stack, panel)
    elif isinstance(panel, Image):
        writer.image(stack, panel)
    else:
        writer.plot(stack, panel)


__all__ = ["CUSTOM_WIDGETS", "channel", "render"]
