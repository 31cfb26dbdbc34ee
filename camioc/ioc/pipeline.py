"""A pipeline's PVs: ``$(P)<id>:`` (NDPluginStats-like), its waveforms and ``Out:`` readbacks.

The groups are thin (style anchor 2): putters validate, call one :class:`PipelineService` method
(the same code path as the REST API) and show the configuration in force; they hold no
processing state. The processed image (``$(P)<id>:image1:``) is the camera's image group
(:mod:`camioc.ioc.camera`), published by the same code in :mod:`camioc.ioc.server`.

Controls:

- ``EnableCallbacks`` 1 -> ``get_instance_stream(hold=True)`` (starts the shared instance of a saved
  pipeline; a running private instance just stays; either way it then runs until
  ``EnableCallbacks`` 0, whatever ``no_client_timeout`` says), 0 -> ``stop_instance``. The put
  completes when the service call returns. The setpoint follows the instance (``Disable`` once it
  stopped by itself, e.g. a ``pid_range`` end or an error).
- Settings call ``update_pipeline(id, {key: value})``: the running instance if any, else the saved
  config. While the pipeline runs as a read-only (shared) instance every setting put is refused
  with "Cannot set config on a read only instance." and changes nothing (also the settings that
  would only be kept as pending values, and ``NumBackgroundImages``/``SaveBackground``).
  ``EnableCallbacks`` always works.
- Every setting's ``_RBV`` shows the effective config in force (``PipelineStatus.config``); the
  setpoints follow it too, also when it is changed elsewhere (REST), except for values being
  entered (see the sections below).
- ``CentroidThreshold`` 0 and ``Averaging``/``MaxArrayRate`` 0 mean *off* (``None`` in the config);
  integral numbers are sent as JSON integers.

Sections (the three parts of the config that are a whole or nothing):

- ROI: ``ROI:MinX/SizeX/MinY/SizeY`` and ``ROI:Enable`` -> ``image_region_of_interest =
  [MinX, SizeX, MinY, SizeY]``. An ROI is in force while ``ROI:Enable`` is ``Enable`` *and* both
  sizes are > 0 (as for the camera's ROI, a size of 0 means no ROI). The values can be entered in
  any order, one PV at a time: setpoints that do not make a complete ROI are kept as pending values
  (the config is not touched); the put that completes the ROI applies it, and later puts change
  it at once. ``ROI:Enable`` 0 or a size of 0 removes the ROI (the other setpoints keep their
  values, so ``ROI:Enable`` 1 brings it back). With no ROI in force the ``_RBV``s read 0 (and
  ``ROI:Enable_RBV`` ``Disable``).
- Good region: ``GoodRegion:Enable`` -> ``image_good_region = {threshold, gfscale}`` from the
  ``GoodRegion:Threshold``/``GFScale`` setpoints (defaults 0.3, 1.8), or None. While disabled,
  ``Threshold``/``GFScale`` puts are pending values; while enabled they apply at once.
- Slices: ``Slices:Number`` > 0 -> ``image_slices = {number_of_slices, scale, orientation}`` from
  the ``Slices:Scale``/``Orientation`` setpoints, 0 -> None. While no slices are in force,
  ``Scale``/``Orientation`` puts are pending values. (cam_server computes slices only together
  with a good region, and makes their number odd.)

Background: ``EnableBackground`` (``Disable``/``Enable``/``Signed``/``Passive`` -> False/True/
``"signed"``/``"passive"``), ``BackgroundId`` (a long string; empty = none), ``SaveBackground`` 1
collects ``NumBackgroundImages`` images of the pipeline's camera (``collect_background``), sets
``BackgroundId`` to the new background and completes the put when done (other PVs keep working
meanwhile; ``SaveBackground_RBV`` reads ``Saving``). ``NumBackgroundImages`` is a local setting
(default 10). ``ValidBackground_RBV`` is ``PipelineStatus.background_ok``.

Results: each result readback (``source`` in the spec) shows that output of the latest results,
written only when it changed, with the frame's timestamp. Alarms: ``UDF``/``INVALID`` while the
pipeline has no data (not running, no results of the current run yet, output missing or not a
finite number) or reports a processing error (``PipelineStatus.error``); the last value stays.
Slice readbacks exist for slices 0..14 (:data:`~camioc.ioc.pvspec.MAX_SLICES`); unused ones are
``UDF``/``INVALID``. Any other scalar output gets an ``Out:<field>_RBV`` (see :class:`OutFields`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from caproto import AlarmSeverity, AlarmStatus
from caproto.server import PvpropertyData

from camioc.core.api import DetectorState, PipelineService, PipelineStatus
from camioc.errors import ConfigError, ReadOnlyError
from camioc.ioc.groups import NO_ALARM, Alarm, SpecGroup, cached_group_class, make_group_class, roi_list
from camioc.ioc.pvspec import (
    CONFIG_NELM,
    MAX_OUT_FIELDS,
    PIPELINE_ARRAY_PVS,
    PIPELINE_PVS,
    TEXT_NELM,
    PVDef,
    is_out_field,
    out_field_name,
    out_field_spec,
)

_INT32 = 2**31
#: The alarm of result readbacks without data (and of every readback on a processing error).
NO_DATA: Alarm = (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)
READ_ONLY_MESSAGE = "Cannot set config on a read only instance."

#: ``EnableBackground`` state -> ``image_background_enable``.
BACKGROUND_CONFIG: dict[str, bool | str] = {"Disable": False, "Enable": True, "Signed": "signed",
                                            "Passive": "passive"}
ROI_ATTRS = ("roi_min_x", "roi_size_x", "roi_min_y", "roi_size_y")
#: Settings whose setpoint always equals the value in force.
_PLAIN_SETTINGS = ("centroid_threshold", "enable_background", "background_id", "averaging", "max_array_rate",
                   "pause")
#: Writable PVs that a read-only instance refuses.
_GUARDED = frozenset(spec.attr for spec in PIPELINE_PVS if spec.writable) - {"enable_callbacks"}


# =========================================================================================
# Config <-> settings (pure)
# =========================================================================================
def config_number(value: float) -> int | float:
    """A setting's number as it goes into a config: integral values as JSON integers."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _float(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def roi_in_force(config: Mapping[str, Any]) -> list[int] | None:
    """``image_region_of_interest`` as ``[x, width, y, height]``, or None."""
    return roi_list(config.get("image_region_of_interest"))


def background_mode(value: Any) -> str:
    """``image_background_enable`` -> the ``EnableBackground`` state."""
    if value == "signed":
        return "Signed"
    if value == "passive":
        return "Passive"
    return "Enable" if value is True or value == 1 else "Disable"


def settings_in_force(config: Mapping[str, Any]) -> dict[str, Any]:
    """What each setting's ``_RBV`` shows (by setting attr) for an effective config."""
    roi = roi_in_force(config)
    good_region = config.get("image_good_region")
    slices = config.get("image_slices")
    x, width, y, height = roi or (0, 0, 0, 0)
    orientation = str(slices.get("orientation") or "vertical") if isinstance(slices, Mapping) else "vertical"
    return {
        "centroid_threshold": _float(config.get("image_threshold")),
        "roi_min_x": x,
        "roi_size_x": width,
        "roi_min_y": y,
        "roi_size_y": height,
        "roi_enable": "Enable" if roi else "Disable",
        "enable_background": background_mode(config.get("image_background_enable")),
        "background_id": str(config.get("image_background") or "")[: TEXT_NELM - 1],
        "good_region_enable": "Enable" if isinstance(good_region, Mapping) else "Disable",
        "good_region_threshold": _float(good_region.get("threshold")) if isinstance(good_region, Mapping) else 0.0,
        "good_region_gfscale": _float(good_region.get("gfscale")) if isinstance(good_region, Mapping) else 0.0,
        "slices_number": _int(slices.get("number_of_slices")) if isinstance(slices, Mapping) else 0,
        "slices_scale": _float(slices.get("scale")) if isinstance(slices, Mapping) else 0.0,
        "slices_orientation": orientation if orientation in ("vertical", "horizontal") else "vertical",
        "averaging": _int(config.get("averaging")),
        "max_array_rate": _float(config.get("max_frame_rate")),
        "pause": "Yes" if config.get("paused") or config.get("pause") else "No",
    }


def config_json(config: Mapping[str, Any], limit: int = CONFIG_NELM - 1) -> str:
    """The effective config as compact JSON for ``Config_RBV`` (cut with ``...`` if too long)."""
    text = json.dumps(config, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def result_number(value: Any) -> float | None:
    """A scalar output as a finite float, None if it is missing or not a finite number."""
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any, limit: int = TEXT_NELM - 1) -> str:
    text = str(value or "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# =========================================================================================
# $(P)<id>:
# =========================================================================================
class _PipelineBehaviour(SpecGroup):
    """``$(P)<id>:`` of pipeline ``pipeline_id``, backed by ``service``."""

    # PVs of PIPELINE_PVS used by name here; the generated class (PipelineGroup) adds them as
    # pvproperties. Declarations for the type checker only (no value: nothing at runtime).
    roi_enable: PvpropertyData
    good_region_enable: PvpropertyData
    good_region_threshold: PvpropertyData
    good_region_gfscale: PvpropertyData
    slices_number: PvpropertyData
    slices_scale: PvpropertyData
    slices_orientation: PvpropertyData
    num_background_images_rbv: PvpropertyData

    def __init__(self, prefix: str, *, pipeline_id: str, service: PipelineService, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self.pipeline_id = pipeline_id
        self.service = service
        self.read_only_instance = False
        self.camera_name = ""
        self.config_in_force: Mapping[str, Any] = {}
        self._collecting = False
        self._result_specs = [spec for spec in self.SPECS if spec.source]

    # ------------------------------------------------------------------------------ puts
    async def handle_put(self, attr: str, instance, value):
        if attr in _GUARDED and self.read_only_instance:
            raise ReadOnlyError(READ_ONLY_MESSAGE)
        return await super().handle_put(attr, instance, value)

    async def put_enable_callbacks(self, instance, value):
        if value == "Enable":
            await self.service.get_instance_stream(self.pipeline_id, hold=True)  # until EnableCallbacks 0
        else:
            await self.service.stop_instance(self.pipeline_id)
        return value

    async def put_centroid_threshold(self, instance, value):
        await self._update({"image_threshold": config_number(value) if value > 0 else None})

    async def put_enable_background(self, instance, value):
        await self._update({"image_background_enable": BACKGROUND_CONFIG[value]})

    async def put_background_id(self, instance, value):
        text = str(value).strip()
        await self._update({"image_background": text or None})
        return text

    async def put_averaging(self, instance, value):
        await self._update({"averaging": int(value) or None})

    async def put_max_array_rate(self, instance, value):
        await self._update({"max_frame_rate": config_number(value) if value > 0 else None})

    async def put_pause(self, instance, value):
        await self._update({"paused": value == "Yes"})

    async def put_num_background_images(self, instance, value):
        await self.post("num_background_images_rbv", int(value))

    # ROI -----------------------------------------------------------------------------
    async def put_roi_min_x(self, instance, value):
        await self._put_roi(instance, int(value))

    async def put_roi_min_y(self, instance, value):
        await self._put_roi(instance, int(value))

    async def put_roi_size_x(self, instance, value):
        await self._put_roi(instance, int(value))

    async def put_roi_size_y(self, instance, value):
        await self._put_roi(instance, int(value))

    async def put_roi_enable(self, instance, value):
        await self._put_roi(instance, value)

    def _roi_of_setpoints(self) -> list[int] | None:
        x, width, y, height = (int(getattr(self, attr).value) for attr in ROI_ATTRS)
        if self.roi_enable.value != "Enable" or width <= 0 or height <= 0:
            return None
        return [x, width, y, height]

    async def _put_roi(self, instance, value) -> None:
        # The setpoints hold the ROI being entered; the config changes when the ROI they
        # describe (or its absence) differs from the one in force.
        await self._pending(instance, value, lambda: (
            {"image_region_of_interest": roi} if (roi := self._roi_of_setpoints()) != roi_in_force(self.config_in_force)
            else None))

    # Good region ---------------------------------------------------------------------
    async def put_good_region_enable(self, instance, value):
        region = None
        if value == "Enable":
            region = {"threshold": config_number(self.good_region_threshold.value),
                      "gfscale": config_number(self.good_region_gfscale.value)}
        await self._update({"image_good_region": region})

    async def put_good_region_threshold(self, instance, value):
        await self._put_section_value(instance, value, "image_good_region", "threshold", config_number(value))

    async def put_good_region_gfscale(self, instance, value):
        await self._put_section_value(instance, value, "image_good_region", "gfscale", config_number(value))

    # Slices --------------------------------------------------------------------------
    async def put_slices_number(self, instance, value):
        slices = None
        if int(value) > 0:
            slices = {"number_of_slices": int(value), "scale": config_number(self.slices_scale.value),
                      "orientation": str(self.slices_orientation.value)}
        await self._update({"image_slices": slices})

    async def put_slices_scale(self, instance, value):
        await self._put_section_value(instance, value, "image_slices", "scale", config_number(value))

    async def put_slices_orientation(self, instance, value):
        await self._put_section_value(instance, value, "image_slices", "orientation", str(value))

    async def _put_section_value(self, instance, value, section: str, key: str, config_value: Any) -> None:
        # A pending value while the section is off, applied at once while it is on.
        await self._pending(instance, value, lambda: (
            {section: {key: config_value}} if isinstance(self.config_in_force.get(section), Mapping) else None))

    async def _pending(self, instance, value, changes_of) -> None:
        """Store ``value`` as the setpoint first (the changes depend on every setpoint), then apply
        ``changes_of()`` (None: nothing to change); on a refusal the setpoint is restored."""
        previous = instance.value
        await instance.write(value, verify_value=False)
        try:
            changes = changes_of()
            if changes is not None:
                await self._update(changes)
        except BaseException:
            await instance.write(previous, verify_value=False)
            raise

    # Background ----------------------------------------------------------------------
    async def put_save_background(self, instance, value):
        if value != "Save":
            return "Done"
        if self._collecting:
            raise RuntimeError("A background collection is already running.")
        camera = self.camera_name or str(self.config_in_force.get("camera_name") or "")
        if not camera:
            raise ConfigError(f"Pipeline '{self.pipeline_id}' has no camera to collect a background from.")
        self._collecting = True
        try:
            await instance.write("Save", verify_value=False)
            await self.post("save_background_rbv", "Saving")
            background_id = await self.service.collect_background(camera, int(self.num_background_images_rbv.value))
            await self._update({"image_background": background_id})
        finally:
            self._collecting = False
            await self.post("save_background_rbv", "Done")
            await instance.write("Done", verify_value=False)
        return "Done"

    async def _update(self, changes: dict[str, Any]) -> None:
        config = await self.service.update_pipeline(self.pipeline_id, changes)
        await self.apply_config(config)

    # ------------------------------------------------------------------------------ posts
    async def apply_config(self, config: Mapping[str, Any]) -> None:
        """Show the configuration in force on the ``_RBV``s and the setpoints (see module doc)."""
        self.config_in_force = config
        in_force = settings_in_force(config)
        for attr, value in in_force.items():
            await self.post(f"{attr}_rbv", value)
        for attr in _PLAIN_SETTINGS:
            await self.post(attr, in_force[attr])
        if in_force["roi_enable"] == "Enable":
            for attr in (*ROI_ATTRS, "roi_enable"):
                await self.post(attr, in_force[attr])
        elif self._roi_of_setpoints() is not None:  # removed elsewhere: the setpoints no longer describe it
            await self.post("roi_enable", "Disable")
        if in_force["good_region_enable"] == "Enable":
            for attr in ("good_region_enable", "good_region_threshold", "good_region_gfscale"):
                await self.post(attr, in_force[attr])
        elif self.good_region_enable.value == "Enable":
            await self.post("good_region_enable", "Disable")
        if in_force["slices_number"] > 0:
            for attr in ("slices_number", "slices_scale", "slices_orientation"):
                await self.post(attr, in_force[attr])
        elif self.slices_number.value > 0:
            await self.post("slices_number", 0)

    async def apply_status(self, status: PipelineStatus, *, results_alarm: Alarm | None) -> None:
        """Show a status; ``results_alarm`` is None when its results are valid data."""
        running = bool(status.running)
        self.read_only_instance = bool(status.read_only and running)
        self.camera_name = str(status.camera_name or status.config.get("camera_name") or "")
        state = DetectorState(status.state)
        await self.post("detector_state", state.name)
        await self.post("status_message", _text(status.error or status.message))
        await self.post("enable_callbacks_rbv", "Enable" if running else "Disable")
        await self.post("enable_callbacks", "Enable" if running else "Disable")
        await self.post("stream_address", _text(status.stream_address))
        await self.post("read_only", "Yes" if self.read_only_instance else "No")
        await self.post("nd_array_port", self.camera_name[:39])
        await self.post("config", config_json(status.config))
        await self.post("array_counter", int(status.frame_count) % _INT32)
        await self.post("array_rate", round(float(status.frame_rate), 3))
        await self.post("execution_time", round(float(status.execution_time_ms), 3))
        await self.post("dropped_arrays", int(status.dropped) % _INT32)
        await self.post("valid_background", "Valid" if status.background_ok else "Invalid")
        await self.apply_config(status.config)
        await self.apply_results(status.results, results_alarm, status.timestamp)
        # the frame's pulse id, stamped like its results (a client pairs them by timestamp)
        await self.post("unique_id", float(status.pulse_id), timestamp=status.timestamp or None)

    async def apply_results(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for spec in self._result_specs:
            number = None if alarm is not None else result_number(results.get(spec.source))
            instance = getattr(self, spec.attr)
            if number is None:
                await self.post(spec.attr, instance.value, alarm=alarm or NO_DATA)
            else:
                value = int(number) % _INT32 if spec.record == "longin" else number
                await self.post(spec.attr, value, alarm=NO_ALARM, timestamp=timestamp)


PipelineGroup = make_group_class("PipelineGroup", _PipelineBehaviour, PIPELINE_PVS)


# =========================================================================================
# $(P)<id>: waveforms
# =========================================================================================
class _PipelineArraysBehaviour(SpecGroup):
    """The profile/axis/fit waveforms; written only when an array or its alarm changed."""

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self._posted: dict[str, np.ndarray] = {}

    @property
    def capacity(self) -> int:
        """Elements each waveform can hold (NELM; fixed for the PVs' lifetime)."""
        return min(int(getattr(self, spec.attr).max_length) for spec in self.SPECS)

    async def apply(self, arrays: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for spec in self.SPECS:
            instance = getattr(self, spec.attr)
            array = None if alarm is not None else arrays.get(spec.source)
            if array is None or np.ndim(array) != 1 or len(array) > self.capacity:
                status, severity = alarm or NO_DATA
                if instance.severity != severity or instance.status != status:
                    await instance.write(instance.value, verify_value=False, status=status, severity=severity)
                continue
            last = self._posted.get(spec.attr)
            if (last is not None and instance.severity == AlarmSeverity.NO_ALARM
                    and (last is array or np.array_equal(last, array))):
                continue
            self._posted[spec.attr] = array
            data = np.asarray(array, dtype=np.float64)
            if data is array or not data.flags.c_contiguous:
                data = np.ascontiguousarray(data).copy()
            data.flags.writeable = False  # caproto keeps read-only arrays without copying
            kwargs: dict[str, Any] = {"status": AlarmStatus.NO_ALARM, "severity": AlarmSeverity.NO_ALARM}
            if timestamp:
                kwargs["timestamp"] = timestamp
            await instance.write(data, verify_value=False, **kwargs)


def arrays_group_class(elements: int) -> type[_PipelineArraysBehaviour]:
    """The waveform group class for arrays of up to ``elements`` values."""
    return cached_group_class(
        f"PipelineArraysGroup_{elements}", _PipelineArraysBehaviour, PIPELINE_ARRAY_PVS,
        tuple((spec.attr, spec.ftvl, int(elements)) for spec in PIPELINE_ARRAY_PVS),
    )


def needed_array_length(arrays: Mapping[str, Any]) -> int:
    """Elements the waveforms need for ``arrays`` (the longest 1-D array shown)."""
    sources = {spec.source for spec in PIPELINE_ARRAY_PVS}
    return max((len(value) for key, value in arrays.items() if key in sources and np.ndim(value) == 1), default=0)


def grown_capacity(current: int, needed: int) -> int:
    """The next waveform length: the smallest power of two >= ``needed`` (never shrinking)."""
    return max(current, 1 << max(0, int(needed) - 1).bit_length())


# =========================================================================================
# $(P)<id>:Out:<field>_RBV
# =========================================================================================
class _OutBehaviour(SpecGroup):
    """Readbacks of user outputs (``ai`` for numbers, ``stringin`` for text)."""

    async def apply(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for spec in self.SPECS:
            instance = getattr(self, spec.attr)
            value = None if alarm is not None else results.get(spec.source)
            if spec.record == "stringin":
                value = None if value is None else str(value)[:39]
            else:
                value = result_number(value)
            if value is None:
                await self.post(spec.attr, instance.value, alarm=alarm or NO_DATA)
            else:
                await self.post(spec.attr, value, alarm=NO_ALARM, timestamp=timestamp)


class OutFields:
    """The ``Out:<field>_RBV`` readbacks of one pipeline.

    A readback is made the first time a scalar output appears that has no readback of its own
    (:func:`~camioc.ioc.pvspec.is_out_field`): ``ai`` for numbers and booleans, ``stringin`` for
    text (cut to 39 characters). Field names are sanitised to ``[A-Za-z0-9_-]`` (other characters
    become ``_``) and cut to 40 characters; a field whose sanitised name is taken, and every field
    beyond :data:`~camioc.ioc.pvspec.MAX_OUT_FIELDS` per pipeline, gets no readback (logged once).
    Readbacks stay as long as the pipeline's PVs; an output that is no longer produced reads
    ``UDF``/``INVALID``.
    """

    def __init__(self) -> None:
        self.groups: list[_OutBehaviour] = []
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
            name = out_field_name(field)
            if name in taken or len(self.fields) + len(specs) >= MAX_OUT_FIELDS:
                self.refused.add(field)
                refused.append(field)
                continue
            taken.add(name)
            specs.append(out_field_spec(len(self.fields) + len(specs), field, text=isinstance(value, str)))
        return specs, refused

    def add(self, group: _OutBehaviour, specs: Iterable[PVDef]) -> None:
        self.groups.append(group)
        for spec in specs:
            self.fields[spec.source] = out_field_name(spec.source)

    async def apply(self, results: Mapping[str, Any], alarm: Alarm | None, timestamp: float) -> None:
        for group in self.groups:
            await group.apply(results, alarm, timestamp)


def out_group_class(specs: Iterable[PVDef]) -> type[_OutBehaviour]:
    return make_group_class("PipelineOutGroup", _OutBehaviour, specs)


__all__ = [
    "BACKGROUND_CONFIG",
    "NO_DATA",
    "OutFields",
    "PipelineGroup",
    "arrays_group_class",
    "background_mode",
    "config_json",
    "config_number",
    "grown_capacity",
    "needed_array_length",
    "out_group_class",
    "result_number",
    "roi_in_force",
    "settings_in_force",
]
