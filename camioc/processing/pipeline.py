"""One image pipeline's processing state and its per-frame entry point.

:class:`ImagePipeline` is what a pipeline worker calls for every camera frame. It owns all state
of one pipeline (frame-averaging buffers, the loaded background, the imported function, the
cached ``processing_parameters`` string); nothing lives in module globals, so any number of
pipelines can share a process.

Error handling (decided here; cam_server aborts or notifies depending on ``notify_on_error``):

* A step that fails for the frame's or the configuration's sake (bad background, ROI outside the
  image, a failing user function, an unsupported image) becomes a
  :class:`~camioc.errors.ProcessingError` with a clear message.
* With ``notify_on_error`` (default true for ``*_sp`` names, as cam_server) the error is not
  raised: the frame's output is cam_server's error message — ``x_axis``, ``y_axis``, a zero
  ``image`` of the input frame's shape and dtype, ``width``, ``height`` and
  ``processing_parameters`` carrying ``processing_error`` (no other channel, no timestamp).
* Otherwise :meth:`ImagePipeline.process` raises the ProcessingError and the worker decides
  (cam_server's ``abort_on_error``).

A user function returning ``None`` drops the frame (``process`` returns None), like the
``averaging`` buffer before a block is complete. ``processing_parameters`` is added to a user
function's dict unless it set one itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camioc.errors import ProcessingError
from camioc.processing import default, transparent
from camioc.processing.functions import LoadedFunction, load_function
from camioc.processing.parameters import BackgroundMode, PipelineSettings, ProcessingParameters
from camioc.processing.preprocess import (
    Background,
    BlockMean,
    Frame,
    Preprocessor,
    RollingMean,
    check_frame,
)

__all__ = ["ImagePipeline", "PipelineInput"]

log = logging.getLogger(__name__)

BackgroundLoader = Callable[[str], np.ndarray]
#: What an ImagePipeline is built from: the typed config (a pipeline worker) or a plain mapping
#: with cam_server's keys (processing on its own: tests, benchmarks, scripts).
PipelineInput = PipelineSettings | Mapping[str, Any]


class ImagePipeline:
    """Pre-processing plus the configured function, for one pipeline instance.

    ``config`` is the typed pipeline config (``camioc.config.pipeline.PipelineConfig``, read by
    :meth:`ProcessingParameters.of`) or a mapping with cam_server's keys (read, and checked, by
    :meth:`ProcessingParameters.from_config`). ``background_loader`` returns the background image
    for an id (it may raise; processing does no file I/O itself). ``scripts_dir`` is where user
    function files are looked up.
    """

    def __init__(
        self,
        config: PipelineInput,
        *,
        background_loader: BackgroundLoader | None = None,
        scripts_dir: Path | None = None,
    ) -> None:
        self._loader = background_loader
        self._scripts_dir = scripts_dir
        self._params = ProcessingParameters.view(config)
        self._function = load_function(self._params.function, scripts_dir)
        self._check_kind(self._function)
        self._background: Background | None = None
        self._refresh_background(self._params)
        self._preprocessor = Preprocessor(self._params)
        self._frame_mean = _frame_buffer(self._params.averaging)
        self._user_parameters: dict[str, Any] = {}
        self._parameters_json = ""
        self._refresh_derived()

    # ---------------------------------------------------------------------------------- API

    @property
    def parameters(self) -> ProcessingParameters:
        """The typed view of the current configuration."""
        return self._params

    @property
    def function(self) -> LoadedFunction:
        return self._function

    @property
    def background_ok(self) -> bool | None:
        """None without background subtraction, else whether the background loaded."""
        if self._params.background_mode is BackgroundMode.OFF or self._background is None:
            return None
        return self._background.ok

    @property
    def processing_parameters(self) -> str:
        """The ``processing_parameters`` JSON sent with every (non-error) frame."""
        return self._parameters_json

    def update(self, config: PipelineInput) -> None:
        """Apply a live configuration change.

        Everything that can fail (config view, function import) happens before anything is
        changed, so a failing update leaves the pipeline as it was. The background is reloaded
        only if its id changed (or its last load failed); the function is re-imported if its name
        changed or ``reload`` is set; averaging buffers are kept unless their meaning changed.
        """
        params = ProcessingParameters.view(config)
        function = self._function
        if params.function != self._params.function or params.reload:
            function = load_function(params.function, self._scripts_dir)
            self._check_kind(function)
        self._function = function
        self._refresh_background(params)
        self._preprocessor.update(params)
        self._frame_mean = _resized_frame_buffer(
            self._frame_mean, self._params.averaging, params.averaging
        )
        self._params = params
        self._refresh_derived()

    def process(
        self,
        image: np.ndarray,
        pulse_id: int,
        timestamp: float,
        x_axis: np.ndarray,
        y_axis: np.ndarray,
        bsdata: Any = None,
    ) -> dict[str, Any] | None:
        """Process one camera frame.

        Returns the function's output channels plus ``processing_parameters``; None when the
        frame was consumed without output (``averaging`` block incomplete, user function returned
        None); cam_server's error message when a step fails and ``notify_on_error`` is set.
        Raises :class:`ProcessingError` when a step fails otherwise.
        """
        try:
            img, xa, ya = check_frame(image, x_axis, y_axis)
            if self._params.copy:  # cam_server's "copy": a writable frame for the function
                img = img.copy()
            if self._frame_mean is not None:
                averaged = self._frame_mean.push(img)
                if averaged is None:
                    return None
                img = averaged
            frame = self._preprocessor.run(img, xa, ya, self._background)
            out = self._call_function(frame, pulse_id, timestamp, bsdata)
        except ProcessingError as exc:
            if not self._params.notify_on_error:
                raise
            return self._notified(image, x_axis, y_axis, str(exc))
        except Exception as exc:  # frame boundary: any other failure becomes a ProcessingError
            error = ProcessingError(f"Processing failed: {exc!r}")
            if not self._params.notify_on_error:
                raise error from exc
            log.debug("processing failed", exc_info=True)
            return self._notified(image, x_axis, y_axis, str(error))
        if out is not None:
            out.setdefault("processing_parameters", self._parameters_json)
        return out

    def error_message(self, image: Any, x_axis: Any, y_axis: Any, error: str) -> dict[str, Any]:
        """cam_server's error message for a frame (see the module docstring)."""
        img = np.asarray(image)
        shape = img.shape if img.ndim == 2 else (0, 0)
        dtype = img.dtype if img.dtype.kind in "iuf" else np.dtype(np.uint16)
        parameters = dict(self._params.config)
        parameters.update(self._runtime_fields())
        parameters["processing_error"] = error
        return {
            "x_axis": _axis_or_indices(x_axis, shape[1]),
            "y_axis": _axis_or_indices(y_axis, shape[0]),
            "image": np.zeros(shape, dtype),
            "width": np.int64(shape[1]),
            "height": np.int64(shape[0]),
            "processing_parameters": _dumps(parameters),
        }

    # ---------------------------------------------------------------------------- internals

    def _notified(self, image: Any, x_axis: Any, y_axis: Any, error: str) -> dict[str, Any]:
        log.debug("frame reported as processing error: %s", error)
        return self.error_message(image, x_axis, y_axis, error)

    def _call_function(
        self, frame: Frame, pulse_id: int, timestamp: float, bsdata: Any
    ) -> dict[str, Any] | None:
        builtin = self._function.builtin
        if builtin == "default":
            return default.analyse_frame(frame, timestamp, self._params)
        if builtin == "transparent":
            return transparent.frame_outputs(frame, timestamp)
        parameters = self._user_parameters
        if frame.background_data is not None:
            parameters["background_data"] = frame.background_data
        try:
            result = self._function.func(
                frame.image, pulse_id, timestamp, frame.x_axis, frame.y_axis, parameters, bsdata
            )
        except Exception as exc:  # user code
            raise ProcessingError(f"Function '{self._function.name}' failed: {exc!r}") from exc
        if result is None:
            return None
        if not isinstance(result, dict):
            raise ProcessingError(
                f"Function '{self._function.name}' returned {type(result).__name__}, expected dict"
            )
        return result

    def _check_kind(self, function: LoadedFunction) -> None:
        if function.kind != "image":
            raise ProcessingError(
                f"Function '{function.name}' defines process(stream_data, ...) for stream "
                "pipelines, not process_image(image, ...)"
            )

    def _refresh_background(self, params: ProcessingParameters) -> None:
        if params.background_mode is BackgroundMode.OFF:
            return  # keep a loaded background: switching it back on must not reload it
        current = self._background
        if current is None or current.background_id != params.background_id or not current.ok:
            self._background = Background(params.background_id, self._loader)
            if not self._background.ok:
                log.warning("%s", self._background.error)

    def _runtime_fields(self) -> dict[str, Any]:
        ok = self.background_ok
        return {} if ok is None else {"image_background_ok": ok}

    def _refresh_derived(self) -> None:
        runtime = self._runtime_fields()
        parameters = dict(self._params.config)
        parameters.update(runtime)
        self._parameters_json = _dumps(parameters)
        user = dict(self._params.config)
        user.update(runtime)
        self._user_parameters = user


def _axis_or_indices(axis: Any, size: int) -> np.ndarray:
    if axis is None:
        return np.arange(size, dtype=np.float32)
    return np.asarray(axis, dtype=np.float32)


def _frame_buffer(averaging: int | None) -> BlockMean | RollingMean | None:
    if averaging is None:
        return None
    return BlockMean(averaging) if averaging > 0 else RollingMean(-averaging)


def _resized_frame_buffer(
    buffer: BlockMean | RollingMean | None, old: int | None, new: int | None
) -> BlockMean | RollingMean | None:
    """Keep the frame buffer across an ``averaging`` change unless its kind changes."""
    if buffer is None or new is None or old is None or (old > 0) != (new > 0):
        return _frame_buffer(new)
    buffer.resize(abs(new))
    return buffer


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(parameters: Mapping[str, Any]) -> str:
    return json.dumps(parameters, default=_json_default)
