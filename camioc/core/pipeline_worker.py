"""The pipeline instance worker process: input stream -> per-frame controls -> function -> output.

Runs in its own process (see :mod:`camioc.core.worker`). The loop receives one bsread message
(from a camera, another pipeline, or any bsread stream), applies the per-frame controls
(``paused``, ``pid_range``, ``downsampling``, ``max_frame_rate``), runs the pipeline function
(the processing core for ``processing``/``custom``/``script``, a user ``process()`` for ``stream``,
nothing for ``fanout``; ``store`` forwards only the image as ``<camera>:FPICTURE``), filters the
channels (``include``/``exclude``) and sends the result (PUB, PUSH or an HDF5 file). It reports to
the control process a status summary about once per second, the results at ``result_rate`` and the
processed image at the rate the IOC asked for.

Input/output wiring is decided by the control process (:class:`PipelineWorkerOptions`): the worker
only knows addresses, never other instances.

The worker runs on the typed :class:`~camioc.config.pipeline.PipelineConfig` the control process
validated: a mapping (the effective dict) handed to it at start or in an update is turned into one
once, at the boundary (:func:`typed_config`), and nothing re-parses it afterwards. The effective
dict (``PipelineConfig.to_dict()``) is made only where cam_server hands a dict on: a stream
function's ``parameters``.
"""

from __future__ import annotations

import collections
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camioc.config.pipeline import PipelineConfig
from camioc.core.api import DetectorState
from camioc.core.merge import MergedInput, merge_settings
from camioc.core.pipeline_inputs import (
    OutputOrder,
    is_stream_input,
    prepare_libs,
    receive_wait,
    stream_channels,
    stream_timeout,
)
from camioc.core.worker import InstanceWorker, WorkerLink, serve_worker

log = logging.getLogger(__name__)

RECEIVE_TIMEOUT = 0.1
#: Receive high-water mark of a pipeline's input (frames queued in ZeroMQ before the loop reads them).
INPUT_QUEUE_SIZE = 10
SEND_TIMEOUT = 1.0
CAMERA_CHANNELS = ("image", "timestamp", "width", "height", "x_axis", "y_axis")
ARRAY_RESULTS = ("x_profile", "y_profile", "x_axis", "y_axis", "x_fit_gauss_function", "y_fit_gauss_function")


@dataclass
class PipelineWorkerOptions:
    """Wiring and reporting settings of one pipeline worker (picklable)."""

    instance_id: str
    input_address: str
    input_mode: str = "SUB"           # SUB (camera/pipeline PUB), PULL (fan-out, stream sources)
    input_bind: bool = False          # fan-in binds its input
    output_port: int | None = None    # bind port for PUB/PUSH output
    output_address: str | None = None  # connect address (output_pipeline / output_stream)
    output_mode: str | None = None    # overrides config "mode" (PUSH into a fan-in)
    bind_host: str = "127.0.0.1"
    hostname: str = "127.0.0.1"
    scripts_dir: str = ""  # "" with --no-user-scripts: only built-in functions, no libs
    data_dir: str = ""  # --data-dir: the only folder FILE outputs write in ("": FILE refused)
    background_dir: str = ""
    snapshot_enabled: bool = True
    snapshot_period: float = 0.5
    result_period: float = 0.1
    log_level: int = logging.INFO
    hold: bool = False  # ignore no_client_timeout (started by an explicit EnableCallbacks)
    extra: dict[str, Any] = field(default_factory=dict)


def typed_config(config: PipelineConfig | Mapping[str, Any]) -> PipelineConfig:
    """The worker boundary: the typed config as given, or the effective mapping validated once
    (it was validated by the control process already, so this cannot fail for what it sends;
    ``PipelineConfig.from_dict(c.to_dict()).to_dict() == c.to_dict()``)."""
    return config if isinstance(config, PipelineConfig) else PipelineConfig.from_dict(config)


def untyped(config: PipelineConfig, key: str) -> Any:
    """A key PipelineConfig keeps but does not type (``attributes``, ``pid_buffer``,
    ``thread_buffer_size``): its raw value, None when absent."""
    return config.extras.get(key)


def run_pipeline_worker(link_conn: Any, config: PipelineConfig | Mapping[str, Any],
                        options: PipelineWorkerOptions) -> None:
    """Process entry point (spawned). Never raises: failures are reported, then the process exits.

    ``config`` is the typed config, or the effective dict (what the manager sends today), made
    typed once here.
    """

    def main(link: WorkerLink) -> int:
        # here, not in the fork server: multiprocessing resets sys.path in every forked worker
        from camioc.compat import enable_cam_server_imports

        enable_cam_server_imports()  # user functions' "from cam_server.pipeline.data_processing import ..."
        typed = typed_config(config)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("pipeline worker %s: configuration %s", options.instance_id, typed.to_dict())
        return _PipelineWorker(link, typed, options).run()

    serve_worker(link_conn, tag=options.instance_id, log_level=options.log_level, main=main)


class _FrameGate:
    """Per-frame controls that decide whether a received frame is processed at all."""

    def __init__(self) -> None:
        self.received = 0
        self._last_processed = 0.0

    def admit(self, config: PipelineConfig, pulse_id: int) -> str | None:
        """None to process the frame, else why it is skipped ('paused', 'downsampling', ...)."""
        self.received += 1
        if config.paused:  # ``pause`` is the same setting
            return "paused"
        pid_range = config.pid_range
        if pid_range:
            start, end = pid_range
            if pulse_id < start:
                return "pid_range"
            if end > 0 and pulse_id > end:
                return "completed"
        downsampling = config.downsampling or 1
        if downsampling > 1 and (self.received - 1) % downsampling != 0:
            return "downsampling"
        max_rate = config.max_frame_rate
        if max_rate:
            now = time.monotonic()
            if now - self._last_processed < 1.0 / float(max_rate):
                return "max_frame_rate"
            self._last_processed = now
        return None


class _PidReorderBuffer:
    """Fan-in: emit messages in pulse-id order, holding at most ``size`` out of order."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = 0
        self.last_emitted = -1

    def push(self, pulse_id: int, item: Any) -> list[Any]:
        if pulse_id <= self.last_emitted:
            return []  # late beyond the buffer: dropped (counted by the caller)
        self._seq += 1
        heapq.heappush(self._heap, (pulse_id, self._seq, item))
        out = []
        while len(self._heap) > self.size:
            pid, _, oldest = heapq.heappop(self._heap)
            self.last_emitted = pid
            out.append(oldest)
        return out

    def flush(self) -> list[Any]:
        out = []
        while self._heap:
            pid, _, item = heapq.heappop(self._heap)
            self.last_emitted = pid
            out.append(item)
        return out


class OutputStopped(Exception):
    """The output cannot take more records (FILE: "Data format changed" without ``change``):
    the instance stops with this error and exit code 2."""


class _FileOutput:
    """``mode: FILE``: bsread messages into an HDF5 file that appears only when complete.

    The file is written as ``<file>.partial`` and renamed on close, so a reader never sees a
    half-written file under the final name, and a crash leaves the partial file for inspection
    instead of a truncated result. ``file`` may contain ``strftime`` fields (``%Y%m%d_%H%M%S``),
    expanded in local time. ``layout``, ``localtime`` (channel timestamps), ``change``,
    ``records`` and ``attributes`` are the writer's (:mod:`camioc.streams.hdf5`).

    Confinement: the file, its ``.partial`` and the folders made for them lie inside the data
    folder (``data_dir``, ``--data-dir``; a relative ``file`` is taken inside it). The control
    process checked the name when the config was written; it is resolved again here right before
    the file is opened (and its folder before the rename), so a symlink put in the way since
    then is not followed out of the folder.
    """

    def __init__(self, config: PipelineConfig, data_dir: str) -> None:
        from camioc.core.pipeline_inputs import data_file
        from camioc.streams.hdf5 import Hdf5Writer

        name = config.file or ""
        if not name:
            raise ValueError("File name not defined")
        self.name = name
        self.root = Path(data_dir) if data_dir else None
        self.path = data_file(name, self.root)  # ConfigError: outside the data folder / none configured
        self.partial = self.path.with_name(self.path.name + ".partial")
        attributes = untyped(config, "attributes")
        if isinstance(attributes, str):
            attributes = json.loads(attributes)
        self._writer = Hdf5Writer(
            self.partial, layout=config.layout, localtime=config.localtime, change=config.change,
            records=config.records or None, attributes=attributes)
        self.port = None

    def _check_inside(self, *paths: Path) -> None:
        """Refuse (ConfigError naming the data folder) if any of ``paths`` now resolves outside it."""
        from camioc.config.paths import real_path
        from camioc.errors import ConfigError

        assert self.root is not None  # data_file refused a FILE output without a data folder
        root = real_path(self.root)
        for path in paths:
            if not real_path(path).is_relative_to(root):
                raise ConfigError(f"Output file '{self.name}' is outside the data folder {root} (a symlink leads "
                                  f"out of it: {path} resolves to {real_path(path)}); nothing was written.")

    def open(self) -> None:
        self._check_inside(self.path.parent)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.partial.is_symlink():  # a leftover is a plain file; a link is never written through
            self.partial.unlink()
        self._check_inside(self.path.parent, self.partial, self.path)
        self._writer.open()

    def send(self, data: dict[str, Any], *, pulse_id: int, timestamp: Any) -> bool:
        from camioc.streams.hdf5 import DataFormatChanged

        try:
            self._writer.write(data, pulse_id=pulse_id, timestamp=timestamp)
        except DataFormatChanged as exc:
            raise OutputStopped(str(exc)) from exc
        return True

    def close(self) -> None:
        self._writer.close()
        if self.partial.exists():
            try:
                self._check_inside(self.path.parent)
            except Exception as exc:  # the folder was swapped for a link out: keep the partial file
                log.error("%s; the recording stays in %s", exc, self.partial)
                return
            os.replace(self.partial, self.path)


class _ParallelStage:
    """``processing_threads`` > 1: frames are processed by a thread pool, results leave in order.

    The numba kernels release the GIL, so threads give real parallelism. Each thread has its own
    :class:`ImagePipeline` (no state is shared between concurrent frames); a config change first
    drains the frames in flight, then updates every thread's pipeline. Stateful functions (frame
    averaging) are not parallelised: the caller decides with :func:`parallel_threads`.
    """

    def __init__(self, threads: int, buffer_size: int, make_pipeline: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="processing")
        self._make_pipeline = make_pipeline
        self._local = threading.local()
        self._pipelines: list[Any] = []
        self._lock = threading.Lock()
        self.buffer_size = max(1, buffer_size)
        self.pending: collections.deque[tuple[Any, Any, float]] = collections.deque()

    def _pipeline(self) -> Any:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = self._make_pipeline()
            with self._lock:
                self._pipelines.append(pipeline)
        return pipeline

    def submit(self, message: Any, process: Any) -> None:
        future = self._pool.submit(lambda: process(message, self._pipeline()))
        self.pending.append((message, future, time.perf_counter()))

    def completed(self, wait_oldest: bool = False) -> list[tuple[Any, Any, float]]:
        """Finished frames at the head of the queue, in arrival order (futures, not results)."""
        out = []
        if wait_oldest and self.pending:
            self.pending[0][1].exception()  # waits
        while self.pending and self.pending[0][1].done():
            out.append(self.pending.popleft())
        return out

    def update(self, config: PipelineConfig) -> None:
        for _message, future, _t0 in list(self.pending):
            future.exception()  # let the frames in flight finish with the config they started with
        with self._lock:
            for pipeline in self._pipelines:
                pipeline.update(config)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def store_channels(data: dict[str, Any], camera_name: str) -> dict[str, Any]:
    """What a ``store`` pipeline forwards: only the camera image, under cam_server's channel
    name ``<camera>:FPICTURE`` (what the data buffer and data-acquisition writers record); the
    camera's other channels (timestamp, width, height, axes) are not forwarded. Pulse id and
    global timestamp are the camera's."""
    return {f"{camera_name}:FPICTURE": data.get("image")}


def parallel_threads(config: PipelineConfig) -> int:
    """How many processing threads a config may use (1: sequential)."""
    threads = config.processing_threads
    if threads <= 1 or config.pipeline_type not in ("processing", "custom", "script"):
        return 1
    if abs(config.averaging or 0) > 1 or (config.image_averaging or 0) > 1:
        return 1  # frame averaging needs every frame in one pipeline, in order
    return threads


class _PipelineWorker(InstanceWorker):
    """Input -> per-frame controls -> function -> output, on the shared command/status skeleton."""

    def __init__(self, link: WorkerLink, config: PipelineConfig, options: PipelineWorkerOptions) -> None:
        super().__init__(link, snapshot_enabled=options.snapshot_enabled,
                         snapshot_period=options.snapshot_period, hold=options.hold)
        self.options = options
        self.config = config
        self.instance_id = options.instance_id
        self.pipeline_type = config.pipeline_type
        self.gate = _FrameGate()
        self.error = ""
        self.dropped = 0
        self.execution_ms = 0.0
        self.last_image: np.ndarray | None = None
        self.exit_code = 0
        self.camera_request_pending = False
        self.frame_shape = ""
        self._output: Any = None
        self._last_results_sent = 0.0
        self._last_message_time = time.monotonic()
        self._image_pipeline: Any = None
        self._parallel: _ParallelStage | None = None
        self._stream_function: Any = None
        self._stream_parameters: dict[str, Any] = {}
        self._reorder = _PidReorderBuffer(int(untyped(config, "pid_buffer") or 0) or 1) \
            if self.pipeline_type == "fanin" else None
        # input side (camioc.core.pipeline_inputs / merge): enforce_pid & co, merge, stream_timeout
        self._order = OutputOrder.from_config(config)
        self._input: Any = None  # the receiver in use (replaced on reconnects)
        self._input_address = ""
        self._merge: Any = None
        self._new_input: str | None = None  # an input address to connect to (camera_stream, merge change)
        self.stream_reconnects = 0

    # ------------------------------------------------------------------ set-up
    def _libs_dir(self) -> Path | None:
        return Path(self.options.scripts_dir) / "lib" if self.options.scripts_dir else None

    def _make_function(self) -> None:
        config = self.config
        prepare_libs(config.libs, self._libs_dir(), reload=config.reload)
        if self.pipeline_type in ("processing", "custom", "script"):
            from camioc.processing import ImagePipeline, warm_up

            warm_up()  # compile (or load cached) kernels before the first frame, not on it

            background_store = None
            if self.options.background_dir:
                from camioc.core.backgrounds import BackgroundStore

                background_store = BackgroundStore(Path(self.options.background_dir))

            def make_pipeline() -> Any:
                return ImagePipeline(
                    self.config,
                    background_loader=background_store.load if background_store else None,
                    scripts_dir=Path(self.options.scripts_dir) if self.options.scripts_dir else None,
                )

            self._image_pipeline = make_pipeline()
            threads = parallel_threads(config)
            if threads > 1:
                self._parallel = _ParallelStage(
                    threads, int(untyped(config, "thread_buffer_size") or 20), make_pipeline)
            elif config.processing_threads > 1:
                log.info("processing_threads ignored: frame averaging needs sequential processing")
        elif self.pipeline_type == "stream":
            # cam_server hands a stream function the config as a dict (its ``parameters``)
            self._stream_parameters = config.to_dict()
            if config.function:
                from camioc.processing import load_stream_function

                self._stream_function = load_stream_function(
                    config.function, scripts_dir=Path(self.options.scripts_dir) if self.options.scripts_dir else None,
                    reload=config.reload)

    def _make_output(self) -> Any:
        config = self.config
        mode = str(self.options.output_mode or config.mode).upper()
        if mode == "FILE":
            return _FileOutput(config, self.options.data_dir)
        from camioc.streams.bsread import BsreadSender, HeaderPolicy

        policy = HeaderPolicy(create_header=config.create_header, allow_type_changes=config.allow_type_changes,
                              allow_shape_changes=config.allow_shape_changes)
        common = {
            "mode": mode,
            "queue_size": config.queue_size,
            "block": config.block,
            # a blocking PUSH waits at most this long, so stop commands are never ignored
            "send_timeout": SEND_TIMEOUT,
            "header_policy": policy,
            "data_compression": config.data_compression or None,  # true was made "bitshuffle_lz4"
            # the last N messages made before the first client connects are delivered to it
            "buffer_size": config.buffer_size or 0,
        }
        if self.options.output_address:
            return BsreadSender(conn_type="connect", address=self.options.output_address, **common)
        return BsreadSender(port=self.options.output_port, host=self.options.bind_host, **common)

    def _make_input(self, address: str) -> Any:
        from camioc.streams.bsread import BsreadReceiver

        receiver = BsreadReceiver(
            address, mode=self.options.input_mode, conn_type="bind" if self.options.input_bind else "connect",
            queue_size=INPUT_QUEUE_SIZE, receive_timeout=RECEIVE_TIMEOUT)
        self._input_address = address
        self._merge = merge_settings(self.config, self.options.extra.get("dispatcher_url"))
        if self._merge is not None:  # bsread_address/_channels, bsread_address2/_channels2
            receiver = MergedInput(receiver, self._merge)
            if isinstance(self._input, MergedInput):
                receiver.carry_counters(self._input)
        receiver.connect()
        self._input = receiver
        return receiver

    def _input_changed(self) -> bool:
        """A config change asks for another second input (merge settings differ)."""
        try:
            return merge_settings(self.config, self.options.extra.get("dispatcher_url")) != self._merge
        except Exception as exc:  # validated by the control process; keep the running input
            log.warning("merge settings not applied: %s", exc)
            return False

    def _reconnect_input(self, receiver: Any, silence: float) -> Any:
        """``stream_timeout``: a stream input silent for that long is connected anew (as
        cam_server does), so a source that restarted, even elsewhere in its queueing state, is
        followed; every reconnection is counted and logged."""
        receiver.close()
        self.stream_reconnects += 1
        log.warning("no message from %s for %g s (stream_timeout): reconnecting (%d reconnections)",
                    self._input_address, silence, self.stream_reconnects)
        self._last_message_time = time.monotonic()
        return self._make_input(self._input_address)

    def _input_statistics(self) -> dict[str, int]:
        """Counters of the input-side parameters, for the instance statistics."""
        stats: dict[str, int] = {}
        if isinstance(self._input, MergedInput):
            stats.update(self._input.statistics())
        if self._order is not None:
            stats.update(self._order.statistics())
        if is_stream_input(self.config):
            stats["stream_reconnects"] = self.stream_reconnects
        return stats

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        self._make_function()
        output = self._output = self._make_output()
        reason = "error"
        try:
            output.open()
            if getattr(output, "port", None):
                self.stream_address = f"tcp://{self.options.hostname}:{output.port}"
            elif self.options.output_address:
                self.stream_address = self.options.output_address
            else:
                self.stream_address = self.config.file or ""
            receiver = self._make_input(self.options.input_address)
            self.link.send("started", {"stream_address": self.stream_address, "pid": os.getpid(),
                                       "input_address": receiver.address})
            self.set_state(DetectorState.Acquire, "Running")
            reason = self._loop(receiver, output)
            if reason in ("stopped", "no clients", "timeout") and self._parallel is not None:
                self._drain(output)
        finally:
            if self._reorder is not None:
                for item in self._reorder.flush():
                    self._send(output, *item)
            if self._parallel is not None:
                self._parallel.close()
            if self._input is not None:
                self._input.close()
            output.close()
        self.finish(reason, state=DetectorState.Idle if self.exit_code == 0 else DetectorState.Error,
                    error=self.error if self.exit_code else "", exit_code=self.exit_code)
        return self.exit_code

    def _loop(self, receiver: Any, output: Any) -> str:
        """Until stopped; returns why. Commands may replace the receiver (camera moved, merge
        settings changed), a silent stream input is reconnected."""
        started = time.monotonic()
        while self.running:
            self.poll_commands()
            if self._new_input is not None:
                receiver.close()
                receiver = self._make_input(self._new_input)
                self._new_input = None
            if not self.running:
                return "stopped"
            config = self.config
            message = receiver.receive(timeout=receive_wait(config))
            now = time.monotonic()
            if message is None:
                stream_input = is_stream_input(config)
                silence = stream_timeout(config) if stream_input else float(config.camera_timeout or 10.0)
                if silence > 0 and now - self._last_message_time > silence:
                    if config.abort_on_timeout:
                        self.error = f"No data received within {silence:g} s."
                        self.exit_code = 2
                        return "timeout"
                    if stream_input:
                        receiver = self._reconnect_input(receiver, silence)
                    elif not self.camera_request_pending and self.pipeline_type not in ("fanin", "stream"):
                        self.camera_request_pending = True
                        self.link.send("camera_request", config.camera_name)
                    if self.state == DetectorState.Acquire:
                        self.set_state(DetectorState.Waiting, f"Waiting for source (no data for {silence:g} s)")
            else:
                self._last_message_time = now
                self.camera_request_pending = False
                outcome = self._on_message(message, output)
                if outcome is not None:
                    return outcome
            self.report_status(now=now, clients=getattr(output, "client_count", lambda: 0)())
            if self.without_clients(output, float(config.no_client_timeout or 0), started, now):
                return "no clients"
        return "stopped"

    def _on_message(self, message: Any, output: Any) -> str | None:
        skip = self.gate.admit(self.config, int(message.pulse_id))
        if skip == "completed":
            return "completed"
        if skip is not None:
            return None
        parallel = self._parallel
        if parallel is not None:
            parallel.submit(message, self._process)
            wait_oldest = len(parallel.pending) >= parallel.buffer_size
            for done_message, future, t0 in parallel.completed(wait_oldest=wait_oldest):
                outcome = self._emit_result(done_message, output, future.result, t0)
                if outcome is not None:
                    return outcome
            return None
        return self._emit_result(message, output, lambda: self._process(message), time.perf_counter())

    def _drain(self, output: Any) -> None:
        """Send the frames still in the processing threads (stop: nothing processed is lost)."""
        parallel = self._parallel
        while parallel is not None and parallel.pending:
            for message, future, t0 in parallel.completed(wait_oldest=True):
                if self._emit_result(message, output, future.result, t0) is not None:
                    return

    def _emit_result(self, message: Any, output: Any, result: Any, t0: float) -> str | None:
        """Send one processed frame (``result()`` gives its values or raises) and account for it."""
        pulse_id = int(message.pulse_id)
        try:
            values = result()
        except Exception as exc:
            self._processing_failed(exc)
            if self.config.abort_on_error and not self.config.notify_on_error:
                self.exit_code = 2
                return "error"
            return None
        self.execution_ms = (time.perf_counter() - t0) * 1000.0
        if values is None:  # consumed by averaging, no output for this frame
            return None
        if self.error:
            self.error = ""
            self.set_state(DetectorState.Acquire, "Running")
        try:
            if self._reorder is not None:
                for item in self._reorder.push(pulse_id, (values, pulse_id, message.timestamp)):
                    self._send(output, *item)
            else:
                self._send(output, values, pulse_id, message.timestamp)
        except OutputStopped as exc:
            log.error("output stopped: %s", exc)
            self.error = str(exc)
            self.exit_code = 2
            return "error"
        self.frame_count += 1
        self.rate.tick()
        self.last_pulse_id, self.last_timestamp = pulse_id, message.timestamp_float
        self._publish_results(values, message.data)
        records = self.config.records
        if records and self.frame_count >= records:
            return "completed"
        if self.state != DetectorState.Acquire and not self.error:
            self.set_state(DetectorState.Acquire, "Running")
        return None

    def _process(self, message: Any, image_pipeline: Any = None) -> dict[str, Any] | None:
        data = message.data
        if self.pipeline_type == "store":
            return store_channels(data, self.config.camera_name or "")
        if self.pipeline_type in ("fanout", "fanin"):
            return dict(data)
        if self.pipeline_type == "stream":
            data = stream_channels(data, self.config, getattr(message, "merged", ()))
            if self._stream_function is None:
                return dict(data)
            result = self._stream_function(dict(data), int(message.pulse_id), message.timestamp_float,
                                           self._stream_parameters)
            return dict(result) if result is not None else None
        image = data.get("image")
        if image is None:
            raise ValueError("message has no 'image' channel")
        bsdata = {k: v for k, v in data.items() if k not in CAMERA_CHANNELS}
        result = (image_pipeline or self._image_pipeline).process(
            image, int(message.pulse_id), message.timestamp_float, data.get("x_axis"), data.get("y_axis"),
            bsdata=bsdata or None)
        merged = getattr(message, "merged", ())
        if result is not None and merged:  # matched bsread channels go out too (cam_server)
            result = dict(result)
            for name in merged:
                result.setdefault(name, data[name])
        return result

    def _send(self, output: Any, values: dict[str, Any], pulse_id: int, timestamp: Any) -> None:
        if self._order is not None and not self._order.admit(pulse_id, timestamp):
            return  # enforce_pid / enforce_timestamp / check_timestamp: counted in input_statistics
        include = self.config.include
        exclude = self.config.exclude
        if include:
            values = {k: v for k, v in values.items() if k in include}
        if exclude:
            values = {k: v for k, v in values.items() if k not in exclude}
        sent = output.send(values, pulse_id=pulse_id, timestamp=timestamp)
        if sent is False:
            self.dropped += 1

    def _processing_failed(self, exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        self.dropped += 1
        if text != self.error:
            log.warning("processing failed: %s", text)
        self.error = text
        self.set_state(DetectorState.Error, text)

    # ------------------------------------------------------------------ reporting
    def _publish_results(self, values: dict[str, Any], data: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_results_sent >= self.options.result_period:
            self._last_results_sent = now
            scalars: dict[str, Any] = {}
            arrays: dict[str, np.ndarray] = {}
            for key, value in values.items():
                if key in ("image", "processing_parameters"):
                    continue
                if isinstance(value, str):
                    scalars[key] = value
                elif isinstance(value, (int, float, bool, np.number, np.bool_)):
                    scalars[key] = value.item() if isinstance(value, np.generic) else value
                elif isinstance(value, np.ndarray) and value.ndim == 0:
                    scalars[key] = value.item()
                elif isinstance(value, np.ndarray) and value.ndim == 1 and key in ARRAY_RESULTS:
                    arrays[key] = np.ascontiguousarray(value)
            error = ""
            parameters = values.get("processing_parameters")
            if isinstance(parameters, str):
                try:
                    error = json.loads(parameters).get("processing_error") or ""
                except ValueError:
                    pass
            self.link.send("results", {"results": scalars, "arrays": arrays, "pulse_id": self.last_pulse_id,
                                       "timestamp": self.last_timestamp, "processing_error": error})
        image = values.get("image")
        if isinstance(image, np.ndarray) and image.ndim == 2:
            self.frame_shape = f"{image.shape[1]}x{image.shape[0]}x{image.dtype.itemsize}"
            if self.snapshot_due(now):
                self.send_snapshot(image, now)

    def status_fields(self) -> dict[str, Any]:
        return {
            "error": self.error, "execution_time_ms": self.execution_ms, "dropped": self.dropped,
            "received": self.gate.received, "input_statistics": self._input_statistics(),
            "output_statistics": self._output_statistics(),
        }

    def _output_statistics(self) -> dict[str, Any]:
        """cam_server's output statistics: bytes sent, data-header (re)builds, last image shape."""
        output = self._output
        return {"total_bytes": int(getattr(output, "bytes_sent", 0)),
                "header_changes": int(getattr(output, "header_changes", 0)),
                "frame_shape": self.frame_shape}

    # ------------------------------------------------------------------ commands
    def apply_config(self, config: PipelineConfig | Mapping[str, Any]) -> None:
        """A live update: typed once here; the output order, libs, the processing (or the
        stream function) and, when the merge settings changed, the input follow it."""
        try:
            self.config = typed_config(config)
        except Exception as exc:  # the control process validated it: never expected
            self._processing_failed(exc)
            return
        config = self.config
        if self._order is None:
            self._order = OutputOrder.from_config(config)
        else:
            self._order.update(config)
        prepare_libs(config.libs, self._libs_dir(), reload=config.reload)
        if self._image_pipeline is not None:
            try:
                if self._parallel is not None:
                    self._parallel.update(config)
                self._image_pipeline.update(config)
            except Exception as exc:
                self._processing_failed(exc)
        elif self.pipeline_type == "stream":
            self._make_function()
        if self._new_input is None and self._input is not None and self._input_changed():
            self._new_input = self._input_address
        self.report_status(force=True)

    def other_command(self, kind: str, payload: Any) -> None:
        if kind == "camera_stream" and payload:  # the camera restarted elsewhere: follow it
            self._new_input = str(payload)
            self._last_message_time = time.monotonic()

    def answer(self, what: str, args: Any) -> Any:
        if what == "image" and self.last_image is not None:
            return self.last_image
        raise LookupError(f"unknown request {what!r}")


__all__ = ["PipelineWorkerOptions", "run_pipeline_worker", "typed_config"]
