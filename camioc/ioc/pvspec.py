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
PIPELINE_PVS   ``$(P)<id>:``         NDPluginStats + NDPluginBase subset, ROI, background
                                     (NDPluginProcess names), good region, slices, results
PIPELINE_      ``$(P)<id>:``         the pipeline's profile/axis/fit waveforms (their length
ARRAY_PVS                            is decided at runtime, so they are a block of their own)
============== ===================== ==========================================================

Result readbacks name the pipeline output they show in ``source`` (cam_server's output field
names, reference/camserver-compat.md §2.3). ``Out:<field>_RBV`` readbacks of other scalar outputs
are made at runtime by :func:`out_field_spec`.

Names and semantics follow areaDetector (reference/epics-conventions.md): settings are an output
record ``Name`` plus an input record ``Name_RBV`` showing the value in force; DESC <= 40 chars,
EGU <= 15 chars, enum strings <= 25 chars and <= 16 states (checked by tests).
"""

from __future__ import annotations

import re
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
    #: the pipeline output (``results``/``arrays`` key) a result readback shows
    source: str = ""
    #: a waveform clients may write (a long string setting, e.g. ``BackgroundId``)
    output: bool = False
    #: for waveforms sized at runtime: the db macro of the length (``nelm`` is its default)
    nelm_macro: str = ""

    @property
    def writable(self) -> bool:
        """Whether CA clients may put to the PV (output records, output waveforms)."""
        return self.record in OUTPUT_RECORDS or (self.output and self.record == "waveform")

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
        ftvl=setting.ftvl,
        nelm=setting.nelm,
        value=None if enums is not None else setting.value,
    )


def _pair(setting: PVDef, rbv_record: str, rbv_desc: str,
          rbv_enums: tuple[str, ...] | None = None) -> tuple[PVDef, PVDef]:
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
    PVDef("cameras", "Cameras_RBV", "waveform", "Configured cameras (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
    PVDef("pipelines", "Pipelines_RBV", "waveform", "Saved pipelines (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
    PVDef("instances", "Instances_RBV", "waveform", "Running instances (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
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
    PVDef("status_message", "StatusMessage_RBV", "waveform", "Last status or error message", ftvl="CHAR",
          nelm=TEXT_NELM),
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

# =========================================================================================
# Pipeline (NDPluginStats-like): $(P)<id>:
# =========================================================================================
#: Slices with readbacks (``Slice0:`` .. ``Slice14:``); cam_server makes an odd number of slices,
#: so ``Slices:Number`` 0..15 gives at most 15.
MAX_SLICES = 15
#: ``Config_RBV`` (effective config as JSON; longer texts are cut).
CONFIG_NELM = 16384
#: Initial length of the profile/axis/fit waveforms (grown at runtime when a pipeline needs more).
PROFILE_NELM = 4096
THRESHOLD_LIMIT = 1e9
BACKGROUND_MODES = ("Disable", "Enable", "Signed", "Passive")
SLICE_ORIENTATIONS = ("vertical", "horizontal")


def _result(attr: str, name: str, desc: str, source: str, egu: str = "", prec: int = 3) -> PVDef:
    return PVDef(attr, name, "ai", desc, egu=egu, prec=prec, source=source)


PIPELINE_STATUS_PVS: tuple[PVDef, ...] = (
    *_pair(PVDef("enable_callbacks", "EnableCallbacks", "bo", "Start (1) / stop (0) the instance",
                 enums=DISABLE_ENABLE), "bi", "Pipeline instance running"),
    PVDef("plugin_type", "PluginType_RBV", "stringin", "Plugin type", value="NDPluginStats"),
    PVDef("nd_array_port", "NDArrayPort_RBV", "stringin", "Camera the pipeline reads"),
    PVDef("detector_state", "DetectorState_RBV", "mbbi", "Pipeline state", enums=DETECTOR_STATES,
          severities=tuple("MAJOR" if s in ("Error", "Disconnected") else "" for s in DETECTOR_STATES)),
    PVDef("status_message", "StatusMessage_RBV", "waveform", "Last status or processing error", ftvl="CHAR",
          nelm=TEXT_NELM),
    PVDef("stream_address", "StreamAddress_RBV", "waveform", "bsread stream address", ftvl="CHAR", nelm=TEXT_NELM),
    PVDef("read_only", "ReadOnly_RBV", "bi", "Instance is read-only", enums=NO_YES),
    PVDef("config", "Config_RBV", "waveform", "Effective config (JSON)", ftvl="CHAR", nelm=CONFIG_NELM, value="{}"),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Frames processed"),
    PVDef("array_rate", "ArrayRate_RBV", "ai", "Processing rate", egu="Hz", prec=2),
    PVDef("execution_time", "ExecutionTime_RBV", "ai", "Processing time per frame", egu="ms", prec=3),
    PVDef("dropped_arrays", "DroppedArrays_RBV", "longin", "Frames dropped"),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the last frame"),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Processed image width (width)", egu="px", source="width"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Processed image height (height)", egu="px", source="height"),
)

PIPELINE_SETTING_PVS: tuple[PVDef, ...] = (
    *_pair(PVDef("centroid_threshold", "CentroidThreshold", "ao", "Threshold, 0 = off (image_threshold)",
                 prec=1, low=0.0, high=THRESHOLD_LIMIT), "ai", "Pixel threshold in force"),
    *_pair(PVDef("roi_min_x", "ROI:MinX", "longout", "ROI first column", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI first column in force"),
    *_pair(PVDef("roi_min_y", "ROI:MinY", "longout", "ROI first row", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI first row in force"),
    *_pair(PVDef("roi_size_x", "ROI:SizeX", "longout", "ROI width", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI width in force"),
    *_pair(PVDef("roi_size_y", "ROI:SizeY", "longout", "ROI height", egu="px", low=0, high=PIXEL_LIMIT),
           "longin", "ROI height in force"),
    *_pair(PVDef("roi_enable", "ROI:Enable", "bo", "Apply the ROI (image_region_of_interest)", enums=DISABLE_ENABLE),
           "bi", "ROI in force"),
    *_pair(PVDef("enable_background", "EnableBackground", "mbbo", "Background subtraction mode",
                 enums=BACKGROUND_MODES), "mbbi", "Background subtraction in force"),
    *_pair(PVDef("background_id", "BackgroundId", "waveform", "Background id (image_background)", ftvl="CHAR",
                 nelm=TEXT_NELM, output=True), "waveform", "Background id in force"),
    *_pair(PVDef("save_background", "SaveBackground", "bo", "Write 1: collect a background now",
                 enums=("Done", "Save")), "bi", "Background collection busy", ("Done", "Saving")),
    *_pair(PVDef("num_background_images", "NumBackgroundImages", "longout", "Images averaged per background",
                 low=1, high=1000, value=10), "longin", "Images per background in force"),
    PVDef("valid_background", "ValidBackground_RBV", "bi", "Background usable", enums=("Invalid", "Valid")),
    *_pair(PVDef("good_region_enable", "GoodRegion:Enable", "bo", "Use good region (image_good_region)",
                 enums=DISABLE_ENABLE), "bi", "Good region in force"),
    *_pair(PVDef("good_region_threshold", "GoodRegion:Threshold", "ao", "Good region level, fraction of max",
                 prec=3, low=0.0, high=1.0, value=0.3), "ai", "Good region level in force"),
    *_pair(PVDef("good_region_gfscale", "GoodRegion:GFScale", "ao", "Good region widening factor", prec=2,
                 low=0.0, high=100.0, value=1.8), "ai", "Good region widening in force"),
    *_pair(PVDef("slices_number", "Slices:Number", "longout", "Slices, 0 = none (image_slices)",
                 low=0, high=MAX_SLICES), "longin", "Number of slices in force"),
    *_pair(PVDef("slices_scale", "Slices:Scale", "ao", "Slice extent in sigmas", prec=2, low=0.0, high=100.0,
                 value=2.0), "ai", "Slice extent in force"),
    *_pair(PVDef("slices_orientation", "Slices:Orientation", "mbbo", "Slice orientation", enums=SLICE_ORIENTATIONS),
           "mbbi", "Slice orientation in force"),
    *_pair(PVDef("averaging", "Averaging", "longout", "Frames averaged, <0 rolling, 0 = off",
                 low=-1000, high=1000), "longin", "Frames averaged in force"),
    *_pair(PVDef("max_array_rate", "MaxArrayRate", "ao", "Max processing rate, 0 = unlimited", egu="Hz", prec=2,
                 low=0.0, high=1000.0), "ai", "Max processing rate in force"),
    *_pair(PVDef("pause", "Pause", "bo", "Pause processing (paused)", enums=NO_YES), "bi", "Processing paused"),
)


def _fit_results(prefix: str, attr: str, axis: str, source: str, what: str) -> tuple[PVDef, ...]:
    return (
        _result(f"{attr}_mean", f"{prefix}Mean_RBV", f"{what} mean", f"{source}_fit_mean"),
        _result(f"{attr}_sigma", f"{prefix}Sigma_RBV", f"{what} sigma", f"{source}_fit_standard_deviation"),
        _result(f"{attr}_amplitude", f"{prefix}Amplitude_RBV", f"{what} amplitude", f"{source}_fit_amplitude"),
        _result(f"{attr}_offset", f"{prefix}Offset_RBV", f"{what} offset", f"{source}_fit_offset"),
    )


def _slice_results(index: int) -> tuple[PVDef, ...]:
    key = f"slice_{index}"
    return (
        _result(f"slice{index}_center_x", f"Slice{index}:CenterX_RBV", f"Slice {index} center X", f"{key}_center_x"),
        _result(f"slice{index}_center_y", f"Slice{index}:CenterY_RBV", f"Slice {index} center Y", f"{key}_center_y"),
        _result(f"slice{index}_sigma", f"Slice{index}:Sigma_RBV", f"Slice {index} sigma", f"{key}_standard_deviation"),
        _result(f"slice{index}_total", f"Slice{index}:Total_RBV", f"Slice {index} intensity", f"{key}_intensity"),
    )


PIPELINE_RESULT_PVS: tuple[PVDef, ...] = (
    _result("centroid_x", "CentroidX_RBV", "Centroid X (x_center_of_mass)", "x_center_of_mass"),
    _result("centroid_y", "CentroidY_RBV", "Centroid Y (y_center_of_mass)", "y_center_of_mass"),
    _result("sigma_x", "SigmaX_RBV", "RMS width X (x_rms)", "x_rms"),
    _result("sigma_y", "SigmaY_RBV", "RMS width Y (y_rms)", "y_rms"),
    _result("total", "Total_RBV", "Sum of the image (intensity)", "intensity", prec=0),
    _result("min_value", "MinValue_RBV", "Minimum pixel value (min_value)", "min_value", prec=0),
    _result("max_value", "MaxValue_RBV", "Maximum pixel value (max_value)", "max_value", prec=0),
    _result("fwhm_x", "FWHMX_RBV", "FWHM X (x_fwhm)", "x_fwhm"),
    _result("fwhm_y", "FWHMY_RBV", "FWHM Y (y_fwhm)", "y_fwhm"),
    *_fit_results("FitX:", "fit_x", "x", "x", "Gauss fit X"),
    *_fit_results("FitY:", "fit_y", "y", "y", "Gauss fit Y"),
    *_fit_results("GoodRegion:FitX:", "gr_fit_x", "x", "gr_x", "Good region fit X"),
    *_fit_results("GoodRegion:FitY:", "gr_fit_y", "y", "gr_y", "Good region fit Y"),
    _result("gr_total", "GoodRegion:Total_RBV", "Good region intensity (gr_intensity)", "gr_intensity", prec=0),
    PVDef("slices_amount", "Slices:Amount_RBV", "longin", "Slices computed (slice_amount)", source="slice_amount"),
    _result("slices_length", "Slices:Length_RBV", "Slice length (slice_length)", "slice_length"),
    *(pv for index in range(MAX_SLICES) for pv in _slice_results(index)),
    _result("coupling", "Coupling_RBV", "Coupling (coupling)", "coupling"),
    _result("coupling_slope", "CouplingSlope_RBV", "Coupling slope (coupling_slope)", "coupling_slope"),
    _result("coupling_offset", "CouplingOffset_RBV", "Coupling offset (coupling_offset)", "coupling_offset"),
)

#: ``$(P)<id>:`` without the waveforms.
PIPELINE_PVS: tuple[PVDef, ...] = PIPELINE_STATUS_PVS + PIPELINE_SETTING_PVS + PIPELINE_RESULT_PVS


def _profile(attr: str, name: str, desc: str, source: str) -> PVDef:
    return PVDef(attr, name, "waveform", desc, ftvl="DOUBLE", nelm=PROFILE_NELM, source=source, nelm_macro="NPROFILE")


#: ``$(P)<id>:`` waveforms (DOUBLE; NELM ``PROFILE_NELM`` or more, see :mod:`camioc.ioc.pipeline`).
PIPELINE_ARRAY_PVS: tuple[PVDef, ...] = (
    _profile("profile_x", "ProfileX_RBV", "Column sums (x_profile)", "x_profile"),
    _profile("profile_y", "ProfileY_RBV", "Row sums (y_profile)", "y_profile"),
    _profile("axis_x", "AxisX_RBV", "X axis (x_axis)", "x_axis"),
    _profile("axis_y", "AxisY_RBV", "Y axis (y_axis)", "y_axis"),
    _profile("fit_x_curve", "FitX:Curve_RBV", "Gauss fit X (x_fit_gauss_function)", "x_fit_gauss_function"),
    _profile("fit_y_curve", "FitY:Curve_RBV", "Gauss fit Y (y_fit_gauss_function)", "y_fit_gauss_function"),
)

#: Outputs that have a readback of their own (or need none: ``timestamp`` is the PVs' timestamp,
#: ``slice_orientation`` is ``Slices:Orientation_RBV``); every other scalar output gets an
#: ``Out:<field>_RBV``.
NOT_OUT_FIELDS = frozenset({spec.source for spec in PIPELINE_PVS if spec.source}) | {"timestamp", "slice_orientation"}
#: Slice outputs of slices without readbacks (index >= MAX_SLICES) get no ``Out:`` either.
SLICE_FIELD = re.compile(r"slice_\d+_(center_x|center_y|standard_deviation|intensity)")
#: ``Out:<field>_RBV`` readbacks per pipeline at most; characters of field names other than these
#: become ``_``, and names are cut to ``OUT_NAME_LENGTH`` characters.
MAX_OUT_FIELDS = 64
OUT_NAME_LENGTH = 40
OUT_PREFIX = "Out:"
_OUT_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def out_field_name(field: str) -> str:
    """The PV name part of a user output field (``Out:<this>_RBV``): unsafe characters -> ``_``."""
    return _OUT_UNSAFE.sub("_", str(field))[:OUT_NAME_LENGTH] or "_"


def is_out_field(field: str) -> bool:
    """Whether a scalar output ``field`` is shown on an ``Out:<field>_RBV``."""
    return field not in NOT_OUT_FIELDS and not SLICE_FIELD.fullmatch(field)


def out_field_spec(index: int, field: str, text: bool = False) -> PVDef:
    """The readback of user output ``field``: ``ai`` (numbers) or ``stringin`` (text)."""
    desc = f"Output {field}"
    desc = desc if len(desc) <= 40 else desc[:37] + "..."
    desc = desc.replace('"', "'")
    if text:
        return PVDef(f"out_{index}", f"{OUT_PREFIX}{out_field_name(field)}_RBV", "stringin", desc, source=str(field))
    return PVDef(f"out_{index}", f"{OUT_PREFIX}{out_field_name(field)}_RBV", "ai", desc, prec=3, source=str(field))


#: Every table by block name (the db generator, the screen generator and tests iterate this).
TABLES: dict[str, tuple[PVDef, ...]] = {
    "service": SERVICE_PVS,
    "camera": CAMERA_PVS,
    "image": IMAGE_PVS,
    "pipeline": PIPELINE_PVS,
    "pipeline_arrays": PIPELINE_ARRAY_PVS,
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
    "BACKGROUND_MODES",
    "CAMERA_DATA_READBACKS",
    "CAMERA_PVS",
    "COLOR_MODES",
    "CONFIG_NELM",
    "DATA_TYPES",
    "DEFAULT_IMAGE_ELEMENTS",
    "DEFAULT_IMAGE_FORMAT",
    "DETECTOR_STATES",
    "IMAGE_FTVL",
    "IMAGE_PVS",
    "MAX_OUT_FIELDS",
    "MAX_SLICES",
    "NOT_OUT_FIELDS",
    "OUT_PREFIX",
    "PIPELINE_ARRAY_PVS",
    "PIPELINE_PVS",
    "PIPELINE_RESULT_PVS",
    "PIPELINE_SETTING_PVS",
    "PIPELINE_STATUS_PVS",
    "PROFILE_NELM",
    "SLICE_ORIENTATIONS",
    "ImageFormat",
    "PVDef",
    "SERVICE_PVS",
    "TABLES",
    "image_format",
    "is_out_field",
    "out_field_name",
    "out_field_spec",
    "spec_by_attr",
    "spec_by_name",
    "wire_ftvl",
]
