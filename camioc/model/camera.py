"""A camera's devices: the driver block ``$(P)<cam>:cam1:`` and the image block ``$(P)<owner>:image1:``.

Semantics:

- ``Acquire`` 1 -> ``get_stream(hold=True)`` (starts the instance and keeps it running, whatever
  ``no_client_timeout`` says, until ``Acquire`` 0), 0 -> ``stop``. The put completes when the
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
- Alarms: while the camera is in ``Error`` or ``Disconnected`` state, the data readbacks
  (:data:`~camioc.model.blocks.CAMERA_DATA_READBACKS`) are INVALID with status UDF (Error) or COMM
  (Disconnected); ``DetectorState_RBV`` itself is MAJOR/STATE in those states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from camioc.config.camera import CameraConfig
from camioc.config.pv import TEXT_NELM
from camioc.core.api import CameraService, CameraStatus, DetectorState
from camioc.model.blocks import CAMERA_DATA_READBACKS, CAMERA_PVS, CAMERA_SETTINGS, IMAGE_PVS
from camioc.model.device import ConfiguredDevice, Device, text
from camioc.model.records import NO_ALARM, Alarm, AlarmSeverity, AlarmStatus, ImageFormat
from camioc.sources.transform import camera_axes

_INT32 = 2**31


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

    def __init__(self, camera: str, service: CameraService) -> None:
        super().__init__(CAMERA_PVS, CAMERA_SETTINGS, lambda changes: service.update_config(camera, changes))
        self.camera = camera
        self.service = service
        self.commands = {"acquire": self._acquire}

    async def _acquire(self, value: str) -> None:
        if value == "Acquire":
            await self.service.get_stream(self.camera, hold=True)  # runs until Acquire 0
        else:
            await self.service.stop(self.camera)

    async def apply_status(self, status: CameraStatus, data_type: str | None) -> None:
        """Show an instance status (``data_type``: the DataType_RBV string, None if unknown)."""
        state = DetectorState(status.state)
        alarm = camera_alarm(state)
        await self.post("detector_state", state.name)
        await self.post("status_message", text(self.status_text(str(status.message or "")), TEXT_NELM - 1))
        await self.post("acquire_rbv", "Acquiring" if status.running else "Done")
        await self.post("acquire", "Acquire" if status.running else "Done")
        await self.post("stream_address", text(status.stream_address, TEXT_NELM - 1))
        values: dict[str, Any] = {
            "array_counter": int(status.frame_count) % _INT32,
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

    def __init__(self, set_publishing: Callable[[bool, float], None], *, enabled: bool, min_period: float) -> None:
        state = "Enable" if enabled else "Disable"
        period = float(min_period)
        super().__init__(IMAGE_PVS, {"enable_callbacks": state, "enable_callbacks_rbv": state,
                                     "min_callback_time": period, "min_callback_time_rbv": period,
                                     "ndimensions": 2})
        self._set_publishing = set_publishing
        self.commands = {"enable_callbacks": self._enable, "min_callback_time": self._min_period}
        self._frame_sinks: list[FrameSink] = []
        #: the last frame published (a transport attached later starts with it)
        self.frame: ImageFrame | None = None

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
        await self.post("array_data", image.reshape(-1), timestamp=timestamp)
        await self.post("unique_id", float(pulse_id), timestamp=timestamp)
        await self.post("array_counter", int(counter) % _INT32, timestamp=timestamp, force=True)


__all__ = ["CameraDevice", "FrameSink", "calibrated_axes", "ImageDevice", "ImageFrame", "camera_alarm"]
