"""The camera instance worker process: source -> transforms -> bsread PUB stream.

Runs in its own process (see :mod:`camioc.core.worker`). One loop reads a frame from the source
(blocking with a short timeout, so commands are seen promptly), applies the camera transforms,
publishes cam_server's six channels, and reports to the control process: a status summary about
once per second and on every state change, and an image snapshot at the rate the IOC asked for.
It stops itself after ``no_client_timeout`` seconds without subscribers (0 = never).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camioc.config.camera import CameraConfig
from camioc.core.api import DetectorState
from camioc.core.worker import InstanceWorker, WorkerLink, serve_worker

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.1
#: A source silent this long (or five frame periods of a simulation, if longer) is shown as
#: Disconnected, "Waiting for source": an operator must not read Acquire off a camera that is gone.
SOURCE_SILENCE = 3.0
ERROR_REPORT_PERIOD = 5.0


@dataclass
class CameraWorkerOptions:
    """Everything a camera worker needs besides its config (picklable)."""

    port: int
    bind_host: str
    hostname: str
    connect_timeout: float = 5.0
    snapshot_enabled: bool = True
    snapshot_period: float = 0.5
    background_dir: str = ""
    log_level: int = logging.INFO
    hold: bool = False  # ignore no_client_timeout (started by an explicit Acquire)
    #: publish every frame from the start (Continuous); False: none until an ``acquire`` command
    free_running: bool = True


class _Pipeline:
    """Per-config derived state: the transforms' geometry, the axes, the background."""

    def __init__(self, config: CameraConfig, background_dir: str) -> None:
        self.config = config
        self._background_dir = background_dir
        self._axes_key: tuple[int, int] | None = None
        self.x_axis = np.zeros(0, np.float32)
        self.y_axis = np.zeros(0, np.float32)
        self.background: np.ndarray | None = None
        self.background_error = ""
        background_id = config.image_background
        if background_id:
            self._load_background(background_id)

    def _load_background(self, background_id: str) -> None:
        from camioc.core.backgrounds import BackgroundStore

        try:
            self.background = BackgroundStore(Path(self._background_dir)).load(background_id)
        except (LookupError, ValueError) as exc:
            self.background_error = f"Invalid background image file: {background_id} ({exc})"
            log.warning("%s", self.background_error)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        from camioc.sources.transform import camera_axes, transform_image

        height, width = raw.shape[:2]
        image = transform_image(raw, self.config)
        if self.background is not None:
            image = self._subtract_background(image)
        if self._axes_key != (width, height):
            self.x_axis, self.y_axis = camera_axes(self.config, width, height)
            self._axes_key = (width, height)
        return image

    def _subtract_background(self, image: np.ndarray) -> np.ndarray:
        background = self.background
        assert background is not None
        if background.shape != image.shape:
            if not self.background_error:
                self.background_error = (
                    f"Bad background image size: {background.shape} for image {image.shape}"
                )
                log.warning("%s", self.background_error)
            return image
        result = image.astype(np.int32) - background
        np.clip(result, 0, None, out=result)
        return result.astype(image.dtype, copy=False)


def run_camera_worker(link_conn: Any, config: CameraConfig, options: CameraWorkerOptions) -> None:
    """Process entry point (spawned). Never raises: failures are reported, then the process exits.

    ``config`` is the typed config the manager validated (it pickles with its raw mapping): the
    worker does not parse it again, neither here nor on updates.
    """

    def main(link: WorkerLink) -> int:
        log.debug("camera worker: configuration %s", config.to_dict())
        _CameraWorker(link, config, options).run()
        return 0

    serve_worker(link_conn, tag=config.name or "camera", log_level=options.log_level, main=main)


def ipc_address(camera: str, port: int | None) -> str:
    """The ``ipc://`` endpoint of a camera stream with ``protocol: ipc`` (one per camera and port)."""
    import tempfile

    return f"ipc://{Path(tempfile.gettempdir()) / f'camioc-{camera}-{port or 0}.ipc'}"


class _CameraWorker(InstanceWorker):
    """Source -> transforms -> publisher, on the shared command/status skeleton."""

    def __init__(self, link: WorkerLink, config: CameraConfig, options: CameraWorkerOptions) -> None:
        super().__init__(link, snapshot_enabled=options.snapshot_enabled,
                         snapshot_period=options.snapshot_period, hold=options.hold)
        self.options = options
        self.config = config
        self.name = self.config.name
        self.pipeline = _Pipeline(self.config, options.background_dir)
        self.last_image: np.ndarray | None = None
        self.last_raw: np.ndarray | None = None
        self.total_bytes = 0
        self.header_changes = 0
        self._last_error_report = 0.0
        self._sensor = (0, 0)
        self._source: Any = None
        #: frames still to publish in a Single/Multiple acquisition; None: every frame (Continuous)
        self.frames_left: int | None = None if options.free_running else 0
        self.images_counter = 0
        self.acquisition = 0
        self.acquired = 0

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        from camioc.sources.registry import create_source
        from camioc.streams.camera_stream import CameraStreamPublisher

        source = self._source = create_source(self.config)
        ipc = self.config.protocol == "ipc"
        address = ipc_address(self.name, self.options.port) if ipc else None
        publisher = CameraStreamPublisher(
            port=self.options.port,
            host=self.options.bind_host,
            queue_size=self.config.queue_size,
            address=address,
            image_compression=self.config.image_compression,
            scalar_compression=self.config.scalar_compression,
            data_header_compression=self.config.data_header_compression,
        )
        try:
            source.connect(timeout=self.options.connect_timeout)
            publisher.open()
            self.stream_address = address or f"tcp://{self.options.hostname}:{publisher.port}"
            self.link.send("started", {"stream_address": self.stream_address, "port": publisher.port,
                                       "pid": os.getpid()})
            self.set_state(DetectorState.Acquire, "Acquiring")
            self._loop(source, publisher)
        finally:
            publisher.close()
            source.close()

    def _silence_limit(self) -> float:
        rate = float(getattr(self.config, "frame_rate", 0) or 0) if self.config.source_type == "simulation" else 0.0
        return max(SOURCE_SILENCE, 5.0 / rate) if rate > 0 else SOURCE_SILENCE

    def _loop(self, source: Any, publisher: Any) -> None:
        reason = "stopped"
        started = last_frame = time.monotonic()
        while self.running:
            self.poll_commands()
            if not self.running:
                break
            try:
                frame = source.read(READ_TIMEOUT)
            except Exception as exc:  # a bad frame must not stop the camera
                self._report_error(f"Frame error: {exc}")
                frame = None
            now = time.monotonic()
            if frame is not None:
                last_frame = now
                if self.frames_left != 0:  # 0: a Single/Multiple acquisition is done, frames are dropped
                    self._publish(frame, publisher)
            elif not getattr(source, "connected", True):
                if self.state != DetectorState.Disconnected:
                    self.set_state(DetectorState.Disconnected, "Camera disconnected")
            elif now - last_frame > self._silence_limit() and self.state == DetectorState.Acquire:
                self.set_state(DetectorState.Disconnected,
                               f"Waiting for source (no frame for {now - last_frame:.0f} s)")
            self.report_status(now=now, clients=publisher.client_count())
            timeout = float(self.config.no_client_timeout or 0)
            if self.without_clients(publisher, timeout, started, now):
                reason = "no clients"
                log.info("no client for %.1f s: stopping", timeout)
                break
        self.finish(reason, error="")

    def _publish(self, frame: Any, publisher: Any) -> None:
        try:
            image = self.pipeline.apply(frame.image)
        except Exception as exc:
            self._report_error(f"Transform error: {exc}")
            return
        self.frame_count += 1
        pulse_id = frame.pulse_id if frame.pulse_id is not None else self.frame_count - 1
        publisher.publish(image, self.pipeline.x_axis, self.pipeline.y_axis, pulse_id=int(pulse_id),
                          timestamp=float(frame.timestamp), extra=frame.extra or None)
        self.rate.tick()
        self.total_bytes += image.nbytes
        self.header_changes = int(getattr(publisher, "header_changes", 0))
        self.last_image, self.last_raw = image, frame.image
        self.last_pulse_id, self.last_timestamp = int(pulse_id), float(frame.timestamp)
        raw_h, raw_w = frame.image.shape[:2]
        if (raw_w, raw_h) != self._sensor:
            self._sensor = (raw_w, raw_h)
            self.report_status(force=True)
        if self.state != DetectorState.Acquire:
            self.set_state(DetectorState.Acquire, "Acquiring")
        now = time.monotonic()
        if self.snapshot_due(now):
            self.send_snapshot(image, now)
        if self.frames_left is not None:
            self.frames_left -= 1
            self.images_counter += 1
            if self.frames_left == 0:
                self.acquired = self.acquisition
                self.set_state(DetectorState.Idle, f"Acquired {self.images_counter} image(s)")  # reports

    def other_command(self, kind: str, payload: Any) -> None:
        """``("acquire", {"count": n, "number": k})``: publish the next ``n`` frames and then none
        (areaDetector Single/Multiple); ``n`` 0: every frame (Continuous); ``n`` < 0: none from now.
        The source stays connected between acquisitions; its frames are dropped."""
        if kind != "acquire":
            super().other_command(kind, payload)
            return
        count = int(payload.get("count", 0))
        self.acquisition = int(payload.get("number", 0))
        self.images_counter = 0
        if count < 0:  # no more frames (Acquire 0 in Single/Multiple, or ImageMode changed to them)
            self.frames_left = 0
            self.acquired = self.acquisition
            if self.state == DetectorState.Acquire:
                self.set_state(DetectorState.Idle, "Acquisition stopped")
            return
        if count == 0:
            self.frames_left = None
            self.acquired = self.acquisition
        else:
            self.frames_left = count
        self.set_state(DetectorState.Acquire, "Acquiring" if count == 0 else f"Acquiring {count} image(s)")

    # ------------------------------------------------------------------ commands
    def apply_config(self, config: CameraConfig) -> None:
        self.config = config
        self.pipeline = _Pipeline(config, self.options.background_dir)
        log.info("configuration updated")
        self.report_status(force=True)

    def answer(self, what: str, args: Any) -> Any:
        if what == "image":
            raw = bool(args)
            image = self.last_raw if raw else self.last_image
            if image is None:
                raise LookupError(f"Camera '{self.name}' has not delivered an image yet.")
            return np.ascontiguousarray(image)
        if what == "geometry":
            if self.last_image is not None:
                return [int(self.last_image.shape[1]), int(self.last_image.shape[0])]
            from camioc.sources.transform import transformed_shape

            width, height = self._source.geometry()
            return list(transformed_shape(width, height, self.config))
        raise ValueError(f"unknown request {what!r}")

    # ------------------------------------------------------------------ reporting
    def _report_error(self, message: str) -> None:
        """A frame or transform error: the state says so at once, the log and a forced status
        at most every :data:`ERROR_REPORT_PERIOD` seconds while the same error repeats."""
        now = time.monotonic()
        changed = message != self.message or self.state != DetectorState.Error
        self.state, self.message = DetectorState.Error, message
        if changed or now - self._last_error_report > ERROR_REPORT_PERIOD:
            self._last_error_report = now
            log.warning("%s", message)
            self.report_status(force=True)

    def status_fields(self) -> dict[str, Any]:
        image = self.last_image
        height, width = (image.shape[:2] if image is not None else (0, 0))
        return {
            "width": int(width),
            "height": int(height),
            "sensor_width": self._sensor[0],
            "sensor_height": self._sensor[1],
            "dtype": "" if image is None else image.dtype.name,
            "total_bytes": self.total_bytes,
            "header_changes": self.header_changes,
            "background_error": self.pipeline.background_error,
            "images_counter": self.images_counter,
            "acquired": self.acquired,
        }


__all__ = ["CameraWorkerOptions", "run_camera_worker"]
