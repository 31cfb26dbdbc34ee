"""What a Phoebus display file may contain: widget types, versions and property names, as data.

Phoebus has no XSD for ``.bob`` files and its reader silently skips unknown property elements
(``WidgetConfigurator``: "Skip unknown properties"), so a typo makes a dead widget without any
error. This allow-list is what the screen tests check every generated widget against.

Derived from the Phoebus display model sources (ControlSystemStudio/phoebus,
``app/display/model/src/main/java/org/csstudio/display/builder/model/``): the property
descriptors each widget class adds in ``defineProperties`` and inherits —
``Widget`` (name, x, y, width, height, actions, rules, scripts, tooltip, class),
``VisibleWidget`` (visible), ``MacroWidget`` (macros), ``PVWidget`` (pv_name,
border_alarm_sensitive), ``WritablePVWidget``; ``widgets/LabelWidget.java``,
``TextUpdateWidget.java``, ``TextEntryWidget.java``, ``ComboWidget.java``,
``ActionButtonWidget.java``, ``GroupWidget.java`` (style, font, foreground_color,
background_color, transparent; children nested as ``<widget>``), ``plots/ImageWidget.java``
(data_width, data_height, unsigned, color_map, autoscale, minimum, maximum, interpolation,
color_mode, show_toolbar, x_axis, y_axis, cursor_info_pv, x_pv, y_pv, cursor_crosshair, rois),
``plots/XYPlotWidget.java`` with ``plots/PlotWidgetProperties.java`` (title, title_font,
show_toolbar, show_legend, x_axis, y_axes, traces; axis and trace structures) and
``persist/ModelWriter.java`` (display version 2.0.0; widget versions: textentry,
action_button, group, xyplot 3.0.0, the others 2.0.0); cross-checked against the property
names in reference/epics-conventions.md §3.1 (ADCore and Phoebus example displays).
"""

from __future__ import annotations

DISPLAY_VERSION = "2.0.0"

#: Properties of every widget (``Widget`` + ``VisibleWidget``).
COMMON = frozenset({"name", "x", "y", "width", "height", "tooltip", "rules", "actions", "scripts", "visible", "class"})
#: ``PVWidget``.
PV_WIDGET = frozenset({"pv_name", "border_alarm_sensitive"})

#: type -> (version Phoebus writes, allowed property elements).
WIDGETS: dict[str, tuple[str, frozenset[str]]] = {
    "label": (
        "2.0.0",
        COMMON
        | {
            "text",
            "font",
            "foreground_color",
            "background_color",
            "transparent",
            "horizontal_alignment",
            "vertical_alignment",
            "rotation_step",
            "wrap_words",
            "auto_size",
            "border_width",
            "border_color",
        },
    ),
    "textupdate": (
        "2.0.0",
        COMMON
        | PV_WIDGET
        | {
            "font",
            "foreground_color",
            "background_color",
            "transparent",
            "format",
            "precision",
            "show_units",
            "horizontal_alignment",
            "vertical_alignment",
            "wrap_words",
            "rotation_step",
            "border_width",
            "border_color",
            "interactive",
        },
    ),
    "textentry": (
        "3.0.0",
        COMMON
        | PV_WIDGET
        | {
            "font",
            "foreground_color",
            "background_color",
            "format",
            "precision",
            "show_units",
            "enabled",
            "confirm_message",
            "password",
            "multi_line",
            "wrap_words",
            "horizontal_alignment",
            "vertical_alignment",
            "border_width",
            "border_color",
        },
    ),
    "combo": (
        "2.0.0",
        COMMON
        | PV_WIDGET
        | {
            "font",
            "foreground_color",
            "background_color",
            "items",
            "items_from_pv",
            "editable",
            "enabled",
            "confirm_message",
            "password",
        },
    ),
    "action_button": (
        "3.0.0",
        COMMON
        | PV_WIDGET
        | {
            "text",
            "font",
            "foreground_color",
            "background_color",
            "transparent",
            "rotation_step",
            "enabled",
            "confirm_dialog",
            "confirm_message",
            "password",
        },
    ),
    "group": (
        "3.0.0",
        COMMON | {"macros", "style", "font", "foreground_color", "background_color", "transparent", "widget"},
    ),
    "image": (
        "2.0.0",
        COMMON
        | PV_WIDGET
        | {
            "foreground_color",
            "background_color",
            "show_toolbar",
            "color_map",
            "color_bar",
            "x_axis",
            "y_axis",
            "data_width",
            "data_height",
            "interpolation",
            "color_mode",
            "unsigned",
            "autoscale",
            "log_scale",
            "minimum",
            "maximum",
            "cursor_info_pv",
            "x_pv",
            "y_pv",
            "cursor_crosshair",
            "rois",
        },
    ),
    "xyplot": (
        "3.0.0",
        COMMON
        | {
            "foreground_color",
            "background_color",
            "grid_color",
            "title",
            "title_font",
            "show_toolbar",
            "show_legend",
            "x_axis",
            "y_axes",
            "traces",
            "marker",
        },
    ),
}

#: ``plots/PlotWidgetProperties.java``: an XY plot's axis and trace structures.
XY_AXIS = frozenset(
    {
        "title",
        "autoscale",
        "log_scale",
        "minimum",
        "maximum",
        "show_grid",
        "title_font",
        "scale_font",
        "visible",
        "color",
        "on_right",
    }
)
XY_TRACE = frozenset(
    {
        "name",
        "x_pv",
        "y_pv",
        "err_pv",
        "axis",
        "trace_type",
        "color",
        "line_width",
        "line_style",
        "point_type",
        "point_size",
        "visible",
    }
)

#: ``properties/ActionInfo`` subclasses: action type -> its elements (``persist/XMLTags``).
ACTIONS: dict[str, frozenset[str]] = {
    "write_pv": frozenset({"pv_name", "value", "description"}),
    "open_display": frozenset({"file", "target", "macros", "name", "description"}),
}
#: ``OpenDisplayActionInfo.Target``.
OPEN_TARGETS = frozenset({"replace", "tab", "window", "standalone"})
#: Properties whose text is a PV name.
PV_PROPERTIES = frozenset({"pv_name", "x_pv", "y_pv", "err_pv", "cursor_info_pv", "width_pv", "height_pv"})


def widget_problems(widget_type: str | None, version: str | None, children: set[str]) -> list[str]:
    """What is wrong with one ``<widget>``: unknown type, other version, unknown properties."""
    if widget_type not in WIDGETS:
        return [f"unknown widget type {widget_type!r}"]
    expected, allowed = WIDGETS[widget_type]
    problems = []
    if version != expected:
        problems.append(f"{widget_type}: version {version!r}, Phoebus writes {expected!r}")
    if unknown := children - allowed:
        problems.append(f"{widget_type}: properties Phoebus does not have (silently skipped): {sorted(unknown)}")
    if missing := {"name", "x", "y", "width", "height"} - children:
        problems.append(f"{widget_type}: no {sorted(missing)}")
    return problems


__all__ = [
    "ACTIONS",
    "COMMON",
    "DISPLAY_VERSION",
    "OPEN_TARGETS",
    "PV_PROPERTIES",
    "WIDGETS",
    "XY_AXIS",
    "XY_TRACE",
    "widget_problems",
]
