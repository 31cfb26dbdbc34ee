"""ADCore's standard PV sets, as far as camioc's blocks do not declare them themselves.

areaDetector clients (ophyd's ``CamBase``/``ImagePlugin``/``StatsPlugin``, ophyd-async's
``ADBaseIO``/``NDPluginBaseIO``/``NDStatsIO``, ADCore's screens) connect to every PV of ADCore's
templates (``NDArrayBase``, ``ADBase``, ``NDPluginBase``, ``NDStats``). camioc serves them with
ADCore's names and record types; what they mean here:

- *Readbacks of the frame* (``ArraySizeX_RBV``, ``TimeStamp_RBV``, ``Dimensions_RBV``, ...) show the
  last frame; *identity* readbacks (``PortName_RBV``, ``Manufacturer_RBV``, ``Model_RBV``,
  ``DriverVersion_RBV``, ...) say what camioc and the source are.
- *Kept* settings (:attr:`PVDef.kept`: ``Gain``, ``TriggerMode``, ``ShutterMode``, ``QueueSize``,
  ``ComputeHistogram``, ...) have no meaning for a camioc source or pipeline: a put is accepted and
  kept, the setpoint and its ``_RBV`` show it, and nothing else changes (README, PV table).
- Settings that act are handled by the block's device (:mod:`camioc.model.camera`,
  :mod:`camioc.model.pipeline`): ``ImageMode``/``NumImages``, ``ArrayCounter``, ``DroppedArrays``,
  ``WaitForPlugins``/``BlockingCallbacks`` (an acquisition of a given number of images completes
  once the pipelines have results of its last frame).

``DroppedOutputArrays_RBV`` is not served: with ``image2:`` it would pass the longest suffix the
60-character PV name budget is computed from (:mod:`camioc.model.instance_names`).

The tables are merged into the blocks' tables (:mod:`camioc.model.blocks`) without the names a
block already serves, so every existing name keeps its record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from camioc.config.pv import DISABLE_ENABLE, NO_YES, TEXT_NELM
from camioc.model.records import PVDef, pair

#: ``ImageMode`` states (ADBase order).
IMAGE_MODES = ("Single", "Multiple", "Continuous")
#: Elements of ``Dimensions_RBV`` / ``Dim<i>SA`` (ND_ARRAY_MAX_DIMS).
MAX_DIMS = 10
#: Elements of ``Histogram_RBV`` (camioc computes no histogram: it stays empty).
HISTOGRAM_NELM = 256
INT_LIMIT = 2**31 - 1


def kept(attr: str, name: str, record: str, desc: str, rbv_desc: str | None = None, **fields: Any
         ) -> tuple[PVDef, ...]:
    """A setting that is accepted and kept (with its ``_RBV`` if ``rbv_desc``), see the module doc."""
    if record in ("ao", "longout") and "low" not in fields:  # every numeric setting has control limits
        fields.update(low=0, high=INT_LIMIT) if record == "longout" else fields.update(low=-1e9, high=1e9)
    setpoint = PVDef(attr, name, record, desc, kept=True, **fields)
    if rbv_desc is None:
        return (setpoint,)
    rbv_record = {"ao": "ai", "bo": "bi", "mbbo": "mbbi", "longout": "longin", "stringout": "stringin"}[record]
    return pair(setpoint, rbv_record, rbv_desc)


def _text(attr: str, name: str, desc: str) -> PVDef:
    return PVDef(attr, name, "waveform", desc, ftvl="CHAR", nelm=TEXT_NELM)


def _pool() -> tuple[PVDef, ...]:
    """NDArray pool readbacks: camioc has no NDArray pool (workers own their frames): 0."""
    return (
        PVDef("pool_max_mem", "PoolMaxMem", "ai", "NDArray pool max memory (none)", egu="MB", prec=1),
        PVDef("pool_used_mem", "PoolUsedMem", "ai", "NDArray pool used memory (none)", egu="MB", prec=1),
        PVDef("pool_alloc_buffers", "PoolAllocBuffers", "longin", "NDArray pool buffers allocated"),
        PVDef("pool_free_buffers", "PoolFreeBuffers", "longin", "NDArray pool buffers free"),
        PVDef("pool_max_buffers", "PoolMaxBuffers", "longin", "NDArray pool max buffers"),
        PVDef("pool_used_buffers", "PoolUsedBuffers", "longin", "NDArray pool buffers used"),
    )


# =========================================================================================
# NDArrayBase (drivers and plugins)
# =========================================================================================
NDARRAY_BASE_PVS: tuple[PVDef, ...] = (
    PVDef("port_name", "PortName_RBV", "stringin", "Port name (camioc block)"),
    *kept("nd_attributes_file", "NDAttributesFile", "stringout", "Attributes file (kept, unused)"),
    PVDef("array_size_x", "ArraySizeX_RBV", "longin", "Image width", egu="px"),
    PVDef("array_size_y", "ArraySizeY_RBV", "longin", "Image height", egu="px"),
    PVDef("array_size_z", "ArraySizeZ_RBV", "longin", "Image depth (0: mono)", egu="px"),
    PVDef("array_size_bytes", "ArraySize_RBV", "longin", "Image size", egu="bytes"),
    PVDef("array_size2", "ArraySize2_RBV", "longin", "Image dimension 2 (0: mono)", egu="px"),
    PVDef("ndimensions", "NDimensions_RBV", "longin", "Number of image dimensions"),
    PVDef("array_counter_set", "ArrayCounter", "longout", "Set the array counter", low=0, high=INT_LIMIT),
    PVDef("ad_core_version", "ADCoreVersion_RBV", "stringin", "camioc version (no ADCore)"),
    PVDef("driver_version", "DriverVersion_RBV", "stringin", "camioc version"),
    *_pool(),
)

# =========================================================================================
# ADBase (the camera driver)
# =========================================================================================
ADBASE_PVS: tuple[PVDef, ...] = (
    PVDef("manufacturer", "Manufacturer_RBV", "stringin", "Manufacturer (camioc or source)"),
    PVDef("model", "Model_RBV", "stringin", "Model (source type)"),
    PVDef("serial_number", "SerialNumber_RBV", "stringin", "Serial number (source address)"),
    PVDef("firmware_version", "FirmwareVersion_RBV", "stringin", "Firmware version (none)"),
    PVDef("sdk_version", "SDKVersion_RBV", "stringin", "SDK version (camioc)"),
    *pair(PVDef("acquire_time", "AcquireTime", "ao", "Exposure time (kept; RBV: frame period)", egu="s",
                prec=4, low=0.0, high=3600.0), "ai", "Frame period in force"),
    *pair(PVDef("acquire_period", "AcquirePeriod", "ao", "Frame period (kept; RBV: in force)", egu="s",
                prec=4, low=0.0, high=3600.0), "ai", "Frame period in force"),
    *pair(PVDef("image_mode", "ImageMode", "mbbo", "Single / Multiple / Continuous", enums=IMAGE_MODES,
                value="Continuous"), "mbbi", "Image mode in force"),
    *pair(PVDef("num_images", "NumImages", "longout", "Images per Acquire (Multiple)", low=1, high=INT_LIMIT,
                value=1), "longin", "Images per Acquire in force"),
    PVDef("num_images_counter", "NumImagesCounter_RBV", "longin", "Images of this acquisition"),
    *kept("num_exposures", "NumExposures", "longout", "Exposures per image (kept)", "Exposures per image",
          low=1, high=INT_LIMIT, value=1),
    PVDef("num_exposures_counter", "NumExposuresCounter_RBV", "longin", "Exposures of this image"),
    PVDef("time_remaining", "TimeRemaining_RBV", "ai", "Time left in this acquisition", egu="s", prec=2),
    *pair(PVDef("wait_for_plugins", "WaitForPlugins", "bo", "Acquire waits for pipeline results",
                enums=NO_YES), "bi", "Acquire waits for pipelines"),
    PVDef("read_status", "ReadStatus", "bo", "Write 1: refresh the readbacks", enums=("Done", "Read")),
    *kept("trigger_mode", "TriggerMode", "mbbo", "Trigger mode (kept; sources run free)", "Trigger mode",
          enums=("Internal", "External")),
    *kept("gain", "Gain", "ao", "Gain (kept, no effect)", "Gain (kept)", prec=3, value=1.0),
    *kept("frame_type", "FrameType", "mbbo", "Frame type (kept)", "Frame type",
          enums=("Normal", "Background", "FlatField", "DblCorrelation")),
    *kept("array_callbacks", "ArrayCallbacks", "bo", "Array callbacks (kept)", "Array callbacks",
          enums=DISABLE_ENABLE, value="Enable"),
    *kept("data_type_set", "DataType", "mbbo", "Data type (kept; source decides)",
          enums=("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32", "Float64"),
          value="UInt16"),
    *kept("color_mode_set", "ColorMode", "mbbo", "Color mode (kept; source decides)",
          enums=("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")),
    *kept("shutter_mode", "ShutterMode", "mbbo", "Shutter mode (kept, no shutter)", "Shutter mode",
          enums=("None", "EPICS PV", "Detector output")),
    *kept("shutter_control", "ShutterControl", "bo", "Shutter control (kept)", "Shutter control",
          enums=("Close", "Open")),
    PVDef("shutter_status", "ShutterStatus_RBV", "bi", "Shutter status (no shutter)", enums=("Closed", "Open")),
    *kept("shutter_open_delay", "ShutterOpenDelay", "ao", "Shutter open delay (kept)", "Shutter open delay",
          egu="s", prec=3),
    *kept("shutter_close_delay", "ShutterCloseDelay", "ao", "Shutter close delay (kept)", "Shutter close delay",
          egu="s", prec=3),
    *kept("shutter_control_epics", "ShutterControlEPICS", "bo", "EPICS shutter control (kept)",
          enums=("Close", "Open")),
    PVDef("shutter_status_epics", "ShutterStatusEPICS_RBV", "bi", "EPICS shutter status (none)",
          enums=("Closed", "Open")),
    *kept("shutter_open_epics", "ShutterOpenEPICS", "ao", "EPICS shutter open value (kept)", value=1.0),
    *kept("shutter_close_epics", "ShutterCloseEPICS", "ao", "EPICS shutter close value (kept)"),
    *kept("shutter_fanout", "ShutterFanout", "longout", "Shutter fanout (kept)"),
    *kept("temperature", "Temperature", "ao", "Temperature setpoint (kept)", "Temperature setpoint",
          egu="C", prec=1),
    PVDef("temperature_actual", "TemperatureActual", "ai", "Temperature (no sensor)", egu="C", prec=1),
    _text("string_to_server", "StringToServer_RBV", "Last string to the source (none)"),
    _text("string_from_server", "StringFromServer_RBV", "Last string from the source (none)"),
)

# =========================================================================================
# NDPluginBase (the image blocks and the pipelines)
# =========================================================================================
NDPLUGIN_BASE_PVS: tuple[PVDef, ...] = (
    *pair(PVDef("nd_array_port_set", "NDArrayPort", "stringout", "Input port (fixed: its source)"),
          "stringin", "Input port"),
    *kept("nd_array_address", "NDArrayAddress", "longout", "Input address (kept)", "Input address"),
    *kept("min_callback_time", "MinCallbackTime", "ao", "Min time between arrays (kept)", "Min time between arrays",
          egu="s", prec=3, low=0.0, high=3600.0),
    *kept("blocking_callbacks", "BlockingCallbacks", "bo", "Acquire waits for this plugin", "Blocking callbacks",
          enums=NO_YES),
    PVDef("array_counter", "ArrayCounter_RBV", "longin", "Arrays processed"),
    PVDef("array_rate", "ArrayRate_RBV", "ai", "Array rate", egu="Hz", prec=2, mdel=0.01),
    PVDef("unique_id", "UniqueId_RBV", "int64in", "Pulse id of the last array"),
    PVDef("array_size0", "ArraySize0_RBV", "longin", "Image width (dimension 0)", egu="px"),
    PVDef("array_size1", "ArraySize1_RBV", "longin", "Image height (dimension 1)", egu="px"),
    PVDef("data_type", "DataType_RBV", "mbbi", "Data type of the last array",
          enums=("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32", "Float64")),
    PVDef("color_mode", "ColorMode_RBV", "mbbi", "Color mode of the last array",
          enums=("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")),
    PVDef("bayer_pattern", "BayerPattern_RBV", "mbbi", "Bayer pattern (mono: none)",
          enums=("RGGB", "GBRG", "GRBG", "BGGR")),
    PVDef("execution_time", "ExecutionTime_RBV", "ai", "Time per array", egu="ms", prec=3, mdel=0.1),
    *kept("queue_size", "QueueSize", "longout", "Queue size (kept; camioc: 1)", "Queue size", low=1,
          high=INT_LIMIT, value=1),
    PVDef("queue_free", "QueueFree", "longin", "Free queue elements", value=1),
    PVDef("queue_free_rbv", "QueueFree_RBV", "longin", "Free queue elements", value=1),
    PVDef("queue_use", "QueueUse", "longin", "Used queue elements"),
    *kept("queue_free_low", "QueueFreeLow", "ao", "Queue free low limit (kept)", value=0.25),
    *kept("queue_use_high", "QueueUseHIGH", "ao", "Queue use high limit (kept)", value=0.75),
    *kept("queue_use_hihi", "QueueUseHIHI", "ao", "Queue use hihi limit (kept)", value=0.9),
    *pair(PVDef("dropped_arrays_set", "DroppedArrays", "longout", "Write 0: reset the dropped count", low=0,
                high=INT_LIMIT), "longin", "Arrays dropped"),
    PVDef("disordered_arrays", "DisorderedArrays_RBV", "longin", "Arrays out of order"),
    *kept("sort_mode", "SortMode", "mbbo", "Sort mode (kept)", "Sort mode", enums=("Unsorted", "Sorted")),
    *kept("sort_time", "SortTime", "ao", "Sort time (kept)", "Sort time", egu="s", prec=3, value=0.1),
    *kept("sort_size", "SortSize", "longout", "Sort queue size (kept)", "Sort queue size", value=10),
    PVDef("sort_free", "SortFree_RBV", "longin", "Free sort queue elements"),
    *kept("max_byte_rate", "MaxByteRate", "ao", "Max output byte rate (kept)", "Max output byte rate",
          egu="B/s", prec=0),
    *kept("process_plugin", "ProcessPlugin", "bo", "Process the last array (kept)", enums=("Done", "Process")),
    PVDef("max_threads", "MaxThreads_RBV", "longin", "Threads available", value=1),
    *kept("num_threads", "NumThreads", "longout", "Threads (kept; camioc: 1)", "Threads", low=1, high=64,
          value=1),
    PVDef("time_stamp", "TimeStamp_RBV", "ai", "Frame time (EPICS epoch)", egu="s", prec=3),
    PVDef("epics_ts_sec", "EpicsTSSec_RBV", "longin", "Frame time, seconds (EPICS epoch)"),
    PVDef("epics_ts_nsec", "EpicsTSNsec_RBV", "longin", "Frame time, nanoseconds"),
    PVDef("dimensions", "Dimensions_RBV", "waveform", "Array dimensions", ftvl="LONG", nelm=MAX_DIMS),
    PVDef("dim0_sa", "Dim0SA", "waveform", "Dimension 0 (width)", ftvl="LONG", nelm=MAX_DIMS),
    PVDef("dim1_sa", "Dim1SA", "waveform", "Dimension 1 (height)", ftvl="LONG", nelm=MAX_DIMS),
    PVDef("dim2_sa", "Dim2SA", "waveform", "Dimension 2 (none)", ftvl="LONG", nelm=MAX_DIMS),
)

# =========================================================================================
# NDStats (the pipelines) beyond the results camioc has always served
# =========================================================================================
NDSTATS_PVS: tuple[PVDef, ...] = (
    *kept("compute_statistics", "ComputeStatistics", "bo", "Statistics (camioc: always)", "Statistics",
          enums=NO_YES, value="Yes"),
    *kept("compute_centroid", "ComputeCentroid", "bo", "Centroid (camioc: always)", "Centroid",
          enums=NO_YES, value="Yes"),
    *kept("compute_profiles", "ComputeProfiles", "bo", "Profiles (camioc: always)", "Profiles",
          enums=NO_YES, value="Yes"),
    *kept("compute_histogram", "ComputeHistogram", "bo", "Histogram (camioc: never)", "Histogram",
          enums=NO_YES),
    *kept("bgd_width", "BgdWidth", "longout", "Background width (kept)", "Background width", low=0,
          high=INT_LIMIT),
    *kept("cursor_x", "CursorX", "longout", "Profile cursor X (kept)", "Profile cursor X", low=0, high=INT_LIMIT),
    *kept("cursor_y", "CursorY", "longout", "Profile cursor Y (kept)", "Profile cursor Y", low=0, high=INT_LIMIT),
    *kept("hist_size", "HistSize", "longout", "Histogram bins (kept)", "Histogram bins", low=1, high=INT_LIMIT,
          value=256),
    *kept("hist_min", "HistMin", "ao", "Histogram minimum (kept)", "Histogram minimum", prec=1),
    *kept("hist_max", "HistMax", "ao", "Histogram maximum (kept)", "Histogram maximum", prec=1, value=255.0),
    PVDef("hist_entropy", "HistEntropy_RBV", "ai", "Histogram entropy (none)", prec=3),
    PVDef("histogram", "Histogram_RBV", "waveform", "Histogram (camioc: none)", ftvl="DOUBLE",
          nelm=HISTOGRAM_NELM),
    *kept("set_x_hopr", "SetXHOPR", "ao", "X HOPR of the plots (kept)"),
    *kept("set_y_hopr", "SetYHOPR", "ao", "Y HOPR of the plots (kept)"),
    *kept("max_size_x", "MaxSizeX", "longout", "Max X size (kept)", low=0, high=INT_LIMIT),
    *kept("max_size_y", "MaxSizeY", "longout", "Max Y size (kept)", low=0, high=INT_LIMIT),
)


#: ADCore's setpoints that have no ``_RBV`` in ADCore either (commands, links, limits).
NO_READBACK = frozenset({
    "NDAttributesFile", "ArrayCounter", "WaitForPlugins", "ReadStatus", "DataType", "ColorMode",
    "ShutterControlEPICS", "ShutterOpenEPICS", "ShutterCloseEPICS", "ShutterFanout", "Temperature",
    "QueueFreeLow", "QueueUseHIGH", "QueueUseHIHI", "ProcessPlugin", "SetXHOPR", "SetYHOPR", "MaxSizeX",
    "MaxSizeY",
})


def without(table: Iterable[PVDef], names: Iterable[str]) -> tuple[PVDef, ...]:
    """The rows of ``table`` whose names are not in ``names`` (a block's own rows win)."""
    taken = set(names)
    return tuple(spec for spec in table if spec.name not in taken)


def keep_commands(device: Any) -> None:
    """Give every kept setting of ``device`` the command that keeps a put (and shows it on the ``_RBV``)."""
    for attr, spec in device.specs.items():
        if spec.kept and attr not in device.commands:
            device.commands[attr] = _Keep(device, f"{attr}_rbv" if f"{attr}_rbv" in device.specs else None)


class _Keep:
    """The command of a kept setting (a class, not a closure: the device keeps a list of them)."""

    def __init__(self, device: Any, readback: str | None) -> None:
        self.device = device
        self.readback = readback

    async def __call__(self, value: Any) -> None:
        if self.readback is not None:
            await self.device.post(self.readback, value)


#: the EPICS epoch (1990-01-01) in POSIX seconds: ``TimeStamp_RBV`` counts from it, as ADCore does
EPICS_EPOCH = 631152000.0


def frame_time_values(timestamp: float) -> dict[str, Any]:
    """``TimeStamp_RBV``, ``EpicsTSSec_RBV``, ``EpicsTSNsec_RBV`` of a frame's POSIX time."""
    if timestamp <= 0:
        return {"time_stamp": 0.0, "epics_ts_sec": 0, "epics_ts_nsec": 0}
    since = float(timestamp) - EPICS_EPOCH
    seconds = int(since)
    return {"time_stamp": since, "epics_ts_sec": seconds % 2**31, "epics_ts_nsec": int((since - seconds) * 1e9)}


__all__ = [
    "ADBASE_PVS",
    "IMAGE_MODES",
    "NDARRAY_BASE_PVS",
    "NDPLUGIN_BASE_PVS",
    "NDSTATS_PVS",
    "NO_READBACK",
    "frame_time_values",
    "keep_commands",
    "kept",
    "without",
]
