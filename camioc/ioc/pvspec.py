"""The one table of camioc's PV definitions.

Every PV camioc serves is a row (:class:`PVDef`) in one of the tables below. The caproto groups
(:mod:`camioc.ioc.groups`), the EPICS templates in ``db/`` (:mod:`camioc.ioc.dbgen`) and the
Phoebus screens in ``opi/`` (:mod:`camioc.ioc.opigen`) are all generated from these rows, and
tests keep the three in sync. Nothing here imports caproto.

A table holds the PVs of one *block*, named relative to the block's prefix
(:mod:`camioc.ioc.pvnames`):

============== ===================== ==========================================================
table          prefix                areaDetector role
============== ===================== ==========================================================
SERVICE_PVS    ``$(P)``              iocStats-like health, lists, StopAll
CAMERA_PVS     ``$(P)<cam>:cam1:``   ADBase driver
IMAGE_PVS      ``$(P)<cam>:image1:`` NDStdArrays (pipelines reuse it under ``$(P)<id>:image1:``)
============== ===================== ==========================================================

The pipeline block (NDPluginStats-like, ``$(P)<id>:``) will be one more table of the same rows.

Names and semantics follow areaDetector (reference/epics-conventions.md): settings are an output
record ``Name`` plus an input record ``Name_RBV`` showing the value in force; DESC <= 40 chars,
EGU <= 15 chars, enum strings <= 25 chars and <= 16 states (checked by tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from camioc.core.api import DetectorState

#: Output records: writable over CA. Everything else is read-only.
OUTPUT_RECORDS = frozenset({"ao", "bo", "mbbo", "longout", "stringout"})
#: Record types the tables may use.
RECORD_TYPES = frozenset(
    {"ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "int64in", "stringin", "stringout", "waveform"}
)
#: Enum record types (CA DBF_ENUM).
ENUM_RECORDS = frozenset({"bi", "bo", "mbbi", "mbbo"})
#: Waveform element types camioc uses (EPICS menuFtype names).
WAVEFORM_TYPES = ("CHAR", "UCHAR", "SHORT", "LONG", "FLOAT", "DOUBLE")

#: ``ftvl`` of the image waveform: its element type and length are chosen per camera at runtime.
IMAGE_FTVL = "$(FTVL)"

# ---------------------------------------------------------------------------------------- enums
#: ``DetectorState_RBV`` (ADBase order).
DETECTOR_STATES: tuple[str, ...] = tuple(state.name for state in DetectorState)
#: ``DataType_RBV`` (NDDataType_t order).
DATA_TYPES: tuple[str, ...] = (
    "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32", "Float64",
)
#: ``ColorMode_RBV`` (NDColorMode_t order).
COLOR_MODES: tuple[str, ...] = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")
NO_YES = ("No", "Yes")
DISABLE_ENABLE = ("Disable", "Enable")


@dataclass(frozen=True, slots=True)
class PVDef:
    """One PV: an EPICS record as the IOC serves it and as ``db/`` declares it.

    ``name`` is relative to the block prefix. ``low``/``high`` are the control limits: enforced on
    puts (caproto refuses values outside them) and written as DRVL/DRVH + LOPR/HOPR. ``severities``
    gives the alarm severity of each enum state ("" = none; e.g. ``DetectorState_RBV`` Error).
    ``nelm`` is the waveform length (NELM); ``value`` the initial value.
    """

    attr: str
    name: str
    record: str
    desc: str
    egu: str = ""
    prec: int | None = None
    low: float | None = None
    high: float | None = None
    enums: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    ftvl: str = ""
    nelm: int = 0
    value: Any = None

    @property
    def writable(self) -> bool:
        """Whether CA clients may put to the PV (output records)."""
        return self.record in OUTPUT_RECORDS

    @property
    def is_enum(self) -> bool:
        return self.record in ENUM_RECORDS

    @property
    def is_text(self) -> bool:
        """A long string served as a CHAR waveform (readable as text with ``.$`` / ``caget -S``)."""
        return self.record == "waveform" and self.ftvl == "CHAR"

    @property
    def is_image(self) -> bool:
        """The image waveform, whose element type and length are decided per camera."""
        return self.record == "waveform" and self.ftvl == IMAGE_FTVL

    @property
    def has_limits(self) -> bool:
        return self.low is not None and self.high is not None

    def initial_value(self) -> Any:
        """The value the PV holds before anything is posted."""
        if self.value is not None:
            return self.value
        if self.is_enum:
            return self.enums[0]
        if self.record in ("ai", "ao", "int64in"):
            return 0.0
        if self.record in ("longin", "longout"):
            return 0
        return ""


def _rbv(setting: PVDef, record: str, desc: str, enums: tuple[str, ...] | None = None) -> PVDef:
    """The ``_RBV`` input record of an output record: same units, precision and enum strings."""
    return PVDef(
        attr=f"{setting.attr}_rbv",
        name=f"{setting.name}_RBV",
        record=record,
        desc=desc,
        egu=setting.egu,
        prec=setting.prec,
        low=setting.low,
        high=setting.high,
        enums=setting.enums if enums is None else enums,
        value=None if enums is not None else setting.value,
    )


def _pair(setting: PVDef, rbv_record: str, rbv_desc: str, rbv_enums: tuple[str, ...] | None = None) -> tuple[PVDef, PVDef]:
    return setting, _rbv(setting, rbv_record, rbv_desc, rbv_enums)


# =========================================================================================
# Service: $(P)
# =========================================================================================
JSON_LIST_NELM = 65536

SERVICE_PVS: tuple[PVDef, ...] = (
    PVDef("version", "Version_RBV", "stringin", "camioc version"),
    PVDef("heartbeat", "HEARTBEAT", "longin", "Heartbeat counter, +1 per second"),
    PVDef("uptime", "UPTIME", "stringin", "Time since start (d, hh:mm:ss)"),
    PVDef("start_count", "START_CNT", "longin", "Number of server starts"),
    PVDef("cameras", "Cameras_RBV", "waveform", "Configured cameras (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM, value="[]"),
    PVDef("pipelines", "Pipelines_RBV", "waveform", "Saved pipelines (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM, value="[]"),
    PVDef("instances", "Instances_RBV", "waveform", "Running instances (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM, value="[]"),
    PVDef("num_instances", "NumInstances_RBV", "longin", "Running camera + pipeline instances"),
    PVDef("stop_all", "StopAll", "bo", "Write 1 to stop every instance", enums=("Done", "Stop")),
)

# =========================================================================================
# Camera driver: $(P)<cam>:cam1:
# =========================================================================================
TEXT_NELM = 256
PIXEL_LIMIT = 65535  # ROI coordinates and sizes
BIN_LIMIT = 256

CAMERA_PVS: tuple[PVDef, ...] = (
    *_pair(PVDef("acquire", "Acquire", "bo", "Start (1) / stop (0) the camera instance", enums=("Done", "Acquire")),
           "bi", "Camera instance running", ("Done", "Acquiring")),
    PVDef("detector_state", "DetectorState_RBV", "mbbi", "Detector state", enums=DETECTOR_STATES,
          severities=tuple("MAJOR" if s in ("Error", "Disconnected") else "" for s in DETECTOR_STATES)),
    PVDef("status_message", "StatusMessage_RBV", "waveform", "Last status or error message", ftvl="CHAR", nelm=TEXT_NELM),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Frames sent"),
    PVDef("array_rate", "ArrayRate_RBV", "ai", "Frame rate", egu="Hz", prec=2),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the last frame"),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Streamed image width", egu="px"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Streamed image height", egu="px"),
    PVDef("max_size_x", "MaxSizeX_RBV", "longin", "Sensor width", egu="px"),
    PVDef("max_size_y", "MaxSizeY_RBV", "longin", "Sensor height", egu="px"),
    PVDef("data_type", "DataType_RBV", "mbbi", "Pixel data type", enums=DATA_TYPES),
    PVDef("color_mode", "ColorMode_RBV", "mbbi", "Color mode", enums=COLOR_MODES),
    *_pair(PVDef("reverse_x", "ReverseX", "bo", "Mirror horizontally (mirror_x)", enums=NO_YES),
           "bi", "Mirror horizontally in force"),
    *_pair(PVDef("reverse_y", "ReverseY", "bo", "Mirror vertically (mirror_y)", enums=NO_YES),
           "bi", "Mirror vertically in force"),
    *_pair(PVDef("rotate", "Rotate", "longout", "Rotation, 90 deg turns (rotate)", low=0, high=3),
           "longin", "Rotation in force, 90 deg turns"),
    *_pair(PVDef("bin_x", "BinX", "longout", "Horizontal binning (binning_x)", low=1, high=BIN_LIMIT, value=1),
           "longin", "Horizontal binning in force"),
    *_pair(PVDef("bin_y", "BinY", "longout", "Vertical binning (binning_y)", low=1, high=BIN_LIMIT, value=1),
           "longin", "Vertical binning in force"),
    *_pair(PVDef("min_x", "MinX", "longout", "ROI first column (roi[0])", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI first column in force"),
    *_pair(PVDef("min_y", "MinY", "longout", "ROI first row (roi[2])", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI first row in force"),
    *_pair(PVDef("size_x", "SizeX", "longout", "ROI width, 0 = no ROI (roi[1])", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI width in force, 0 = no ROI"),
    *_pair(PVDef("size_y", "SizeY", "longout", "ROI height, 0 = no ROI (roi[3])", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI height in force, 0 = no ROI"),
    PVDef("stream_address", "StreamAddress_RBV", "waveform", "bsread stream address", ftvl="CHAR", nelm=TEXT_NELM),
    PVDef("clients", "Clients_RBV", "longin", "Connected stream subscribers"),
)

#: Camera readbacks that describe data from the camera: INVALID while it is in Error/Disconnected.
CAMERA_DATA_READBACKS: tuple[str, ...] = (
    "array_counter", "array_rate", "unique_id", "array_size0", "array_size1",
    "max_size_x", "max_size_y", "data_type", "color_mode", "clients",
)

# =========================================================================================
# Image (NDStdArrays-like): $(P)<cam>:image1:
# =========================================================================================
MIN_CALLBACK_TIME_LIMIT = 3600.0

IMAGE_PVS: tuple[PVDef, ...] = (
    PVDef("array_data", "ArrayData", "waveform", "Latest image, flattened row-major", ftvl=IMAGE_FTVL),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Image width (dimension 0)", egu="px"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Image height (dimension 1)", egu="px"),
    PVDef("array_size2", "ArraySize2_RBV", "longin", "Image dimension 2 (0: mono)", egu="px"),
    PVDef("ndimensions", "NDimensions_RBV", "longin", "Number of image dimensions"),
    PVDef("data_type", "DataType_RBV", "mbbi", "Image data type", enums=DATA_TYPES),
    PVDef("color_mode", "ColorMode_RBV", "mbbi", "Image color mode", enums=COLOR_MODES),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the image"),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Images published on CA"),
    *_pair(PVDef("enable_callbacks", "EnableCallbacks", "bo", "Publish images on CA", enums=DISABLE_ENABLE,
                 value="Enable"), "bi", "Image publishing in force"),
    *_pair(PVDef("min_callback_time", "MinCallbackTime", "ao", "Min time between published images",
                 egu="s", prec=3, low=0.0, high=MIN_CALLBACK_TIME_LIMIT, value=0.5),
           "ai", "Min time between images in force"),
    PVDef("plugin_type", "PluginType_RBV", "stringin", "Plugin type", value="NDPluginStdArrays"),
)

#: Every table by block name (the db generator, the screen generator and tests iterate this).
TABLES: dict[str, tuple[PVDef, ...]] = {
    "service": SERVICE_PVS,
    "camera": CAMERA_PVS,
    "image": IMAGE_PVS,
}


def spec_by_attr(table: tuple[PVDef, ...]) -> dict[str, PVDef]:
    return {pv.attr: pv for pv in table}


def spec_by_name(table: tuple[PVDef, ...]) -> dict[str, PVDef]:
    return {pv.name: pv for pv in table}


# =========================================================================================
# Image formats: numpy dtype -> areaDetector DataType_RBV and the CA waveform element type
# =========================================================================================
@dataclass(frozen=True, slots=True)
class ImageFormat:
    """How an image of one numpy dtype is served on CA.

    ``ftvl`` is the waveform element type (CA has no unsigned 16/32-bit types: UInt16 and UInt32
    are served as SHORT/LONG with the bits reinterpreted, as areaDetector's NDStdArrays does;
    clients use ``DataType_RBV`` or Phoebus ``unsigned`` to read them back). 64-bit integers are
    served as DOUBLE (what an EPICS int64 waveform gives CA clients).
    """

    data_type: str
    ftvl: str


_IMAGE_FORMATS: dict[str, ImageFormat] = {
    "int8": ImageFormat("Int8", "CHAR"),
    "uint8": ImageFormat("UInt8", "UCHAR"),
    "bool": ImageFormat("UInt8", "UCHAR"),
    "int16": ImageFormat("Int16", "SHORT"),
    "uint16": ImageFormat("UInt16", "SHORT"),
    "int32": ImageFormat("Int32", "LONG"),
    "uint32": ImageFormat("UInt32", "LONG"),
    "int64": ImageFormat("Int64", "DOUBLE"),
    "uint64": ImageFormat("UInt64", "DOUBLE"),
    "float16": ImageFormat("Float32", "FLOAT"),
    "float32": ImageFormat("Float32", "FLOAT"),
    "float64": ImageFormat("Float64", "DOUBLE"),
}
#: Format of an image PV created before the camera's dtype is known (most cameras are 16-bit).
DEFAULT_IMAGE_FORMAT = _IMAGE_FORMATS["uint16"]
#: Elements of an image PV created before the camera's sensor size is known (2048 x 2048).
DEFAULT_IMAGE_ELEMENTS = 2048 * 2048


def image_format(dtype: Any) -> ImageFormat:
    """The CA format of images of numpy dtype ``dtype`` (a dtype or its name)."""
    name = np.dtype(dtype).name
    try:
        return _IMAGE_FORMATS[name]
    except KeyError:
        raise ValueError(f"images of dtype {name} cannot be published on CA") from None


def wire_ftvl(ftvl: str) -> str:
    """The element type CA clients see for a waveform FTVL (DBF_UCHAR is served as DBR_CHAR)."""
    return "CHAR" if ftvl == "UCHAR" else ftvl


__all__ = [
    "CAMERA_DATA_READBACKS",
    "CAMERA_PVS",
    "COLOR_MODES",
    "DATA_TYPES",
    "DEFAULT_IMAGE_ELEMENTS",
    "DEFAULT_IMAGE_FORMAT",
    "DETECTOR_STATES",
    "IMAGE_FTVL",
    "IMAGE_PVS",
    "ImageFormat",
    "PVDef",
    "SERVICE_PVS",
    "TABLES",
    "image_format",
    "spec_by_attr",
    "spec_by_name",
    "wire_ftvl",
]
