"""A camera's devices: the driver block ``$(P)<cam>:cam1:`` and the image block ``$(P)<owner>:image1:``.

Semantics:

- ``Acquire`` (``ImageMode`` Continuous) 1 -> ``acquire(cam, 0)``: as ``get_stream(hold=True)``, starts
  the instance and keeps it running, whatever ``no_client_timeout`` says, until ``Acquire`` 0, and
  publishes every frame; 0 -> ``stop``. The put completes when the
  service call returns, so ``caput -c ...:Acquire 1`` returns once the stream is up. The setpoint
  follows the instance (it drops to ``Done`` when the instance stops by itself).
- The settings are :class:`~camioc.config.camera.CameraConfig`'s marked fields (mirror, rotate,
  binning, ROI); their setpoints follow the configuration in force, also when it is changed
  elsewhere (REST); ``_RBV`` always shows the configuration in force.
- ROI: ``MinX``/``SizeX``/``MinY``/``SizeY`` map to ``roi = [MinX, SizeX, MinY, SizeY]``. A size of 0
  means *no ROI* (the full image): the ROI applies once both sizes are > 0, so an ROI can be
  entered one PV at a time and is removed by writing 0 to ``SizeX`` or ``SizeY``. The ``_RBV``s
  show 0 0 0 0 while no ROI is in force. Validity against the image is the service's to check
  (its error refuses the put).
- ``ImageMode``: ``Continuous`` (default) as above. ``Single``/``Multiple``: ``Acquire`` 1 starts the
  instance if needed (held), publishes 1 / ``NumImages`` frames from then on and completes the put
  once they are published (``Acquire``/``Acquire_RBV`` go back to ``Done``, ``DetectorState_RBV``
  to ``Idle``; ``NumImagesCounter_RBV`` counts); between acquisitions the source stays connected
  and its frames are dropped. ``Acquire`` 0 in these modes ends the acquisition, the instance stays.
  With ``WaitForPlugins`` Yes (every running pipeline of the camera) or a pipeline's
  ``BlockingCallbacks`` Yes (that pipeline), the put completes only once those pipelines show
  results of the acquisition's last frame (``plugins``, given by the IOC), so a client that reads
  their results after ``Acquire`` went ``Done`` reads that frame's.
- ADCore's other driver PVs (:mod:`camioc.model.adcore`): ``AcquireTime_RBV``/``AcquirePeriod_RBV``
  show the frame period in force (a simulation's ``frame_rate``, else the measured rate), the
  identity readbacks say what the source is, ``ArrayCounter`` sets the counter, the kept settings
  keep what is put.
- Alarms: while the camera is in ``Error`` or ``Disconnected`` state, the data readbacks
  (:data:`~camioc.model.blocks.CAMERA_DATA_READBACKS`) are INVALID with status UDF (Error) or COMM
  (Disconnected); ``DetectorState_RBV`` itself is MAJOR/STATE in those states.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from camioc import __version__
from camioc.config.camera import CameraConfig
from camioc.config.pv import TEXT_NELM
from camioc.core.api import CameraService, CameraStatus, DetectorState
from camioc.model.adcore import frame_time_values, keep_commands
from camioc.model.blocks import CAMERA_DATA_READBACKS, CAMERA_PVS, CAMERA_SETTINGS, IMAGE_PVS
from camioc.model.device import ConfiguredDevice, Device, text
from camioc.model.records import NO_ALARM, Alarm, AlarmSeverity, AlarmStatus, ImageFormat
from camioc.sources.transform import camera_axes

_INT32 = 2**31
#: Waits, once an acquisition's frames are published, until the pipelines that block the camera
#: (``WaitForPlugins`` / ``BlockingCallbacks``) show results of pulse id ``pulse_id``; given by the IOC.
PluginWait = Callable[[str, int, bool], Awaitable[None]]
#: ``Manufacturer_RBV`` / ``Model_RBV`` per source type.
_IDENTITY = {"simulation": ("camioc", "simulation"), "epics": ("EPICS", "epics camera"),
             "bsread": ("bsread", "bsread stream")}


def identity_values(config: Mapping[str, Any]) -> dict[str, str]:
    """What the driver's identity readbacks say about the source of ``config``."""
    source_type = str(config.get("source_type") or "")
    manufacturer, model = _IDENTITY.get(source_type, (source_type or "camioc", source_type))
    serial = "" if source_type == "simulation" else str(config.get("source") or "")
    return {"manufacturer": manufacturer[:39], "model": model[:39], "serial_number": serial[:39]}


def frame_period(config: Mapping[str, Any], measured_rate: float) -> float:
    """The frame period in force: a simulation's ``frame_rate``, else the measured rate's (0: unknown)."""
    rate = float(config.get("frame_rate") or 0) if config.get("source_type") == "simulation" else 0.0
    rate = rate or float(measured_rate)
    return 1.0 / rate if rate > 0 else 0.0


def camera_alarm(state: DetectorState) -> Alarm:
    """The alarm of a camera's data readbacks in ``state``."""
    if state == DetectorState.Disconnected:
        return (AlarmStatus.COMM, AlarmSeverity.INVALID_ALARM)
    if state == DetectorState.Error:
        return (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)
    return NO_ALARM


#: the last (config, raw width, raw height) and its axes (the config object is kept: identity is the key)
_axes_cache: list[Any] = [None, 0, 0, {}]


def calibrated_axes(config: Mapping[str, Any], raw_width: int, raw_height: int) -> dict[str, np.ndarray]:
    """A calibrated camera's ``x_axis``/``y_axis`` (what its stream sends) for a sensor of
    ``raw_width`` x ``raw_height``; empty without a calibration (pixel indices say nothing).

    Cached per config object: images arrive many times a second, the config changes rarely."""
    if not config.get("camera_calibration") or raw_width <= 0 or raw_height <= 0:
        return {}
    key = [config, int(raw_width), int(raw_height)]
    if _axes_cache[0] is config and _axes_cache[1:3] == key[1:]:
        return _axes_cache[3]
    try:
        x_axis, y_axis = camera_axes(CameraConfig.from_dict(config), int(raw_width), int(raw_height))
    except (ValueError, TypeError):
        return {}
    _axes_cache[:] = [*key, {"x_axis": x_axis, "y_axis": y_axis}]
    return _axes_cache[3]


class CameraDevice(ConfiguredDevice):
    """``$(P)<cam>:cam1:`` of camera ``camera``, backed by ``service``."""

    def __init__(self, camera: str, service: CameraService, *, port: str = "",
                 plugins: PluginWait | None = None) -> None:
        super().__init__(CAMERA_PVS, CAMERA_SETTINGS, lambda changes: service.update_config(camera, changes),
                         initial={"port_name": (port or camera)[:39], "ad_core_version": f"camioc {__version__}",
                                  "driver_version": __version__, "sdk_version": f"camioc {__version__}",
                                  "ndimensions": 2})
        self.camera = camera
        self.service = service
        self._plugins = plugins
        self._counter_offset = 0
        self._frame_count = 0
        self._acquiring = False
        self._last_status: CameraStatus | None = None
        self.commands = {"acquire": self._acquire, "image_mode": self._image_mode,
                         "num_images": self._show_rbv("num_images"),
                         "wait_for_plugins": self._show_rbv("wait_for_plugins"),
                         "acquire_time": self._kept_period, "acquire_period": self._kept_period,
                         "array_counter_set": self._set_counter, "read_status": self._read_status}
        keep_commands(self)

    def _show_rbv(self, attr: str) -> Callable[[Any], Awaitable[None]]:
        async def show(value: Any) -> None:
            await self.post(f"{attr}_rbv", value)
        return show

    async def _image_mode(self, value: str) -> None:
        """Single/Multiple: the camera publishes frames only when acquiring (also when a pipeline
        starts it); Continuous: every frame once started (a running camera keeps its mode until
        the next ``Acquire``)."""
        self.service.set_free_running(self.camera, value == "Continuous")
        await self.post("image_mode_rbv", value)

    async def _kept_period(self, value: float) -> None:
        """``AcquireTime``/``AcquirePeriod``: kept; the ``_RBV``s show the frame period in force."""
        del value

    async def _set_counter(self, value: int) -> None:
        self._counter_offset = self._frame_count - int(value)
        await self.post("array_counter", int(value) % _INT32, force=True)

    async def _read_status(self, value: str) -> str:
        if value == "Read" and self._last_status is not None:
            await self.apply_status(self._last_status, self.values["data_type"])
        return "Done"

    @property
    def image_mode(self) -> str:
        return str(self.values["image_mode_rbv"])

    async def _acquire(self, value: str) -> str | None:
        mode = self.image_mode
        if mode == "Continuous":
            if value == "Acquire":
                await self.service.acquire(self.camera, 0)  # runs until Acquire 0
            else:
                await self.service.stop(self.camera)
            return None
        if value != "Acquire":  # ends the acquisition; the instance stays
            self.service.set_free_running(self.camera, False)
            return None
        count = 1 if mode == "Single" else max(1, int(self.values["num_images_rbv"]))
        self._acquiring = True
        try:
            await self.post("acquire_rbv", "Acquiring")
            await self.post("num_images_counter", 0)
            status = await self.service.acquire(self.camera, count)
            await self.apply_status(status, None)
            if self._plugins is not None:
                await self._plugins(self.camera, int(status.pulse_id), self.values["wait_for_plugins_rbv"] == "Yes")
        finally:
            self._acquiring = False
            await self.post("acquire_rbv", "Done")
            await self.post("time_remaining", 0.0)
        return "Done"

    async def apply_config(self, config: Mapping[str, Any]) -> None:
        await super().apply_config(config)
        for attr, value in identity_values(config).items():
            await self.post(attr, value)
        rate = self._last_status.frame_rate if self._last_status is not None else 0.0
        period = frame_period(config, rate)
        await self.post("acquire_time_rbv", period)
        await self.post("acquire_period_rbv", period)

    async def apply_status(self, status: CameraStatus, data_type: str | None) -> None:
        """Show an instance status (``data_type``: the DataType_RBV string, None if unknown)."""
        self._last_status = status
        state = DetectorState(status.state)
        alarm = camera_alarm(state)
        # acquiring: a running instance, unless a Single/Multiple acquisition has ended (Idle)
        acquiring = self._acquiring or (status.running and state != DetectorState.Idle)
        await self.post("detector_state", state.name)
        await self.post("status_message", text(self.status_text(str(status.message or "")), TEXT_NELM - 1))
        await self.post("acquire_rbv", "Acquiring" if acquiring else "Done")
        await self.post("acquire", "Acquire" if acquiring else "Done")
        await self.post("stream_address", text(status.stream_address, TEXT_NELM - 1))
        await self.post("num_images_counter", int(status.images_counter) % _INT32)
        remaining = 0.0
        if self._acquiring and self.image_mode != "Continuous" and status.frame_rate > 0:
            left = max(0, int(self.values["num_images_rbv"]) - int(status.images_counter))
            remaining = left / float(status.frame_rate)
        await self.post("time_remaining", round(remaining, 3))
        self._frame_count = int(status.frame_count)
        width, height = int(status.width), int(status.height)
        itemsize = np.dtype(status.dtype).itemsize if status.dtype else 0
        values: dict[str, Any] = {
            "array_size_x": width,
            "array_size_y": height,
            "array_size_z": 0,
            "array_size2": 0,
            "ndimensions": 2,
            "array_size_bytes": width * height * itemsize,
            "array_counter": (int(status.frame_count) - self._counter_offset) % _INT32,
            "array_rate": round(float(status.frame_rate), 3),
            "unique_id": float(status.pulse_id),
            "array_size0": int(status.width),
            "array_size1": int(status.height),
            "max_size_x": int(status.sensor_width),
            "max_size_y": int(status.sensor_height),
            "color_mode": "Mono",
            "clients": int(status.clients),
        }
        if data_type is not None:
            values["data_type"] = data_type
        # the last frame's readbacks carry its timestamp (as the image and results do), not the server's
        for attr in CAMERA_DATA_READBACKS:
            await self.post(attr, values.get(attr, self.values[attr]), alarm=alarm,
                            timestamp=status.timestamp or None)
        period = frame_period(self.config_in_force, status.frame_rate)
        await self.post("acquire_time_rbv", period)
        await self.post("acquire_period_rbv", period)


@dataclass(frozen=True, slots=True)
class ImageFrame:
    """One published image as a whole: what an image transport (PVA's NTNDArray) serves.

    ``image`` is the 2-D, C-contiguous, read-only array in its native dtype (shared, never
    mutated); ``attributes`` are extra named values of the frame (the calibrated axes)."""

    image: np.ndarray
    pulse_id: int
    timestamp: float
    counter: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


class FrameSink(Protocol):
    """A transport's view of an image block's frames (CA serves the flat ``ArrayData`` instead)."""

    def post_frame(self, frame: ImageFrame) -> None:
        """Take the latest frame; must not block (a slower client skips frames)."""
        ...


class ImageDevice(Device):
    """``$(P)<owner>:image1:``; ``set_publishing(enabled, min_period)`` applies its two settings
    (the service validates: raising refuses the put)."""

    def __init__(self, set_publishing: Callable[[bool, float], None], *, enabled: bool, min_period: float,
                 port: str = "", source_port: str = "") -> None:
        state = "Enable" if enabled else "Disable"
        period = float(min_period)
        super().__init__(IMAGE_PVS, {"enable_callbacks": state, "enable_callbacks_rbv": state,
                                     "min_callback_time": period, "min_callback_time_rbv": period,
                                     "ndimensions": 2, "port_name": port[:39],
                                     "nd_array_port_set": source_port[:39], "nd_array_port_set_rbv": source_port[:39],
                                     "ad_core_version": f"camioc {__version__}", "driver_version": __version__})
        self._set_publishing = set_publishing
        self.commands = {"enable_callbacks": self._enable, "min_callback_time": self._min_period,
                         "array_counter_set": self._set_counter, "nd_array_port_set": self._fixed_port,
                         "dropped_arrays_set": self._set_dropped}
        keep_commands(self)
        self._frame_sinks: list[FrameSink] = []
        #: the last frame published (a transport attached later starts with it)
        self.frame: ImageFrame | None = None
        self._counter_offset = 0
        self._last_counter = 0
        self._rate = _Rate()

    async def _set_counter(self, value: int) -> None:
        self._counter_offset = self._last_counter - int(value)
        await self.post("array_counter", int(value) % _INT32, force=True)

    async def _set_dropped(self, value: int) -> None:
        await self.post("dropped_arrays_set_rbv", int(value))

    async def _fixed_port(self, value: str) -> None:
        await fixed_port(self, "nd_array_port_set_rbv", value)

    def attach_frames(self, sink: FrameSink) -> None:
        self._frame_sinks.append(sink)

    def detach_frames(self, sink: FrameSink) -> None:
        if sink in self._frame_sinks:
            self._frame_sinks.remove(sink)

    async def _enable(self, value: str) -> None:
        self._set_publishing(value == "Enable", float(self.values["min_callback_time_rbv"]))
        await self.post("enable_callbacks_rbv", value)

    async def _min_period(self, value: float) -> None:
        self._set_publishing(self.values["enable_callbacks_rbv"] == "Enable", float(value))
        await self.post("min_callback_time_rbv", float(value))

    async def publish(self, image: np.ndarray, fmt: ImageFormat, *, pulse_id: int, timestamp: float,
                      counter: int, attributes: Mapping[str, Any] | None = None) -> None:
        """Post one image in areaDetector order: geometry and type, data, id, counter last; then
        hand the whole frame to the frame sinks.

        Viewers (ImageJ EPICS_AD_Viewer, ophyd) watch ``ArrayCounter_RBV`` and then read the rest,
        so everything else is posted before it."""
        self.frame = ImageFrame(image, int(pulse_id), float(timestamp), int(counter), dict(attributes or {}))
        for sink in self._frame_sinks:
            sink.post_frame(self.frame)
        height, width = image.shape[:2]
        await self.post("array_size0", int(width))
        await self.post("array_size1", int(height))
        await self.post("array_size2", 0)
        await self.post("ndimensions", 2)
        await self.post("data_type", fmt.data_type)
        await self.post("color_mode", "Mono")
        # a view of a C-contiguous, read-only array: the transports keep it without copying
        await post_frame_readbacks(self, width, height, image.dtype.itemsize, timestamp)
        await self.post("array_rate", self._rate.tick(), timestamp=timestamp)
        await self.post("array_data", image.reshape(-1), timestamp=timestamp)
        await self.post("unique_id", float(pulse_id), timestamp=timestamp)
        self._last_counter = int(counter)
        await self.post("array_counter", (int(counter) - self._counter_offset) % _INT32, timestamp=timestamp,
                        force=True)


class _Rate:
    """Images per second over the last published ones (an exponential average of the intervals)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.interval = 0.0

    def tick(self) -> float:
        now = time.monotonic()
        if self.last:
            gap = now - self.last
            self.interval = gap if not self.interval else 0.8 * self.interval + 0.2 * gap
        self.last = now
        return round(1.0 / self.interval, 3) if self.interval > 0 else 0.0


async def fixed_port(device: Device, readback: str, value: str) -> None:
    """``NDArrayPort``: the input of a block is fixed by what it is; a put naming another is refused."""
    current = str(device.values[readback])
    if str(value).strip() != current:
        raise ValueError(f"the input port is fixed: {current!r}")


async def post_frame_readbacks(device: Device, width: int, height: int, itemsize: int, timestamp: float) -> None:
    """NDArrayBase's readbacks of a frame: sizes, dimensions and its time (those the block has)."""
    values: dict[str, Any] = {
        "array_size_x": width, "array_size_y": height, "array_size_z": 0,
        "array_size_bytes": width * height * itemsize,
        **frame_time_values(timestamp),
    }
    for attr, value in values.items():
        if attr in device.specs:
            await device.post(attr, value, timestamp=timestamp or None)
    dims = np.array([width, height], dtype=np.int32)
    dims.flags.writeable = False
    for attr in ("dimensions", "dim0_sa", "dim1_sa"):
        if attr in device.specs and not np.array_equal(device.values[attr], dims):
            await device.post(attr, dims if attr == "dimensions" else dims[int(attr[3]):int(attr[3]) + 1])


__all__ = ["CameraDevice", "FrameSink", "ImageDevice", "ImageFrame", "PluginWait", "calibrated_axes", "camera_alarm",
           "fixed_port", "frame_period", "identity_values", "post_frame_readbacks"]
