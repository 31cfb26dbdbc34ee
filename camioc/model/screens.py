"""camioc's operator screens, described once and rendered twice (Phoebus ``.bob``, PyDM ``.ui``).

A screen is a small tree: columns of panels (a :class:`Group` of labelled rows, an :class:`Image`,
a :class:`Plot`); rows hold widgets that name PVs by their *model attribute* (:class:`PvRef`,
looked up in :data:`camioc.model.blocks.TABLES` when the screen is built), so a screen cannot name
a PV that is not served: a missing attribute raises ``KeyError`` at generation time.

Names follow areaDetector's ``$(P)$(R)`` (reference/epics-conventions.md §1.1): ``P`` is the
service prefix (``--prefix``), ``R`` the instance level under it, so that every PV of a screen is
``$(P)$(R)<suffix>`` (:mod:`camioc.model.pvnames`):

- camera screen, ``R=<cam>:`` -> ``$(P)$(R)cam1:Acquire``, ``$(P)$(R)image1:Pva1:Image``;
- pipeline screen, ``R=<id>:`` -> ``$(P)$(R)CentroidX_RBV``, ``$(P)$(R)image1:Pva1:Image``;
- service overview, ``P`` only; its rows name each configured camera and saved pipeline by its PV
  name (:mod:`camioc.model.instance_names`) and its buttons open their screens with ``R`` set.

The macros are never defined in the files; the renderers (:mod:`camioc.model.screens_bob`,
:mod:`camioc.model.screens_pydm`) write them in their tool's syntax (``$(P)`` / ``${P}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from camioc.model.blocks import (
    BACKGROUND_EXTRAS,
    CAMERA_SETTINGS,
    MAX_SLICES,
    PIPELINE_RESULT_PVS,
    PIPELINE_SETTINGS,
    TABLES,
)
from camioc.model.health import SERVICE_HEALTH_PVS, WORKER_HEALTH_ATTRS
from camioc.model.instance_names import camera_pv_name, pipeline_image_plugin, pipeline_pv_name
from camioc.model.pvnames import CAMERA_DRIVER, IMAGE_PLUGIN, PIPELINE_IMAGE_PLUGIN, PVA_IMAGE
from camioc.model.records import PVDef

#: Where each block's PVs are below ``$(P)$(R)`` (the service block is below ``$(P)`` alone).
BLOCK_SUFFIX: dict[str, str] = {
    "service": "",
    "camera": CAMERA_DRIVER,
    "image": IMAGE_PLUGIN,
    "pipeline": "",
    "pipeline_arrays": "",
}

#: The screens' file stems (``<stem>.bob`` and ``<stem>.ui``).
SERVICE_SCREEN = "camioc_service"
CAMERA_SCREEN = "camioc_camera"
PIPELINE_SCREEN = "camioc_pipeline"


def _by_attr(block: str) -> dict[str, PVDef]:
    return {spec.attr: spec for spec in TABLES[block]}


_SPECS: dict[str, dict[str, PVDef]] = {block: _by_attr(block) for block in TABLES}


@dataclass(frozen=True)
class PvRef:
    """A served PV: ``block`` of :data:`~camioc.model.blocks.TABLES`, the row's model ``attr``.

    ``owner`` is ``None`` for the screen's ``$(R)``, or the literal PV name of a camera or
    pipeline (the overview's rows). ``pva`` marks the NTNDArray image of an image block;
    ``plugin`` is an image block's level (``image2:`` for a pipeline named like a camera).
    """

    block: str
    attr: str
    owner: str | None = None
    pva: bool = False
    plugin: str = IMAGE_PLUGIN

    def __post_init__(self) -> None:
        if not self.pva and self.attr not in _SPECS[self.block]:
            raise KeyError(f"{self.block} block serves no PV for attribute {self.attr!r}")
        if self.pva and self.block != "image":
            raise KeyError("only an image block has a PV Access image")

    @property
    def spec(self) -> PVDef:
        """The row (the PVA image has none: its record is the NTNDArray)."""
        if self.pva:
            raise KeyError("the PV Access image is not a row of the tables")
        return _SPECS[self.block][self.attr]

    @property
    def suffix(self) -> str:
        """The name after ``$(P)$(R)`` (after ``$(P)`` for the service block)."""
        name = PVA_IMAGE if self.pva else self.spec.name
        return (self.plugin if self.block == "image" else BLOCK_SUFFIX[self.block]) + name

    def address(self, macro: str) -> str:
        """The full name with macros written by ``macro`` (e.g. ``"$({})"``), without protocol."""
        prefix = macro.format("P")
        if self.block == "service":
            return prefix + self.suffix
        level = macro.format("R") if self.owner is None else f"{self.owner}:"
        return prefix + level + self.suffix

    def expand(self, prefix: str, r: str) -> str:
        """The PV name with ``P`` = ``prefix`` and ``R`` = ``r``."""
        return self.address("\0{}\0").replace("\0P\0", prefix).replace("\0R\0", r)


def camera(attr: str, owner: str | None = None) -> PvRef:
    return PvRef("camera", attr, owner)


def image(attr: str, owner: str | None = None, plugin: str = IMAGE_PLUGIN) -> PvRef:
    return PvRef("image", attr, owner, plugin=plugin)


def pva_image(owner: str | None = None, plugin: str = IMAGE_PLUGIN) -> PvRef:
    return PvRef("image", "pva_image", owner, pva=True, plugin=plugin)


def pipeline(attr: str, owner: str | None = None) -> PvRef:
    block = "pipeline_arrays" if attr in _SPECS["pipeline_arrays"] else "pipeline"
    return PvRef(block, attr, owner)


def service(attr: str) -> PvRef:
    return PvRef("service", attr)


def readback_of(ref: PvRef) -> PvRef | None:
    """The ``_RBV`` row of a setting (``<attr>_rbv``), if its block serves one."""
    attr = f"{ref.attr}_rbv"
    return PvRef(ref.block, attr, ref.owner) if attr in _SPECS[ref.block] else None


# ------------------------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class Text:
    """A fixed label."""

    text: str
    span: int = 1


@dataclass(frozen=True)
class Readback:
    """A read-only value (text update / PyDMLabel); ``span``: cells it takes."""

    pv: PvRef
    span: int = 1


@dataclass(frozen=True)
class Setting:
    """A write widget bound to CA (combo for enums, text entry otherwise). Read-only when the
    access policy denies writes: both tools show CA access rights on write widgets."""

    pv: PvRef


@dataclass(frozen=True)
class WriteButton:
    """A button that writes ``value`` to ``pv``."""

    pv: PvRef
    value: str
    text: str


@dataclass(frozen=True)
class OpenButton:
    """A button opening screen ``screen`` (a file stem) with ``R=<r>`` (``P`` is passed on)."""

    text: str
    screen: str
    r: str


Widget = Text | Readback | Setting | WriteButton | OpenButton


@dataclass(frozen=True)
class Row:
    label: str
    widgets: tuple[Widget, ...]


@dataclass(frozen=True)
class Group:
    """Labelled rows under a title; ``header`` names the value columns (a table)."""

    title: str
    rows: tuple[Row, ...]
    header: tuple[str, ...] = ()

    @property
    def cells(self) -> int:
        """Value cells of the widest row."""
        return max((sum(getattr(w, "span", 1) for w in row.widgets) for row in self.rows), default=0)


@dataclass(frozen=True)
class Image:
    """A live image (PV Access NTNDArray), ``width`` x ``height`` pixels on screen."""

    title: str
    pv: PvRef
    width: int = 640
    height: int = 480


@dataclass(frozen=True)
class Trace:
    name: str
    x: PvRef
    y: PvRef


@dataclass(frozen=True)
class Plot:
    """Waveforms ``y`` over ``x``."""

    title: str
    x_title: str
    traces: tuple[Trace, ...]
    width: int = 640
    height: int = 240


Panel = Group | Image | Plot


@dataclass(frozen=True)
class Screen:
    """One screen: ``stem`` is the file name without extension; ``columns`` are laid left to right;
    ``title`` may name the macros as ``{P}``/``{R}`` (each renderer writes its syntax)."""

    stem: str
    title: str
    columns: tuple[tuple[Panel, ...], ...]
    #: the macros the caller must give (documented; never defined in the files)
    macros: tuple[str, ...] = ("P", "R")

    def panels(self) -> Iterable[Panel]:
        for column in self.columns:
            yield from column

    def pvs(self) -> list[PvRef]:
        """Every PV the screen names, in order, once."""
        found: dict[PvRef, None] = {}
        for panel in self.panels():
            if isinstance(panel, Group):
                for row in panel.rows:
                    for widget in row.widgets:
                        if isinstance(widget, Readback | Setting | WriteButton):
                            found[widget.pv] = None
            elif isinstance(panel, Image):
                found[panel.pv] = None
            else:
                for trace in panel.traces:
                    found[trace.x] = None
                    found[trace.y] = None
        return list(found)


# ------------------------------------------------------------------------------- row helpers
def readback_row(ref: PvRef, span: int = 1) -> Row:
    """The row's label is the PV's DESC (what ``caget PV.DESC`` says)."""
    return Row(ref.spec.desc, (Readback(ref, span=span),))


def setting_row(ref: PvRef) -> Row:
    """Setpoint and, beside it, the value in force (``_RBV``) when the block serves one."""
    rbv = readback_of(ref)
    widgets: tuple[Widget, ...] = (Setting(ref),) + ((Readback(rbv),) if rbv is not None else ())
    return Row(ref.spec.desc, widgets)


def _text_span(ref: PvRef) -> int:
    return 2 if ref.spec.is_text else 1


# ------------------------------------------------------------------------------------ screens
def camera_screen() -> Screen:
    """One camera (``R=<cam>:``): acquisition, stream, geometry, transforms, CA image, live image."""
    acquisition = Group(
        "Acquisition",
        (
            Row(
                "Camera instance",
                (
                    WriteButton(camera("acquire"), "1", "Start"),
                    WriteButton(camera("acquire"), "0", "Stop"),
                    Readback(camera("acquire_rbv")),
                ),
            ),
            setting_row(camera("image_mode")),
            setting_row(camera("num_images")),
            readback_row(camera("num_images_counter")),
            Row(camera("acquire_period").spec.desc, (Readback(camera("acquire_period_rbv")),)),
            readback_row(camera("detector_state")),
            readback_row(camera("status_message"), span=3),
        ),
    )
    stream = Group(
        "Stream",
        tuple(
            readback_row(camera(attr), span=3 if attr == "stream_address" else 1)
            for attr in ("stream_address", "clients", "array_counter", "array_rate", "unique_id")
        ),
    )
    geometry = Group(
        "Geometry",
        tuple(
            readback_row(camera(attr))
            for attr in ("array_size0", "array_size1", "max_size_x", "max_size_y", "data_type", "color_mode")
        ),
    )
    transforms = Group(
        "Mirror, rotate, binning, ROI (setting, in force)",
        tuple(setting_row(camera(s.attr)) for s in CAMERA_SETTINGS.settings),
    )
    publishing = Group(
        "Image on Channel Access (image1:)",
        (
            setting_row(image("enable_callbacks")),
            setting_row(image("min_callback_time")),
            readback_row(image("array_counter")),
            readback_row(image("unique_id")),
        ),
    )
    live = Image("Live image (PV Access image1:Pva1:Image)", pva_image(), 640, 512)
    return Screen(
        CAMERA_SCREEN,
        "camioc camera {R}  ({P}{R})",
        ((acquisition, stream, geometry), (transforms, publishing, worker_group(camera)), (live,)),
    )


def worker_group(block: Callable[[str], PvRef]) -> Group:
    """The worker's health rows (model.health) of a camera or pipeline screen."""
    return Group("Worker process", tuple(readback_row(block(attr)) for attr in WORKER_HEALTH_ATTRS))


#: Scalar results in the table (fits and slices have grids of their own).
_GRID_RESULT = re.compile(r"(gr_)?fit_[xy]_|slice\d+_")
_FIT_COLUMNS = ("mean", "sigma", "amplitude", "offset")
_SLICE_COLUMNS = ("center_x", "center_y", "sigma", "total")


def _pause_attr() -> str:
    (pause,) = [setting.attr for setting in PIPELINE_SETTINGS.settings if setting.key == "paused"]
    return pause


def pipeline_screen_stem(plugin: str = IMAGE_PLUGIN) -> str:
    """``camioc_pipeline``, or ``camioc_pipeline_image2`` for a pipeline named like a camera."""
    return PIPELINE_SCREEN if plugin == IMAGE_PLUGIN else f"{PIPELINE_SCREEN}_{plugin.rstrip(':')}"


def pipeline_screen(plugin: str = IMAGE_PLUGIN) -> Screen:
    """One pipeline (``R=<id>:``): instance, settings, results, processed image, profiles with fits.

    ``plugin``: the level of its image block, ``image2:`` for a pipeline whose PV name is a
    camera's (:func:`camioc.model.instance_names.pipeline_image_plugin`): a screen of its own.
    """
    instance = Group(
        "Instance",
        (
            Row(
                "Pipeline instance",
                (
                    WriteButton(pipeline("enable_callbacks"), "1", "Start"),
                    WriteButton(pipeline("enable_callbacks"), "0", "Stop"),
                    Readback(pipeline("enable_callbacks_rbv")),
                ),
            ),
            setting_row(pipeline(_pause_attr())),
            readback_row(pipeline("detector_state")),
            readback_row(pipeline("status_message"), span=3),
            readback_row(pipeline("nd_array_port")),
            readback_row(pipeline("read_only")),
            readback_row(pipeline("stream_address"), span=3),
            *(
                readback_row(pipeline(attr))
                for attr in ("array_counter", "array_rate", "execution_time", "dropped_arrays", "unique_id")
            ),
        ),
    )
    background = BACKGROUND_EXTRAS[0]
    settings_rows: list[Row] = []
    for setting in PIPELINE_SETTINGS.settings:
        if setting.key == "paused":
            continue  # with the instance controls
        settings_rows.append(setting_row(pipeline(setting.attr)))
        if setting.key == "image_background":
            settings_rows.append(setting_row(pipeline(BACKGROUND_EXTRAS[2].attr)))
            settings_rows.append(
                Row(
                    "Background",
                    (
                        WriteButton(pipeline(background.attr), "1", "Collect background"),
                        Readback(pipeline(f"{background.attr}_rbv")),
                        Readback(pipeline("valid_background")),
                    ),
                )
            )
    settings = Group("Threshold, ROI, background, good region, slices (setting, in force)", tuple(settings_rows))
    results = Group(
        "Results",
        tuple(
            readback_row(pipeline(attr))
            for attr in (
                "array_size0",
                "array_size1",
                *(spec.attr for spec in PIPELINE_RESULT_PVS if not _GRID_RESULT.match(spec.attr)),
            )
        ),
    )
    fits = Group(
        "Gaussian fits",
        tuple(
            Row(label, tuple(Readback(pipeline(f"{prefix}_{column}")) for column in _FIT_COLUMNS))
            for label, prefix in (
                ("Profile X", "fit_x"),
                ("Profile Y", "fit_y"),
                ("Good region X", "gr_fit_x"),
                ("Good region Y", "gr_fit_y"),
            )
        ),
        header=("Mean", "Sigma", "Amplitude", "Offset"),
    )
    slices = Group(
        "Slices",
        tuple(
            Row(f"Slice {index}", tuple(Readback(pipeline(f"slice{index}_{column}")) for column in _SLICE_COLUMNS))
            for index in range(MAX_SLICES)
        ),
        header=("Center X", "Center Y", "Sigma", "Intensity"),
    )
    processed = Image(f"Processed image (PV Access {plugin}{PVA_IMAGE})", pva_image(plugin=plugin), 640, 440)
    profile_x = Plot(
        "Profile X",
        "x (AxisX_RBV)",
        (
            Trace("Profile", pipeline("axis_x"), pipeline("profile_x")),
            Trace("Gauss fit", pipeline("axis_x"), pipeline("fit_x_curve")),
        ),
    )
    profile_y = Plot(
        "Profile Y",
        "y (AxisY_RBV)",
        (
            Trace("Profile", pipeline("axis_y"), pipeline("profile_y")),
            Trace("Gauss fit", pipeline("axis_y"), pipeline("fit_y_curve")),
        ),
    )
    return Screen(
        pipeline_screen_stem(plugin),
        "camioc pipeline {R}  ({P}{R})",
        ((instance, worker_group(pipeline), settings), (results, fits, slices), (processed, profile_x, profile_y)),
    )


def service_screen(cameras: Iterable[str] = (), pipelines: Iterable[str] = ()) -> Screen:
    """The overview (``P`` only): health, one row per configured camera and saved pipeline (state,
    rate, clients or camera, a button opening its screen), the running instances, StopAll.

    Instances that are not configured (private pipelines) have no PVs known when the file is
    generated: they appear in ``Instances_RBV`` and ``PvNames_RBV`` (their PV names).
    """
    cameras, pipelines = sorted(cameras), sorted(pipelines)
    health = Group(
        "Service",
        (
            *(
                readback_row(service(attr))
                for attr in ("version", "heartbeat", "uptime", "start_count", "num_instances",
                             *(spec.attr for spec in SERVICE_HEALTH_PVS))
            ),
            Row("Instances", (WriteButton(service("stop_all"), "1", "Stop all instances"),)),
        ),
    )
    camera_rows = []
    for name in sorted(cameras):
        owner = camera_pv_name(name)
        camera_rows.append(
            Row(
                name,
                (
                    Readback(camera("detector_state", owner)),
                    Readback(camera("array_rate", owner)),
                    Readback(camera("clients", owner)),
                    Readback(camera("acquire_rbv", owner)),
                    OpenButton("Open", CAMERA_SCREEN, f"{owner}:"),
                ),
            )
        )
    pipeline_rows = []
    camera_owners = [camera_pv_name(name) for name in cameras]
    for name in sorted(pipelines):
        owner = pipeline_pv_name(name)
        stem = pipeline_screen_stem(pipeline_image_plugin(owner, camera_owners))
        pipeline_rows.append(
            Row(
                name,
                (
                    Readback(pipeline("detector_state", owner)),
                    Readback(pipeline("array_rate", owner)),
                    Readback(pipeline("nd_array_port", owner)),
                    Readback(pipeline("enable_callbacks_rbv", owner)),
                    OpenButton("Open", stem, f"{owner}:"),
                ),
            )
        )
    columns: list[Panel] = [health]
    if camera_rows:
        columns.append(Group("Cameras", tuple(camera_rows), header=("State", "Rate", "Clients", "Running", "")))
    if pipeline_rows:
        columns.append(Group("Pipelines", tuple(pipeline_rows), header=("State", "Rate", "Camera", "Running", "")))
    lists = Group(
        "Running instances",
        (
            readback_row(service("instances"), span=5),
            readback_row(service("pv_names"), span=5),
        ),
    )
    columns.append(lists)
    return Screen(
        SERVICE_SCREEN,
        "camioc service {P}",
        (tuple(columns),),
        macros=("P",),
    )


def screens(cameras: Iterable[str] = (), pipelines: Iterable[str] = ()) -> list[Screen]:
    """Every screen; the overview lists ``cameras`` and ``pipelines`` (names from the config)."""
    return [
        service_screen(cameras, pipelines),
        camera_screen(),
        pipeline_screen(),
        pipeline_screen(PIPELINE_IMAGE_PLUGIN),
    ]


__all__ = [
    "BLOCK_SUFFIX",
    "CAMERA_SCREEN",
    "PIPELINE_SCREEN",
    "SERVICE_SCREEN",
    "Group",
    "Image",
    "OpenButton",
    "Panel",
    "Plot",
    "PvRef",
    "Readback",
    "Row",
    "Screen",
    "Setting",
    "Text",
    "Trace",
    "Widget",
    "WriteButton",
    "camera",
    "camera_screen",
    "image",
    "pipeline",
    "pipeline_screen",
    "pipeline_screen_stem",
    "pva_image",
    "readback_of",
    "screens",
    "service",
    "service_screen",
]
