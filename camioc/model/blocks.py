"""Every block's PV table: the device model as the transports and generators walk it.

A table holds the PVs of one *block*, named relative to the block's prefix
(:mod:`camioc.model.pvnames`):

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

The settings are not listed here: they are the marked fields of the config models
(:class:`~camioc.config.camera.CameraConfig`, :class:`~camioc.config.pipeline.PipelineConfig`),
walked by :class:`~camioc.model.settings.DeviceSettings`. What is listed is what is not config:
commands (``Acquire``, ``EnableCallbacks``, ``SaveBackground``, ``StopAll``), status and result
readbacks. Result readbacks name the pipeline output they show in ``source`` (cam_server's output
field names, reference/camserver-compat.md §2.3); ``Out:<field>_RBV`` readbacks of other scalar
outputs are made at runtime by :func:`out_field_spec`.
"""

from __future__ import annotations

import re

from camioc.config.camera import CameraConfig
from camioc.config.pipeline import PipelineConfig
from camioc.config.pv import DISABLE_ENABLE, MAX_SLICES, NO_YES, TEXT_NELM
from camioc.model.adcore import ADBASE_PVS, NDARRAY_BASE_PVS, NDPLUGIN_BASE_PVS, NDSTATS_PVS, without
from camioc.model.health import SERVICE_HEALTH_PVS, WORKER_HEALTH_PVS
from camioc.model.records import COLOR_MODES, DATA_TYPES, DETECTOR_STATES, IMAGE_FTVL, PIXEL_EGU, PVDef, pair
from camioc.model.settings import DeviceSettings

#: The settings of a camera and of a pipeline: the marked fields of their config models.
CAMERA_SETTINGS = DeviceSettings.of(CameraConfig)
PIPELINE_SETTINGS = DeviceSettings.of(PipelineConfig)

# =========================================================================================
# Service: $(P)
# =========================================================================================
JSON_LIST_NELM = 65536

SERVICE_PVS: tuple[PVDef, ...] = (
    PVDef("version", "Version_RBV", "stringin", "camioc version"),
    PVDef("heartbeat", "HEARTBEAT", "longin", "Heartbeat counter, +1 per second"),
    PVDef("uptime", "UPTIME", "stringin", "Time since start (d, hh:mm:ss)"),
    PVDef("start_count", "START_CNT", "longin", "Number of server starts"),
    *SERVICE_HEALTH_PVS,
    PVDef("cameras", "Cameras_RBV", "waveform", "Configured cameras (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
    PVDef("pipelines", "Pipelines_RBV", "waveform", "Saved pipelines (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
    PVDef("instances", "Instances_RBV", "waveform", "Running instances (JSON list)", ftvl="CHAR", nelm=JSON_LIST_NELM,
          value="[]"),
    PVDef("num_instances", "NumInstances_RBV", "longin", "Running camera + pipeline instances"),
    PVDef("pv_names", "PvNames_RBV", "waveform", "PV names of cameras, pipelines (JSON)", ftvl="CHAR",
          nelm=JSON_LIST_NELM, value='{"cameras":{},"pipelines":{}}'),
    PVDef("stop_all", "StopAll", "bo", "Write 1 to stop every instance", enums=("Done", "Stop")),
)

# =========================================================================================
# Camera driver: $(P)<cam>:cam1:
# =========================================================================================

_CAMERA_OWN_PVS: tuple[PVDef, ...] = (
    *pair(PVDef("acquire", "Acquire", "bo", "Start (1) / stop (0) the camera instance", enums=("Done", "Acquire")),
           "bi", "Camera instance running", ("Done", "Acquiring")),
    PVDef("detector_state", "DetectorState_RBV", "mbbi", "Detector state", enums=DETECTOR_STATES,
          severities=tuple("MAJOR" if s in ("Error", "Disconnected") else "" for s in DETECTOR_STATES)),
    PVDef("status_message", "StatusMessage_RBV", "waveform", "Last status or error message", ftvl="CHAR",
          nelm=TEXT_NELM),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Frames sent"),
    PVDef("array_rate", "ArrayRate_RBV", "ai", "Frame rate", egu="Hz", prec=2, mdel=0.01),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the last frame"),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Streamed image width", egu="px"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Streamed image height", egu="px"),
    PVDef("max_size_x", "MaxSizeX_RBV", "longin", "Sensor width", egu="px"),
    PVDef("max_size_y", "MaxSizeY_RBV", "longin", "Sensor height", egu="px"),
    PVDef("data_type", "DataType_RBV", "mbbi", "Pixel data type", enums=DATA_TYPES),
    PVDef("color_mode", "ColorMode_RBV", "mbbi", "Color mode", enums=COLOR_MODES),
    *CAMERA_SETTINGS.pvs(),
    PVDef("stream_address", "StreamAddress_RBV", "waveform", "bsread stream address", ftvl="CHAR", nelm=TEXT_NELM),
    PVDef("clients", "Clients_RBV", "longin", "Connected stream subscribers"),
    *WORKER_HEALTH_PVS,
)
#: camioc's camera rows, then ADCore's NDArrayBase and ADBase rows it does not declare itself.
CAMERA_PVS: tuple[PVDef, ...] = _CAMERA_OWN_PVS + without(NDARRAY_BASE_PVS + ADBASE_PVS,
                                                          (pv.name for pv in _CAMERA_OWN_PVS))

#: Camera readbacks that describe data from the camera: INVALID while it is in Error/Disconnected.
CAMERA_DATA_READBACKS: tuple[str, ...] = (
    "array_counter", "array_rate", "unique_id", "array_size0", "array_size1",
    "max_size_x", "max_size_y", "data_type", "color_mode", "clients",
    "array_size_x", "array_size_y", "array_size_z", "array_size_bytes", "array_size2", "ndimensions",
)

# =========================================================================================
# Image (NDStdArrays-like): $(P)<cam>:image1:
# =========================================================================================
MIN_CALLBACK_TIME_LIMIT = 3600.0

_IMAGE_OWN_PVS: tuple[PVDef, ...] = (
    PVDef("array_data", "ArrayData", "waveform", "Latest image, flattened row-major", ftvl=IMAGE_FTVL),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Image width (dimension 0)", egu="px"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Image height (dimension 1)", egu="px"),
    PVDef("array_size2", "ArraySize2_RBV", "longin", "Image dimension 2 (0: mono)", egu="px"),
    PVDef("ndimensions", "NDimensions_RBV", "longin", "Number of image dimensions"),
    PVDef("data_type", "DataType_RBV", "mbbi", "Image data type", enums=DATA_TYPES),
    PVDef("color_mode", "ColorMode_RBV", "mbbi", "Image color mode", enums=COLOR_MODES),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the image"),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Images published on CA"),
    *pair(PVDef("enable_callbacks", "EnableCallbacks", "bo", "Publish images on CA", enums=DISABLE_ENABLE,
                 value="Enable"), "bi", "Image publishing in force"),
    *pair(PVDef("min_callback_time", "MinCallbackTime", "ao", "Min time between published images",
                 egu="s", prec=3, low=0.0, high=MIN_CALLBACK_TIME_LIMIT, value=0.5),
           "ai", "Min time between images in force"),
    PVDef("plugin_type", "PluginType_RBV", "stringin", "Plugin type", value="NDPluginStdArrays"),
)
#: NDStdArrays: camioc's image rows, then NDArrayBase and NDPluginBase rows it does not declare itself.
IMAGE_PVS: tuple[PVDef, ...] = _IMAGE_OWN_PVS + without(NDARRAY_BASE_PVS + NDPLUGIN_BASE_PVS,
                                                        (pv.name for pv in _IMAGE_OWN_PVS))

# =========================================================================================
# Pipeline (NDPluginStats-like): $(P)<id>:
# =========================================================================================
#: ``Config_RBV`` (effective config as JSON; longer texts are cut).
CONFIG_NELM = 16384
#: Initial length of the profile/axis/fit waveforms (grown at runtime when a pipeline needs more).
PROFILE_NELM = 4096


#: ``MeanValue_RBV``'s source: a function's ``mean_value`` output, else intensity / (width * height)
MEAN_SOURCE = "mean_value"


def _result(attr: str, name: str, desc: str, source: str, egu: str = "", prec: int = 3, axis: bool = False) -> PVDef:
    """A result readback; ``axis``: a position or width in the camera's axis unit (``px`` here)."""
    if axis:
        return PVDef(attr, name, "ai", desc, egu=PIXEL_EGU, prec=prec, source=source, axis_unit=True)
    return PVDef(attr, name, "ai", desc, egu=egu, prec=prec, source=source)


PIPELINE_STATUS_PVS: tuple[PVDef, ...] = (
    *pair(PVDef("enable_callbacks", "EnableCallbacks", "bo", "Start (1) / stop (0) the instance",
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
    PVDef("array_rate", "ArrayRate_RBV", "ai", "Processing rate", egu="Hz", prec=2, mdel=0.01),
    PVDef("execution_time", "ExecutionTime_RBV", "ai", "Processing time per frame", egu="ms", prec=3,
          mdel=0.1),
    PVDef("dropped_arrays", "DroppedArrays_RBV", "longin", "Frames dropped"),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the last frame"),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Processed image width (width)", egu="px", source="width"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Processed image height (height)", egu="px", source="height"),
    *WORKER_HEALTH_PVS,
)

#: The background's local setting, command and readback, served after ``BackgroundId``.
BACKGROUND_EXTRAS: tuple[PVDef, ...] = (
    *pair(PVDef("save_background", "SaveBackground", "bo", "Write 1: collect a background now",
                enums=("Done", "Save")), "bi", "Background collection busy", ("Done", "Saving")),
    *pair(PVDef("num_background_images", "NumBackgroundImages", "longout", "Images averaged per background",
                low=1, high=1000, value=10), "longin", "Images per background in force"),
    PVDef("valid_background", "ValidBackground_RBV", "bi", "Background usable", enums=("Invalid", "Valid")),
)

#: The settings (from the config model, in field order) and the background extras.
PIPELINE_SETTING_PVS: tuple[PVDef, ...] = tuple(
    pv for setting in PIPELINE_SETTINGS.settings for pv in (
        (setting.setpoint, setting.readback, *BACKGROUND_EXTRAS) if setting.key == "image_background"
        else (setting.setpoint, setting.readback)))


def _fit_results(prefix: str, attr: str, axis: str, source: str, what: str) -> tuple[PVDef, ...]:
    return (
        _result(f"{attr}_mean", f"{prefix}Mean_RBV", f"{what} mean", f"{source}_fit_mean", axis=True),
        _result(f"{attr}_sigma", f"{prefix}Sigma_RBV", f"{what} sigma", f"{source}_fit_standard_deviation",
                axis=True),
        _result(f"{attr}_amplitude", f"{prefix}Amplitude_RBV", f"{what} amplitude", f"{source}_fit_amplitude"),
        _result(f"{attr}_offset", f"{prefix}Offset_RBV", f"{what} offset", f"{source}_fit_offset"),
    )


def _slice_results(index: int) -> tuple[PVDef, ...]:
    key = f"slice_{index}"
    return (
        _result(f"slice{index}_center_x", f"Slice{index}:CenterX_RBV", f"Slice {index} center X", f"{key}_center_x",
                axis=True),
        _result(f"slice{index}_center_y", f"Slice{index}:CenterY_RBV", f"Slice {index} center Y", f"{key}_center_y",
                axis=True),
        _result(f"slice{index}_sigma", f"Slice{index}:Sigma_RBV", f"Slice {index} sigma", f"{key}_standard_deviation",
                axis=True),
        _result(f"slice{index}_total", f"Slice{index}:Total_RBV", f"Slice {index} intensity", f"{key}_intensity"),
    )


PIPELINE_RESULT_PVS: tuple[PVDef, ...] = (
    _result("centroid_x", "CentroidX_RBV", "Centroid X (x_center_of_mass)", "x_center_of_mass", axis=True),
    _result("centroid_y", "CentroidY_RBV", "Centroid Y (y_center_of_mass)", "y_center_of_mass", axis=True),
    _result("sigma_x", "SigmaX_RBV", "RMS width X (x_rms)", "x_rms", axis=True),
    _result("sigma_y", "SigmaY_RBV", "RMS width Y (y_rms)", "y_rms", axis=True),
    _result("total", "Total_RBV", "Sum of the image (intensity)", "intensity", prec=0),
    _result("min_value", "MinValue_RBV", "Minimum pixel value (min_value)", "min_value", prec=0),
    _result("max_value", "MaxValue_RBV", "Maximum pixel value (max_value)", "max_value", prec=0),
    _result("fwhm_x", "FWHMX_RBV", "FWHM X (x_fwhm)", "x_fwhm", axis=True),
    _result("fwhm_y", "FWHMY_RBV", "FWHM Y (y_fwhm)", "y_fwhm", axis=True),
    *_fit_results("FitX:", "fit_x", "x", "x", "Gauss fit X"),
    *_fit_results("FitY:", "fit_y", "y", "y", "Gauss fit Y"),
    *_fit_results("GoodRegion:FitX:", "gr_fit_x", "x", "gr_x", "Good region fit X"),
    *_fit_results("GoodRegion:FitY:", "gr_fit_y", "y", "gr_y", "Good region fit Y"),
    _result("gr_total", "GoodRegion:Total_RBV", "Good region intensity (gr_intensity)", "gr_intensity", prec=0),
    PVDef("slices_amount", "Slices:Amount_RBV", "longin", "Slices computed (slice_amount)", source="slice_amount"),
    _result("slices_length", "Slices:Length_RBV", "Slice length (slice_length)", "slice_length", axis=True),
    *(pv for index in range(MAX_SLICES) for pv in _slice_results(index)),
    _result("coupling", "Coupling_RBV", "Coupling (coupling)", "coupling"),
    _result("coupling_slope", "CouplingSlope_RBV", "Coupling slope (coupling_slope)", "coupling_slope"),
    _result("coupling_offset", "CouplingOffset_RBV", "Coupling offset (coupling_offset)", "coupling_offset"),
    # NDStats names of results: derived from cam_server's outputs, or of a function's outputs of that name
    _result("mean_value", "MeanValue_RBV", "Mean pixel value (intensity / pixels)", MEAN_SOURCE),
    _result("net", "Net_RBV", "Net sum (intensity, background gone)", "intensity", prec=0),
    _result("sigma_value", "Sigma_RBV", "Pixel value sigma (output sigma)", "sigma"),
    _result("sigma_xy", "SigmaXY_RBV", "XY width (output sigma_xy)", "sigma_xy", axis=True),
    _result("min_x_position", "MinX_RBV", "X of the minimum (output min_x)", "min_x", axis=True),
    _result("min_y_position", "MinY_RBV", "Y of the minimum (output min_y)", "min_y", axis=True),
    _result("max_x_position", "MaxX_RBV", "X of the maximum (output max_x)", "max_x", axis=True),
    _result("max_y_position", "MaxY_RBV", "Y of the maximum (output max_y)", "max_y", axis=True),
)

#: Profile lengths (``ProfileSizeX_RBV``): the length of ``x_profile`` / ``y_profile``.
PROFILE_SIZE_PVS: tuple[PVDef, ...] = (
    PVDef("profile_size_x", "ProfileSizeX_RBV", "longin", "Length of ProfileX_RBV", egu="px"),
    PVDef("profile_size_y", "ProfileSizeY_RBV", "longin", "Length of ProfileY_RBV", egu="px"),
)

_PIPELINE_OWN_PVS: tuple[PVDef, ...] = PIPELINE_STATUS_PVS + PIPELINE_SETTING_PVS + PIPELINE_RESULT_PVS
#: ``$(P)<id>:`` without the waveforms: camioc's rows, then NDArrayBase, NDPluginBase and NDStats
#: rows it does not declare itself.
PIPELINE_PVS: tuple[PVDef, ...] = _PIPELINE_OWN_PVS + without(
    PROFILE_SIZE_PVS + NDARRAY_BASE_PVS + NDPLUGIN_BASE_PVS + NDSTATS_PVS, (pv.name for pv in _PIPELINE_OWN_PVS))


def _profile(attr: str, name: str, desc: str, source: str) -> PVDef:
    return PVDef(attr, name, "waveform", desc, ftvl="DOUBLE", nelm=PROFILE_NELM, source=source, nelm_macro="NPROFILE")


#: ``$(P)<id>:`` waveforms (DOUBLE; NELM ``PROFILE_NELM`` or more, see :mod:`camioc.ioc.server`).
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


def out_field_name(field: str, length: int = OUT_NAME_LENGTH) -> str:
    """The PV name part of a user output field (``Out:<this>_RBV``): unsafe characters -> ``_``,
    cut to ``length`` (the server passes what fits the 60 characters of a PV name)."""
    return _OUT_UNSAFE.sub("_", str(field))[:length] or "_"


def is_out_field(field: str) -> bool:
    """Whether a scalar output ``field`` is shown on an ``Out:<field>_RBV``."""
    return field not in NOT_OUT_FIELDS and not SLICE_FIELD.fullmatch(field)


def out_field_spec(index: int, field: str, text: bool = False, length: int = OUT_NAME_LENGTH) -> PVDef:
    """The readback of user output ``field``: ``ai`` (numbers) or ``stringin`` (text)."""
    desc = f"Output {field}"
    desc = desc if len(desc) <= 40 else desc[:37] + "..."
    desc = desc.replace('"', "'")
    name = f"{OUT_PREFIX}{out_field_name(field, length)}_RBV"
    if text:
        return PVDef(f"out_{index}", name, "stringin", desc, source=str(field))
    return PVDef(f"out_{index}", name, "ai", desc, prec=3, source=str(field))


def _check_unique(table: tuple[PVDef, ...]) -> tuple[PVDef, ...]:
    names = [pv.name for pv in table]
    attrs = [pv.attr for pv in table]
    if len(set(names)) != len(names) or len(set(attrs)) != len(attrs):
        raise AssertionError("a block table names a PV or an attr twice")
    return table


#: Every table by block name (the db generator, the screen generator and tests iterate this).
TABLES: dict[str, tuple[PVDef, ...]] = {
    "service": _check_unique(SERVICE_PVS),
    "camera": _check_unique(CAMERA_PVS),
    "image": _check_unique(IMAGE_PVS),
    "pipeline": _check_unique(PIPELINE_PVS),
    "pipeline_arrays": _check_unique(PIPELINE_ARRAY_PVS),
}
