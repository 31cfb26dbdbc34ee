"""Pure image processing: cam_server's pre-processing and pipeline functions (no I/O).

Entry points for a pipeline worker::

    from camioc.processing import ImagePipeline, ProcessingParameters, load_function, warm_up

    warm_up()                                   # compile the numba kernels once, at start-up
    pipe = ImagePipeline(config, background_loader=load_bg, scripts_dir=scripts)
    out = pipe.process(image, pulse_id, timestamp, x_axis, y_axis)   # dict | None
    pipe.update(new_config)                     # live change

A pipeline worker passes the typed ``PipelineConfig``; a plain mapping with cam_server's keys
works too (processing on its own).

Modules: :mod:`.parameters` (typed config view), :mod:`.preprocess` (binning, background, mirror,
rotation, ROI, threshold, averaging, scale/offset), :mod:`.kernels` (numba full-frame passes),
:mod:`.fitting` (MINPACK-equivalent Gaussian fit), :mod:`.default` and :mod:`.transparent`
(built-in functions), :mod:`.functions` (function loader), :mod:`.pipeline` (per-instance state).
Decisions taken where cam_server's documented behaviour is silent are listed in each module's
docstring.
"""

from camioc.processing.fitting import GaussianFit, fit_gaussian, linear_fit
from camioc.processing.functions import (
    BUILTIN_FUNCTIONS,
    LoadedFunction,
    load_function,
    load_stream_function,
)
from camioc.processing.parameters import (
    BackgroundMode,
    GoodRegionParameters,
    PipelineSettings,
    ProcessingParameters,
    RegionOfInterest,
    RotationParameters,
    SliceParameters,
)
from camioc.processing.pipeline import ImagePipeline
from camioc.processing.warmup import warm_up

__all__ = [
    "BUILTIN_FUNCTIONS",
    "BackgroundMode",
    "GaussianFit",
    "GoodRegionParameters",
    "ImagePipeline",
    "LoadedFunction",
    "PipelineSettings",
    "ProcessingParameters",
    "RegionOfInterest",
    "RotationParameters",
    "SliceParameters",
    "fit_gaussian",
    "linear_fit",
    "load_function",
    "load_stream_function",
    "warm_up",
]
