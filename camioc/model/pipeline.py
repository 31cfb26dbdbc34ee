"""A pipeline's devices: ``$(P)<id>:`` (NDPluginStats-like), its waveforms and ``Out:`` readbacks.

Controls (the same code paths as the REST API: one :class:`PipelineService` call each):

- ``EnableCallbacks`` 1 -> ``get_instance_stream(hold=True)`` (starts the shared instance of a saved
  pipeline; a running private instance just stays; either way it then runs until
  ``EnableCallbacks`` 0, whatever ``no_client_timeout`` says), 0 -> ``stop_instance``. The put
  completes when the service call returns. The setpoint follows the instance (``Disable`` once it
  stopped by itself, e.g. a ``pid_range`` end or an error).
- The settings are :class:`~camioc.config.pipeline.PipelineConfig`'s marked fields; a put calls
  ``update_pipeline(id, {key: value})``: the running instance if any, else the saved config. While
  the pipeline runs as a read-only (shared) instance every setting put is refused with "Cannot set
  config on a read only instance." and changes nothing (also pending section values and
  ``NumBackgroundImages``/``SaveBackground``). ``EnableCallbacks`` always works.
- ``CentroidThreshold`` 0 and ``Averaging``/``MaxArrayRate`` 0 mean *off* (``None`` in the config);
  integral numbers are sent as JSON integers.
- Sections (a whole or nothing, :class:`~camioc.config.pv.Section`): the ROI
  (``ROI:MinX/SizeX/MinY/SizeY`` + ``ROI:Enable``; in force while enabled and both sizes > 0), the
  good region (``GoodRegion:Enable`` + ``Threshold``/``GFScale``) and the slices (``Slices:Number``
  > 0 + ``Scale``/``Orientation``). Their values can be entered in any order; the put that
  completes a section applies it, later puts change it at once; switching it off keeps the other
  setpoints, so switching it on brings it back. (cam_server computes slices only together with a
  good region, and makes their number odd.)
- Background: ``EnableBackground`` (``Disable``/``Enable``/``Signed``/``Passive``), ``BackgroundId``
  (empty = none), ``SaveBackground`` 1 collects ``NumBackgroundImages`` images of the pipeline's
  camera (``collect_background``), sets ``BackgroundId`` to the new background and completes the
  put when done (``SaveBackground_RBV`` reads ``Saving`` meanwhile). ``NumBackgroundImages`` is a
  local setting (default 10). ``ValidBackground_RBV`` is ``PipelineStatus.background_ok``.

Results: each result readback (``source`` in the spec) shows that output of the latest results,
written only when it changed, with the frame's timestamp. Alarms: ``UDF``/``INVALID`` while the
pipeline has no data (not running, no results of the current run yet, output missing or not a
finite number) or reports a processing error; the last value stays. Any other scalar output gets
an ``Out:<field>_RBV`` (:class:`OutFields`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from camioc import __version__
from camioc.config.pv import BACKGROUND_CONFIG, TEXT_NELM, config_number
from camioc.core.api import DetectorState, PipelineService, PipelineStatus
from camioc.errors import ConfigError, ReadOnlyError
from camioc.model.adcore import frame_time_values, keep_commands
from camioc.model.blocks import (
    CONFIG_NELM,
    MAX_OUT_FIELDS,
    MEAN_SOURCE,
    OUT_NAME_LENGTH,
    PIPELINE_ARRAY_PVS,
    PIPELINE_PVS,
    PIPELINE_SETTINGS,
    is_out_field,
    out_field_name,
    out_field_spec,
)
from camioc.model.camera import fixed_port
from camioc.model.device import ConfiguredDevice, Device, text
from camioc.model.records import NO_ALARM, NO_DATA, Alarm, AlarmSeverity, PVDef

_INT32 = 2**31
READ_ONLY_MESSAGE = "Cannot set config on a read only instance."
#: Writable PVs that a read-only instance refuses: the settings of its config and the background
#: (not ADCore's kept settings nor the counters: they change nothing of the instance).
_GUARDED = frozenset(spec.attr for spec in PIPELINE_PVS if spec.writable and not spec.kept) - {
    "enable_callbacks", "array_counter_set", "dropped_arrays_set", "nd_array_port_set"}


# =========================================================================================
# Config and outputs -> PV values (pure)
# =========================================================================================
def settings_in_force(config: Mapping[str, Any]) -> dict[str, Any]:
    """What each setting's ``_RBV`` shows (by setting attr) for an effective config."""
    return PIPELINE_SETTINGS.in_force(config)


def background_mode(value: Any) -> str:
    """``image_background_enable`` -> the ``EnableBackground`` state."""
    return PIPELINE_SETTINGS.by_attr["enable_background"].pv.codec.to_pv(value)


def config_json(config: Mapping[str, Any], limit: int = CONFIG_NELM - 1) -> str:
    """The effective config as compact JSON for ``Config_RBV`` (cut with ``...`` if too long)."""
    shown = json.dumps(config, separators=(",", ":"), sort_keys=True, default=str)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def result_number(value: Any) -> float | None:
    """A scalar output as a finite float, None if it is missing or not a finite number."""
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def with_derived(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """``results`` with the NDStats values camioc derives from cam_server's outputs (``MeanValue_RBV``:
    intensity / (width * height)); a function's own output of that name wins."""
    if MEAN_SOURCE in results:
        return results
    intensity, width, height = (result_number(results.get(key)) for key in ("intensity", "width", "height"))
    if intensity is None or not width or not height:
        return results
    return {**results, MEAN_SOURCE: intensity / (width * height)}


def needed_array_length(arrays: Mapping[str, Any]) -> int:
    """Elements the waveforms need for ``arrays`` (the longest 1-D array shown)."""
    sources = {spec.source for spec in PIPELINE_ARRAY_PVS}
    return max((len(value) for key, value in arrays.items() if key in sources and np.ndim(value) == 1), default=0)


def grown_capacity(current: int, needed: int) -> int:
    """The next waveform length: the smallest power of two >= ``needed`` (never shrinking)."""
    return max(current, 1 << max(0, int(needed) - 1).bit_length())


# =========================================================================================
# $(P)<id>:
# =========================================================================================
class PipelineDevice(ConfiguredDevice):
    """``$(P)<id>:`` of pipeline ``pipeline_id``, backed by ``service``."""

    def __init__(self, pipeline_id: str, service: PipelineService, specs: tuple[PVDef, ...] = PIPELINE_PVS,
                 *, port: str = "") -> None:
        # ``specs``: PIPELINE_PVS, with the camera's axis unit as EGU of positions (with_axis_unit)
        super().__init__(specs, PIPELINE_SETTINGS,
                         lambda changes: service.update_pipeline(pipeline_id, changes),
                         initial={"port_name": (port or pipeline_id)[:39], "ad_core_version": f"camioc {__version__}",
                                  "driver_version": __version__, "ndimensions": 2})
        self.pipeline_id = pipeline_id
        self.service = service
        self.read_only_instance = False
        self.camera_name = ""
        self._collecting = False
        self._result_specs = [spec for spec in PIPELINE_PVS if spec.source]
        self._counter_offset = 0
        self._dropped_offset = 0
        self._frames = 0
        self._dropped = 0
        self.commands = {"enable_callbacks": self._enable, "save_background": self._save_background,
                         "num_background_images": self._num_background_images,
                         "array_counter_set": self._set_counter, "dropped_arrays_set": self._set_dropped,
                         "nd_array_port_set": self._fixed_port}
        keep_commands(self)

    async def _set_counter(self, value: int) -> None:
        self._counter_offset = self._frames - int(value)
        await self.post("array_counter", int(value) % _INT32, force=True)

    async def _set_dropped(self, value: int) -> None:
        self._dropped_offset = self._dropped - int(value)
        await self.post("dropped_arrays", int(value) % _INT32, force=True)

    async def _fixed_port(self, value: str) -> None:
        await fixed_port(self, "nd_array_port", value)

    @property
    def blocking(self) -> bool:
        """``BlockingCallbacks`` Yes: a Single/Multiple acquisition of its camera waits for its results."""
        return self.values["blocking_callbacks_rbv"] == "Yes"

    def check_put(self, attr: str) -> None:
        if attr in _GUARDED and self.read_only_instance:
            raise ReadOnlyError(READ_ONLY_MESSAGE)

    async def _enable(self, value: str) -> None:
        if value == "Enable":
            await self.service.get_instance_stream(self.pipeline_id, hold=True)  # until EnableCallbacks 0
        else:
            await self.service.stop_instance(self.pipeline_id)

    async def _num_background_images(self, value: int) -> None:
        await self.post("num_background_images_rbv", int(value))

    async def _save_background(self, value: str) -> str:
        if value != "Save":
            return "Done"
        if self._collecting:
            raise RuntimeError("A background collection is already running.")
        camera = self.camera_name or str(self.config_in_force.get("camera_name") or "")
        if not camera:
            raise ConfigError(f"Pipeline '{self.pipeline_id}' has no camera to collect a background from.")
        self._collecting = True
        try:
            await self.post("save_background", "Save")
            await self.post("save_background_rbv", "Saving")
            background_id = await self.service.collect_background(camera, int(self.values["num_background_images_rbv"]))
            await self.update({"image_background": background_id})
        finally:
            self._collecting = False
            await self.post("save_background_rbv", "Done")
            await self.post("save_background", "Done")
        return "Done"

    async def apply_status(self, status: PipelineStatus, *, results_alarm: Alarm | None) -> None:
        """Show a status; ``results_alarm`` is None when its results are valid data."""
        running = bool(status.running)
        self.read_only_instance = bool(status.read_only and running)
        self.camera_name = str(status.camera_name or status.config.get("camera_name") or "")
        state = DetectorState(status.state)
        await self.post("detector_state", state.name)
        message = self.status_text(str(status.error or status.message or ""))
        await self.post("status_message", text(message, TEXT_NELM - 1))
        await self.post("enable_callbacks_rbv", "Enable" if running else "Disable")
        await self.post("enable_callbacks", "Enable" if running else "Disable")
        await self.post("stream_address", text(status.stream_address, TEXT_NELM - 1))
        await self.post("read_only", "Yes" if self.read_only_instance else "No")
        await self.post("nd_array_port", self.camera_name[:39])
        await self.post("nd_array_port_set", self.camera_name[:39])
        await self.post("config", config_json(status.config))
        self._frames, self._dropped = int(status.frame_count), int(status.dropped)
        await self.post("array_counter", (self._frames - self._counter_offset) % _INT32)
        await self.post("array_rate", round(float(status.frame_rate), 3))
        await self.post("execution_time", round(float(status.execution_time_ms), 3))
        await self.post("dropped_arrays", (self._dropped - self._dropped_offset) % _INT32)
        for attr, source in (("profile_size_x", "x_profile"), ("profile_size_y", "y_profile")):
            array = status.arrays.get(source)
            await self.post(attr, int(len(array)) if array is not None and np.ndim(array) == 1 else 0)
        await self.post("valid_background", "Valid" if status.background_ok else "Invalid")
        await self.apply_config(status.config)
        await self.apply_results(status.results, results_alarm, status.timestamp)
        # the frame's pulse id, stamped like its results (a client pairs them by timestamp)
        await self.post("unique_id", float(status.pulse_id), timestamp=status.timestamp or None)

    async def apply_results(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        results = with_derived(results)
        if alarm is None:
            width, height = result_number(results.get("width")), result_number(results.get("height"))
            for attr, value in (("array_size_x", width), ("array_size_y", height)):
                if value is not None:
                    await self.post(attr, int(value), timestamp=timestamp or None)
            for attr, value in frame_time_values(timestamp).items():
                await self.post(attr, value, timestamp=timestamp or None)
        for spec in self._result_specs:
            number = None if alarm is not None else result_number(results.get(spec.source))
            if number is None:
                await self.post(spec.attr, self.values[spec.attr], alarm=alarm or NO_DATA)
            else:
                value = int(number) % _INT32 if spec.record == "longin" else number
                await self.post(spec.attr, value, alarm=NO_ALARM, timestamp=timestamp)


# =========================================================================================
# $(P)<id>: waveforms
# =========================================================================================
class ArraysDevice(Device):
    """The profile/axis/fit waveforms; written only when an array or its alarm changed."""

    def __init__(self) -> None:
        super().__init__(PIPELINE_ARRAY_PVS)
        empty = np.zeros(1)
        empty.flags.writeable = False
        self.values.update(dict.fromkeys(self.specs, empty))  # what a new waveform holds
        self._posted: dict[str, np.ndarray] = {}
        self._alarms: dict[str, Alarm] = {}

    async def apply(self, arrays: Mapping[str, Any], alarm: Alarm | None, timestamp: float, capacity: int) -> None:
        for spec in PIPELINE_ARRAY_PVS:
            array = None if alarm is not None else arrays.get(spec.source)
            if array is None or np.ndim(array) != 1 or len(array) > capacity:
                bad = alarm or NO_DATA
                if self._alarms.get(spec.attr, NO_ALARM) != bad:
                    self._alarms[spec.attr] = bad
                    await self.post(spec.attr, self.values[spec.attr], alarm=bad)
                continue
            last = self._posted.get(spec.attr)
            if (last is not None and self._alarms.get(spec.attr, NO_ALARM)[1] == AlarmSeverity.NO_ALARM
                    and (last is array or np.array_equal(last, array))):
                continue
            self._posted[spec.attr] = array
            data = np.asarray(array, dtype=np.float64)
            if data is array or not data.flags.c_contiguous:
                data = np.ascontiguousarray(data).copy()
            data.flags.writeable = False  # transports keep read-only arrays without copying
            self._alarms[spec.attr] = NO_ALARM
            await self.post(spec.attr, data, alarm=NO_ALARM, timestamp=timestamp)


# =========================================================================================
# $(P)<id>:Out:<field>_RBV
# =========================================================================================
class OutDevice(Device):
    """Readbacks of user outputs (``ai`` for numbers, ``stringin`` for text)."""

    async def apply(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for spec in self.specs.values():
            value = None if alarm is not None else results.get(spec.source)
            if spec.record == "stringin":
                value = None if value is None else str(value)[:39]
            else:
                value = result_number(value)
            if value is None:
                await self.post(spec.attr, self.values[spec.attr], alarm=alarm or NO_DATA)
            else:
                await self.post(spec.attr, value, alarm=NO_ALARM, timestamp=timestamp)


class OutFields:
    """The ``Out:<field>_RBV`` readbacks of one pipeline.

    A readback is made the first time a scalar output appears that has no readback of its own
    (:func:`~camioc.model.blocks.is_out_field`): ``ai`` for numbers and booleans, ``stringin`` for
    text (cut to 39 characters). Field names are sanitised to ``[A-Za-z0-9_-]`` (other characters
    become ``_``) and cut to 40 characters; a field whose sanitised name is taken, and every field
    beyond :data:`~camioc.model.blocks.MAX_OUT_FIELDS` per pipeline, gets no readback (logged once).
    Readbacks stay as long as the pipeline's PVs; an output that is no longer produced reads
    ``UDF``/``INVALID``.
    """

    def __init__(self, name_length: int = OUT_NAME_LENGTH) -> None:
        #: the field name part is cut to this (what fits the pipeline's prefix in 60 characters)
        self.name_length = name_length
        self.devices: list[OutDevice] = []
        self.fields: dict[str, str] = {}  # field -> PV name part
        self.refused: set[str] = set()

    def new_specs(self, results: Mapping[str, Any]) -> tuple[list[PVDef], list[str]]:
        """Specs for fields of ``results`` that have no readback yet, and fields refused now."""
        taken = set(self.fields.values())
        specs: list[PVDef] = []
        refused: list[str] = []
        for field, value in results.items():
            if field in self.fields or field in self.refused or not is_out_field(field):
                continue
            if not isinstance(value, (str, bool, int, float, np.number, np.bool_)):
                continue
            name = out_field_name(field, self.name_length)
            if name in taken or len(self.fields) + len(specs) >= MAX_OUT_FIELDS:
                self.refused.add(field)
                refused.append(field)
                continue
            taken.add(name)
            specs.append(out_field_spec(len(self.fields) + len(specs), field, text=isinstance(value, str),
                                        length=self.name_length))
        return specs, refused

    def add(self, device: OutDevice, specs: Iterable[PVDef]) -> None:
        self.devices.append(device)
        for spec in specs:
            self.fields[spec.source] = out_field_name(spec.source, self.name_length)

    async def apply(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for device in self.devices:
            await device.apply(results, alarm, timestamp)


__all__ = [
    "BACKGROUND_CONFIG",
    "READ_ONLY_MESSAGE",
    "ArraysDevice",
    "OutDevice",
    "OutFields",
    "PipelineDevice",
    "background_mode",
    "config_json",
    "config_number",
    "grown_capacity",
    "needed_array_length",
    "result_number",
    "settings_in_force",
    "with_derived",
]
