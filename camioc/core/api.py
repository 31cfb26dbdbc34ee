"""What the adapters (IOC, REST) see of the camera domain.

The IOC and the REST layer are thin: they translate a caput or an HTTP request into one call of
the :class:`CameraService` protocol and present what it returns. Both read state through the same
dataclasses defined here, so a caput and the equivalent REST call end in the same method and give
the same result. Nothing here imports caproto, aiohttp or zmq.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Frames averaged into a background when the request names no count (cam_server's
#: PIPELINE_DEFAULT_N_IMAGES_FOR_BACKGROUND).
DEFAULT_BACKGROUND_IMAGES = 10


class DetectorState(enum.IntEnum):
    """areaDetector's ``DetectorState_RBV`` states (ADBase), in their enum order."""

    Idle = 0
    Acquire = 1
    Readout = 2
    Correct = 3
    Saving = 4
    Aborting = 5
    Error = 6
    Waiting = 7
    Initializing = 8
    Disconnected = 9
    Aborted = 10


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A consistent snapshot of one camera's instance state.

    Published by the manager on every change and about once per second while running.
    Geometry fields describe the *streamed* image (after binning/mirror/rotate/roi) and the raw
    sensor; they are 0 while unknown (never started, or source not yet delivering).
    """

    name: str
    running: bool = False
    state: DetectorState = DetectorState.Idle
    message: str = ""
    stream_address: str = ""
    frame_count: int = 0
    frame_rate: float = 0.0
    width: int = 0
    height: int = 0
    sensor_width: int = 0
    sensor_height: int = 0
    dtype: str = ""
    clients: int = 0
    pulse_id: int = 0
    timestamp: float = 0.0
    last_start_time: str = ""
    statistics: Mapping[str, Any] = field(default_factory=dict)
    #: frames published by the current (or last) Single/Multiple acquisition (``NumImagesCounter_RBV``)
    images_counter: int = 0
    #: the number of the last acquisition of a given number of frames that completed (see
    #: :meth:`CameraService.acquire`)
    acquired: int = 0


@dataclass(frozen=True, slots=True)
class ImageSnapshot:
    """One streamed image handed to the control process at a bounded rate.

    ``image`` is 2-D, C-contiguous and read-only (it is shared, never mutated).
    ``counter`` increments per snapshot, ``pulse_id``/``timestamp`` are the frame's.
    """

    name: str
    image: np.ndarray
    pulse_id: int
    timestamp: float
    counter: int


class CameraEvents(Protocol):
    """Listener interface (implemented by the IOC). Called on the event-loop thread; must not block."""

    def camera_added(self, name: str) -> None: ...

    def camera_removed(self, name: str) -> None: ...

    def camera_status(self, status: CameraStatus) -> None: ...

    def camera_image(self, snapshot: ImageSnapshot) -> None: ...

    def instances_changed(self, name: str) -> None:
        """Camera ``name``'s instance started (its stream is up) or stopped."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """One measurement of an instance's worker process (iocStats-like, per instance).

    ``cpu``: percent of one core since the previous measurement (cam_server's statistics
    ``cpu``); ``memory``: resident memory in bytes (RSS); ``uptime``: seconds since the worker
    started; ``pid``: its process id. Measured at most once per :data:`HEALTH_PERIOD` (psutil
    calls cost), and that one measurement is what both the PVs and the REST statistics show.
    """

    pid: int
    cpu: float
    memory: int
    uptime: float


#: How often a worker's health is measured at most (seconds).
HEALTH_PERIOD = 1.0


class InstanceService(Protocol):
    """What cameras and pipelines have in common for the adapters: their running instances.

    The argument is positional: cameras call it ``name``, pipelines ``instance_id``.
    """

    def active_instances(self) -> dict[str, dict[str, Any]]:
        """The info of every running instance and of every dead one (``is_stream_active`` false,
        ``state``/``error`` say why) until it is deleted or restarted."""
        ...

    @property
    def running_names(self) -> list[str]:
        """The names of the instances whose worker runs."""
        ...

    def worker_health(self) -> dict[str, WorkerHealth]:
        """The health of the worker of every running instance (keys as :attr:`running_names`),
        measured at most once per :data:`HEALTH_PERIOD`."""
        ...

    async def stop(self, name: str, /) -> None: ...

    async def stop_all(self) -> None: ...

    async def delete_instance(self, name: str, /) -> None: ...


class CameraService(InstanceService, Protocol):
    """The camera domain API used by the IOC and the REST layer (implemented by ``CameraManager``).

    Errors are camioc errors (``camioc.errors``) whose text is the user-facing message.
    Every coroutine returns within bounded time (start-up and probes have deadlines).
    """

    # --- configuration -------------------------------------------------------------------
    def camera_names(self) -> list[str]: ...

    def aliases(self) -> dict[str, str]: ...

    def groups(self) -> dict[str, list[str]]: ...

    def resolve(self, name_or_alias: str) -> str:
        """The camera name for a camera name or alias (NotFoundError otherwise)."""
        ...

    def get_config(self, name: str) -> dict[str, Any]:
        """The expanded configuration (defaults filled in)."""
        ...

    async def set_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validate, save (creating the camera if new) and apply to a running instance."""
        ...

    async def update_config(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some keys only (the caput path); validated, saved, applied; returns the config."""
        ...

    async def delete_config(self, name: str) -> None: ...

    # --- instances -----------------------------------------------------------------------
    async def get_stream(self, name: str, *, hold: bool = False) -> str:
        """Start the instance if needed; return its stream address ``tcp://host:port``.

        ``hold``: keep the instance running until it is stopped explicitly, whatever
        ``no_client_timeout`` says (``Acquire`` 1 on CA: an operator's start must not end after
        ten seconds just because nobody subscribed to the bsread stream).
        """
        ...

    async def stop(self, name: str, /) -> None: ...

    async def acquire(self, name: str, count: int) -> CameraStatus:
        """Start the instance if needed (held, as ``get_stream(hold=True)``) and publish ``count``
        frames from now on, then none until the next call (areaDetector's Single/Multiple image
        mode: the source stays connected, its frames are dropped); ``count`` 0: every frame
        (Continuous). Returns once the frames are published, with the status that says so (its
        ``pulse_id`` is the last frame's); raises if the instance stops first."""
        ...

    def set_free_running(self, name: str, free: bool) -> None:
        """``free``: the camera publishes every frame when it starts (Continuous, the default);
        else none until :meth:`acquire` asks for some (Single/Multiple; a running instance stops
        publishing now). The instance is neither started nor stopped."""
        ...

    async def stop_all(self) -> None: ...

    async def delete_instance(self, name: str, /) -> None: ...

    def status(self, name: str) -> CameraStatus: ...

    def instance_info(self, name: str, /) -> dict[str, Any]:
        """cam_server's instance info dict for a running instance (NotFoundError otherwise)."""
        ...

    def active_instances(self) -> dict[str, dict[str, Any]]:
        """Instance info of every running camera instance, keyed by camera name."""
        ...

    # --- one-shot reads ------------------------------------------------------------------
    async def is_online(self, name: str) -> tuple[bool, str]:
        """(online, status text); never raises for an offline camera."""
        ...

    async def get_geometry(self, name: str) -> list[int]:
        """[width, height] of the streamed image."""
        ...

    async def get_image(self, name: str, raw: bool = False) -> np.ndarray:
        """One image: the latest frame of the running instance, else one read from the source."""
        ...

    async def set_background_image(self, name: str, image: np.ndarray) -> None:
        """Store a camera-level background image ``name`` (``PUT .../background/<name>/image_bytes``)."""
        ...

    # --- CA image publishing ---------------------------------------------------------------
    def set_image_publishing(self, name: str, enabled: bool, min_period: float, /) -> None:
        """Whether and how often (seconds between) image snapshots reach ``camera_image``."""
        ...

    def add_listener(self, listener: CameraEvents) -> None: ...

    def remove_listener(self, listener: CameraEvents) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """A consistent snapshot of one pipeline (a saved config and/or a running instance).

    ``instance_id`` equals a saved pipeline name for shared instances. ``results`` holds the
    latest scalar outputs of the pipeline function (cam_server names, e.g. ``x_center_of_mass``),
    and ``arrays`` the latest 1-D outputs (profiles, axes, fit curves), both published at a
    bounded rate. ``config`` is the effective config in force.
    """

    instance_id: str
    camera_name: str = ""
    running: bool = False
    read_only: bool = False
    saved: bool = False
    state: DetectorState = DetectorState.Idle
    message: str = ""
    error: str = ""
    stream_address: str = ""
    frame_count: int = 0
    frame_rate: float = 0.0
    execution_time_ms: float = 0.0
    dropped: int = 0
    pulse_id: int = 0
    timestamp: float = 0.0
    background_ok: bool = True
    config: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    exit_code: int | None = None


def rate_text(rate: float, count: int) -> str:
    """cam_server's ``rx``/``tx`` instance statistic: ``"%1.2fHz - <messages>"``."""
    return f"{float(rate):1.2f}Hz - {int(count)}"


def rate_of(text: Any) -> float | None:
    """The rate (Hz) in a :func:`rate_text` (``/heartbeat`` gives it as a number)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    try:
        return float(str(text).split("Hz", 1)[0])
    except ValueError:
        return None


class PipelineEvents(Protocol):
    """Listener interface for pipelines (implemented by the IOC). Loop thread; must not block."""

    def pipeline_added(self, instance_id: str) -> None: ...

    def pipeline_removed(self, instance_id: str) -> None: ...

    def pipeline_status(self, status: PipelineStatus) -> None: ...

    def pipeline_image(self, snapshot: ImageSnapshot) -> None: ...



class PipelineService(InstanceService, Protocol):
    """The pipeline manager as the adapters (IOC and REST) see it; one set of names.

    Instances are addressed by ``instance_id`` (a saved pipeline's name for its shared instance),
    saved configs by ``name``. Errors are camioc's exceptions (``ConfigError``, ``NotFoundError``,
    ``ReadOnlyError``, ``InstanceError``, ...) with cam_server's message texts.
    """

    # saved configs
    def pipeline_names(self) -> list[str]: ...

    def groups(self) -> dict[str, list[str]]: ...

    def get_config(self, name: str) -> dict[str, Any]: ...

    async def save_config(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]: ...

    async def delete_config(self, name: str) -> None: ...

    async def update_pipeline(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change a saved pipeline and/or its running instance (what a caput does)."""
        ...

    # instances
    async def create_instance(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        pipeline_name: str | None = None,
        instance_id: str | None = None,
        additional_config: Mapping[str, Any] | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """A private instance: ``(instance_id, stream address, config as cam_server shows it)``."""
        ...

    async def get_instance_stream(self, instance_id: str, *, hold: bool = False) -> str: ...

    async def get_instance_stream_from_config(
        self, config: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any]]: ...

    def instance_config(self, instance_id: str) -> dict[str, Any]: ...

    async def set_instance_config(self, instance_id: str, changes: Mapping[str, Any]) -> dict[str, Any]: ...

    def exit_code(self, instance_id: str, *, running_is_error: bool = False) -> int | None: ...

    async def stop_instance(self, instance_id: str) -> None: ...

    async def stop(self, instance_id: str, /) -> None: ...

    async def stop_all(self) -> None: ...

    async def delete_instance(self, instance_id: str, /) -> None: ...

    def ids(self) -> list[str]: ...

    def status(self, instance_id: str) -> PipelineStatus: ...

    def instance_info(self, instance_id: str, /) -> dict[str, Any]: ...

    def active_instances(self) -> dict[str, dict[str, Any]]: ...

    # backgrounds
    async def collect_background(self, camera_name: str, n_images: int | None = None) -> str: ...

    def latest_background(self, camera_name: str) -> str: ...

    def background_ids(self, camera_name: str) -> list[str]: ...

    async def get_background(self, background_id: str) -> np.ndarray: ...

    async def set_background(self, background_id: str, image: np.ndarray, *, overwrite: bool = True) -> str: ...

    # publishing to the IOC
    def set_image_publishing(self, instance_id: str, enabled: bool, min_period: float, /) -> None: ...

    def add_listener(self, listener: PipelineEvents) -> None: ...

    def remove_listener(self, listener: PipelineEvents) -> None: ...

__all__ = [
    "CameraEvents",
    "CameraService",
    "CameraStatus",
    "DetectorState",
    "HEALTH_PERIOD",
    "ImageSnapshot",
    "DEFAULT_BACKGROUND_IMAGES",
    "InstanceService",
    "PipelineEvents",
    "PipelineService",
    "PipelineStatus",
    "rate_of",
    "rate_text",
    "WorkerHealth",
]
