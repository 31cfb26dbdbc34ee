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
from camioc.core.worker import RateMeter, WorkerLink, setup_worker_logging

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.1
STATUS_PERIOD = 1.0
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


class _Pipeline:
    """Per-config derived state: the transforms' geometry, the axes, the background."""

    def __init__(self, config: Any, background_dir: str) -> None:
        self.config = config
        self._background_dir = background_dir
        self._axes_key: tuple[int, int] | None = None
        self.x_axis = np.zeros(0, np.float32)
        self.y_axis = np.zeros(0, np.float32)
        self.background: np.ndarray | None = None
        self.background_error = ""
        background_id = getattr(config, "image_background", None)
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
    link = WorkerLink(link_conn)
    setup_worker_logging(link, options.log_level, config.name or "camera")
    log.debug("camera worker: configuration %s", config.to_dict())
    exit_code = 0
    try:
        _CameraWorker(link, config, options).run()
    except Exception as exc:  # task boundary: report the failure to the control process
        log.exception("camera worker failed")
        link.send("stopped", {"reason": "error", "error": str(exc) or type(exc).__name__,
                              "error_type": type(exc).__name__})
        exit_code = 1
    finally:
        link_conn.close()
    os._exit(exit_code)  # skip interpreter teardown: libca/zmq threads must not hang the exit


def ipc_address(camera: str, port: int | None) -> str:
    """The ``ipc://`` endpoint of a camera stream with ``protocol: ipc`` (one per camera and port)."""
    import tempfile

    return f"ipc://{Path(tempfile.gettempdir()) / f'camioc-{camera}-{port or 0}.ipc'}"


class _CameraWorker:
    def __init__(self, link: WorkerLink, config: CameraConfig, options: CameraWorkerOptions) -> None:
        self.link = link
        self.options = options
        self.config = config
        self.name = self.config.name
        self.pipeline = _Pipeline(self.config, options.background_dir)
        self.snapshot_enabled = options.snapshot_enabled
        self.snapshot_period = options.snapshot_period
        self.frame_count = 0
        self.snapshot_counter = 0
        self.rate = RateMeter()
        self.state = DetectorState.Initializing
        self.message = "Starting"
        self.last_image: np.ndarray | None = None
        self.last_raw: np.ndarray | None = None
        self.last_pulse_id = 0
        self.last_timestamp = 0.0
        self.total_bytes = 0
        self.header_changes = 0
        self.running = True
        self.hold = options.hold
        self.stream_address = ""
        self._last_status = 0.0
        self._last_snapshot = 0.0
        self._last_error_report = 0.0
        self._sensor = (0, 0)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        from camioc.sources.registry import create_source
        from camioc.streams.camera_stream import CameraStreamPublisher

        source = create_source(self.config)
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
            self.state, self.message = DetectorState.Acquire, "Acquiring"
            self._report_status(force=True)
            self._loop(source, publisher)
        finally:
            publisher.close()
            source.close()

    def _loop(self, source: Any, publisher: Any) -> None:
        reason = "stopped"
        started = time.monotonic()
        while self.running:
            for kind, payload in self.link.commands():
                self._handle_command(kind, payload, source)
            if not self.running:
                break
            try:
                frame = source.read(READ_TIMEOUT)
            except Exception as exc:  # a bad frame must not stop the camera
                self._report_error(f"Frame error: {exc}")
                frame = None
            if frame is not None:
                self._publish(frame, publisher)
            elif not getattr(source, "connected", True):
                if self.state != DetectorState.Disconnected:
                    self.state, self.message = DetectorState.Disconnected, "Camera disconnected"
                    self._report_status(force=True)
            now = time.monotonic()
            self._report_status(now=now, clients=publisher.client_count())
            timeout = float(self.config.no_client_timeout or 0)
            if (timeout > 0 and not self.hold and now - started > timeout
                    and publisher.seconds_without_clients() > timeout):
                reason = "no clients"
                log.info("no client for %.1f s: stopping", timeout)
                break
        self.state, self.message = DetectorState.Idle, f"Stopped ({reason})"
        self._report_status(force=True)
        self.link.send("stopped", {"reason": reason, "error": ""})

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
            self._report_status(force=True)
        if self.state != DetectorState.Acquire:
            self.state, self.message = DetectorState.Acquire, "Acquiring"
            self._report_status(force=True)
        if self.snapshot_enabled and time.monotonic() - self._last_snapshot >= self.snapshot_period:
            self._send_snapshot()

    def _send_snapshot(self) -> None:
        image = self.last_image
        if image is None:
            return
        self._last_snapshot = time.monotonic()
        self.snapshot_counter += 1
        self.link.send("image", {"image": np.ascontiguousarray(image), "pulse_id": self.last_pulse_id,
                                 "timestamp": self.last_timestamp, "counter": self.snapshot_counter})

    # ------------------------------------------------------------------ commands
    def _handle_command(self, kind: str, payload: Any, source: Any) -> None:
        if kind == "stop":
            self.running = False
        elif kind == "config":
            self._apply_config(payload)
        elif kind == "hold":
            self.hold = bool(payload)
        elif kind == "publishing":
            self.snapshot_enabled = bool(payload.get("enabled", True))
            self.snapshot_period = max(0.0, float(payload.get("period", self.snapshot_period)))
        elif kind == "request":
            request_id, what, args = payload
            try:
                value = self._answer(what, args, source)
            except Exception as exc:
                self.link.reply(request_id, False, exc)
            else:
                self.link.reply(request_id, True, value)

    def _apply_config(self, config: CameraConfig) -> None:
        self.config = config
        self.pipeline = _Pipeline(config, self.options.background_dir)
        log.info("configuration updated")
        self._report_status(force=True)

    def _answer(self, what: str, args: Any, source: Any) -> Any:
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

            width, height = source.geometry()
            return list(transformed_shape(width, height, self.config))
        raise ValueError(f"unknown request {what!r}")

    # ------------------------------------------------------------------ reporting
    def _report_error(self, message: str) -> None:
        now = time.monotonic()
        changed = message != self.message or self.state != DetectorState.Error
        self.state, self.message = DetectorState.Error, message
        if changed or now - self._last_error_report > ERROR_REPORT_PERIOD:
            self._last_error_report = now
            log.warning("%s", message)
            self._report_status(force=True)

    def _report_status(self, force: bool = False, now: float | None = None, clients: int | None = None) -> None:
        now = time.monotonic() if now is None else now
        if not force and now - self._last_status < STATUS_PERIOD:
            return
        self._last_status = now
        if clients is not None:
            self._clients = clients
        image = self.last_image
        height, width = (image.shape[:2] if image is not None else (0, 0))
        self.link.send("status", {
            "state": int(self.state),
            "message": self.message,
            "stream_address": self.stream_address,
            "frame_count": self.frame_count,
            "frame_rate": self.rate.rate(now),
            "width": int(width),
            "height": int(height),
            "sensor_width": self._sensor[0],
            "sensor_height": self._sensor[1],
            "dtype": "" if image is None else image.dtype.name,
            "clients": getattr(self, "_clients", 0),
            "pulse_id": self.last_pulse_id,
            "timestamp": self.last_timestamp,
            "total_bytes": self.total_bytes,
            "header_changes": self.header_changes,
            "background_error": self.pipeline.background_error,
        })


__all__ = ["CameraWorkerOptions", "run_camera_worker"]
