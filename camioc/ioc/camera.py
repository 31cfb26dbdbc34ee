"""A camera's PVs: the driver block ``$(P)<cam>:cam1:`` and the image block ``$(P)<cam>:image1:``.

The groups are thin (style anchor 2): putters validate, call one :class:`CameraService` method and
show the configuration in force; they hold no camera state.

Semantics decided here:

- ``Acquire`` 1 -> ``get_stream(hold=True)`` (starts the instance and keeps it running, whatever
  ``no_client_timeout`` says, until ``Acquire`` 0), 0 -> ``stop``. The put completes when
  the service call returns, so ``caput -c ...:Acquire 1`` returns once the stream is up. The
  setpoint follows the instance (it drops to ``Done`` when the instance stops by itself).
- Setpoints of the config-backed settings follow the configuration in force, also when it is
  changed elsewhere (REST); ``_RBV`` always shows the configuration in force.
- ROI: ``MinX``/``SizeX``/``MinY``/``SizeY`` map to ``roi = [MinX, SizeX, MinY, SizeY]``. A size of
  0 means *no ROI* (``roi = None``, the full image): the ROI applies once both sizes are > 0, so
  an ROI can be entered one PV at a time (the other setpoints keep the pending values) and is
  removed by writing 0 to ``SizeX`` or ``SizeY``. The ``_RBV``s show 0 0 0 0 while no ROI is in
  force. Validity against the image is the service's to check (its error refuses the put).
- Alarms: while the camera is in ``Error`` or ``Disconnected`` state, the data readbacks
  (:data:`~camioc.ioc.pvspec.CAMERA_DATA_READBACKS`) are INVALID with status UDF (Error) or COMM
  (Disconnected); ``DetectorState_RBV`` itself is MAJOR/STATE in those states.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from caproto import AlarmSeverity, AlarmStatus
from caproto.server import PvpropertyData

from camioc.core.api import CameraService, CameraStatus, DetectorState
from camioc.ioc.groups import NO_ALARM, Alarm, SpecGroup, cached_group_class, make_group_class, roi_list
from camioc.ioc.pvspec import (
    CAMERA_DATA_READBACKS,
    CAMERA_PVS,
    IMAGE_PVS,
    TEXT_NELM,
    ImageFormat,
)

log = logging.getLogger(__name__)

_INT32 = 2**31


def camera_alarm(state: DetectorState) -> Alarm:
    """The alarm of a camera's data readbacks in ``state``."""
    if state == DetectorState.Disconnected:
        return (AlarmStatus.COMM, AlarmSeverity.INVALID_ALARM)
    if state == DetectorState.Error:
        return (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)
    return NO_ALARM


def roi_of(config: Mapping[str, Any]) -> list[int] | None:
    """The ``roi`` of a camera config as ``[x, width, y, height]``, or None (no ROI)."""
    return roi_list(config.get("roi"))


def _text(value: Any, limit: int = TEXT_NELM - 1) -> str:
    text = str(value or "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# =========================================================================================
# Driver block: cam1:
# =========================================================================================
class _CameraDriverBehaviour(SpecGroup):
    """``$(P)<cam>:cam1:`` of camera ``camera``, backed by ``service``."""

    _ROI_INDEX = {"min_x": 0, "size_x": 1, "min_y": 2, "size_y": 3}

    # PVs of CAMERA_PVS used by name here; the generated class (make_group_class) adds them as
    # pvproperties. Declarations for the type checker only (no value: nothing at runtime).
    size_x: PvpropertyData
    size_y: PvpropertyData

    def __init__(self, prefix: str, *, camera: str, service: CameraService, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self.camera = camera
        self.service = service

    # ------------------------------------------------------------------------------ puts
    async def put_acquire(self, instance, value):
        if value == "Acquire":
            await self.service.get_stream(self.camera, hold=True)  # runs until Acquire 0
        else:
            await self.service.stop(self.camera)
        return value

    async def put_reverse_x(self, instance, value):
        await self._update({"mirror_x": value == "Yes"})

    async def put_reverse_y(self, instance, value):
        await self._update({"mirror_y": value == "Yes"})

    async def put_rotate(self, instance, value):
        await self._update({"rotate": int(value)})

    async def put_bin_x(self, instance, value):
        await self._update({"binning_x": int(value)})

    async def put_bin_y(self, instance, value):
        await self._update({"binning_y": int(value)})

    async def put_min_x(self, instance, value):
        await self._put_roi("min_x", instance, int(value))

    async def put_min_y(self, instance, value):
        await self._put_roi("min_y", instance, int(value))

    async def put_size_x(self, instance, value):
        await self._put_roi("size_x", instance, int(value))

    async def put_size_y(self, instance, value):
        await self._put_roi("size_y", instance, int(value))

    async def _put_roi(self, attr: str, instance, value: int) -> None:
        # The setpoints hold the ROI being entered; the config gets an ROI once both sizes > 0.
        pending = [int(getattr(self, name).value) for name in ("min_x", "size_x", "min_y", "size_y")]
        pending[self._ROI_INDEX[attr]] = value
        roi = pending if pending[1] > 0 and pending[3] > 0 else None
        previous = instance.value
        await instance.write(value, verify_value=False)
        try:
            await self._update({"roi": roi})
        except BaseException:
            await instance.write(previous, verify_value=False)
            raise

    async def _update(self, changes: dict[str, Any]) -> None:
        config = await self.service.update_config(self.camera, changes)
        await self.apply_config(config)

    # ------------------------------------------------------------------------------ posts
    async def apply_config(self, config: Mapping[str, Any]) -> None:
        """Show the configuration in force on the ``_RBV``s and the setpoints."""
        settings = {
            "reverse_x": "Yes" if config.get("mirror_x") else "No",
            "reverse_y": "Yes" if config.get("mirror_y") else "No",
            "rotate": int(config.get("rotate") or 0),
            "bin_x": int(config.get("binning_x") or 1),
            "bin_y": int(config.get("binning_y") or 1),
        }
        roi = roi_of(config)
        x, w, y, h = roi or (0, 0, 0, 0)
        roi_values = {"min_x": x, "size_x": w, "min_y": y, "size_y": h}
        for attr, value in {**settings, **roi_values}.items():
            await self.post(f"{attr}_rbv", value)
        for attr, value in settings.items():
            await self.post(attr, value)
        if roi is not None:
            for attr, value in roi_values.items():
                await self.post(attr, value)
        elif self.size_x.value > 0 and self.size_y.value > 0:
            # The ROI was removed elsewhere: the setpoints no longer describe one.
            await self.post("size_x", 0)
            await self.post("size_y", 0)

    async def apply_status(self, status: CameraStatus, data_type: str | None) -> None:
        """Show an instance status (``data_type``: the DataType_RBV string, None if unknown)."""
        state = DetectorState(status.state)
        alarm = camera_alarm(state)
        await self.post("detector_state", state.name)
        await self.post("status_message", _text(status.message))
        await self.post("acquire_rbv", "Acquiring" if status.running else "Done")
        await self.post("acquire", "Acquire" if status.running else "Done")
        await self.post("stream_address", _text(status.stream_address))
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
        for attr in CAMERA_DATA_READBACKS:
            await self.post(attr, values.get(attr, getattr(self, attr).value), alarm=alarm)


CameraDriverGroup = make_group_class("CameraDriverGroup", _CameraDriverBehaviour, CAMERA_PVS)


# =========================================================================================
# Image block: image1:
# =========================================================================================
class _ImageBehaviour(SpecGroup):
    """``$(P)<owner>:image1:``; ``set_publishing(enabled, min_period)`` applies the settings."""

    # PVs of IMAGE_PVS used by name here; the generated class (image_group_class) adds them as
    # pvproperties. Declarations for the type checker only (no value: nothing at runtime).
    array_data: PvpropertyData
    ndimensions: PvpropertyData
    enable_callbacks_rbv: PvpropertyData
    min_callback_time_rbv: PvpropertyData

    def __init__(self, prefix: str, *, set_publishing: Callable[[bool, float], None],
                 enabled: bool, min_period: float, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self._set_publishing = set_publishing
        state = "Enable" if enabled else "Disable"
        for attr, value in (("enable_callbacks", state), ("min_callback_time", float(min_period))):
            for target in (attr, f"{attr}_rbv"):
                getattr(self, target)._data["value"] = value
        self.ndimensions._data["value"] = 2

    @property
    def capacity(self) -> int:
        """Elements the ``ArrayData`` PV can hold (NELM; fixed for the PV's lifetime)."""
        length = self.array_data.max_length
        assert length is not None  # caproto sets it when the PV is made (max_length= of the pvproperty)
        return int(length)

    async def put_enable_callbacks(self, instance, value):
        self._set_publishing(value == "Enable", float(self.min_callback_time_rbv.value))
        await self.post("enable_callbacks_rbv", value)

    async def put_min_callback_time(self, instance, value):
        self._set_publishing(self.enable_callbacks_rbv.value == "Enable", float(value))
        await self.post("min_callback_time_rbv", float(value))

    async def publish(self, image: np.ndarray, fmt: ImageFormat, *, pulse_id: int,
                      timestamp: float, counter: int) -> None:
        """Post one image in areaDetector order: geometry and type, data, id, counter last.

        Viewers (ImageJ EPICS_AD_Viewer, ophyd) watch ``ArrayCounter_RBV`` and then read the
        rest, so everything else is posted before it.
        """
        height, width = image.shape[:2]
        flat = image.reshape(-1)  # a view of a C-contiguous, read-only array: caproto keeps it
        await self.post("array_size0", int(width))
        await self.post("array_size1", int(height))
        await self.post("array_size2", 0)
        await self.post("ndimensions", 2)
        await self.post("data_type", fmt.data_type)
        await self.post("color_mode", "Mono")
        if timestamp:
            await self.array_data.write(flat, verify_value=False, timestamp=timestamp)
        else:
            await self.array_data.write(flat, verify_value=False)
        await self.post("unique_id", float(pulse_id), timestamp=timestamp)
        await self.post("array_counter", int(counter) % _INT32, timestamp=timestamp, force=True)


def image_group_class(fmt: ImageFormat, elements: int) -> type[_ImageBehaviour]:
    """The image group class for images of ``fmt`` with up to ``elements`` pixels."""
    return cached_group_class(
        f"ImageGroup_{fmt.ftvl}_{elements}", _ImageBehaviour, IMAGE_PVS,
        (("array_data", fmt.ftvl, int(elements)),),
    )


__all__ = ["CameraDriverGroup", "camera_alarm", "image_group_class", "roi_of"]
