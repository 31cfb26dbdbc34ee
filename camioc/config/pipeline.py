"""Typed pipeline configuration with cam_server's keys, defaults and validation messages.

A pipeline config is what cam_server stores in ``pipeline_config/<pipeline>.json`` and what
``POST /api/v1/pipeline`` receives (compat §2.1). :meth:`PipelineConfig.from_dict` validates it
once into an immutable model; the processing reads the typed attributes (or the effective dict).

Three views of one config:

* the **raw** mapping it was built from (:attr:`PipelineConfig.raw`);
* the **stored** form, ``to_dict(runtime_defaults=False)``: cam_server's expanded config (for
  ``processing`` pipelines ``DEFAULT_CONFIGURATION`` and the ``image_good_region``/``image_slices``
  sub-defaults filled in, ``None`` never overwriting a default) - what is saved, what
  ``GET .../config`` returns and what :func:`merge_update` works on;
* the **effective** form, ``to_dict()``: the stored form plus the runtime defaults cam_server
  injects at process start (``processing_parameters``): ``no_client_timeout`` 10, ``queue_size``
  10, ``mode`` PUB (PUSH for fanout), ``block`` (False for PUB, True otherwise: camioc decision 2),
  ``data_compression``/``data_header_compression`` (None; ``true`` -> ``"bitshuffle_lz4"``),
  ``paused``/``pause``, ``notify_on_error`` (true for names ending in ``_sp`` or ``_sp<digits>``),
  ``abort_on_error``, ``abort_on_timeout``, ``create_header``, ``allow_type_changes``,
  ``allow_shape_changes``, and for ``mode: FILE`` ``layout``/``localtime``/``change``.

What clients see is none of these: every REST ``config`` payload is :func:`client_config` of the
mapping the user gave (cam_server's expansion only), so the typed defaults above stay internal.

Derived defaults (``mode``, ``block``, ``notify_on_error``) are computed from the raw mapping every
time, so a stored or merged config never freezes them: changing ``mode`` to PUSH makes ``block``
default to True unless ``block`` was set explicitly.

``paused`` (README name) and ``pause`` (cam_server code name) are the same setting: either is
accepted; if both are given ``paused`` wins; both dicts show the resolved value under every one of
the two keys present (the effective form shows both).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from camioc.config._fields import (
    Binning,
    Bool,
    ConfigModel,
    Float,
    Number,
    OptBackgroundName,
    OptNumber,
    OptPort,
    OptPosInt,
    OptPosNumber,
    OptStr,
    OptStrTuple,
    Roi,
    StrTuple,
    SubModel,
    check_bool,
    check_changes,
    check_compression,
    check_json_values,
    check_number,
    check_raw_mapping,
    choice,
    config_error,
    drop_none,
    group_members,
    int_list,
    int_range,
    int_within,
    mapping_or_none,
    merge_changes,
    merge_ordered,
    name_check,
    number_range,
    optional,
    refuse_unsupported,
    section_dict,
    show_value,
)
from camioc.config.pv import (
    BACKGROUND_CONFIG,
    BACKGROUND_MODES,
    DISABLE_ENABLE,
    MAX_SLICES,
    NO_YES,
    PIXEL_LIMIT,
    PV,
    SLICE_ORIENTATIONS,
    TEXT_NELM,
    THRESHOLD_LIMIT,
    Choice,
    Flag,
    Integer,
    Real,
    Section,
    Text,
    Word,
)
from camioc.errors import ConfigError

#: Pipeline types (cam_server's mapping; ``script`` is accepted as in cam_server).
PIPELINE_TYPES: tuple[str, ...] = ("processing", "store", "stream", "custom", "script", "fanout", "fanin")

#: Pipeline types that read a camera and therefore need ``camera_name``.
CAMERA_PIPELINE_TYPES: tuple[str, ...] = ("processing", "store")

#: cam_server's ``PipelineConfig.DEFAULT_CONFIGURATION`` (applied to ``processing`` pipelines).
CAMSERVER_DEFAULT_CONFIGURATION: dict[str, Any] = {
    "image_background_enable": False,
    "image_background": None,
    "image_threshold": None,
    "image_region_of_interest": None,
    "image_good_region": None,
    "image_slices": None,
    "pipeline_type": "processing",
}
DEFAULT_IMAGE_GOOD_REGION: dict[str, Any] = {"threshold": 0.3, "gfscale": 1.8}
DEFAULT_IMAGE_SLICES: dict[str, Any] = {"number_of_slices": 1, "scale": 2.0, "orientation": "vertical"}

#: Sub-sections that instance config updates merge key by key (cam_server's update_pipeline_config).
MERGED_SECTIONS: tuple[str, ...] = ("image_good_region", "image_slices")

#: Runtime defaults shown in the effective config (cam_server injects the first six at start).
RUNTIME_DEFAULT_KEYS: tuple[str, ...] = (
    "no_client_timeout",
    "queue_size",
    "mode",
    "block",
    "data_compression",
    "data_header_compression",
    "paused",
    "pause",
    "notify_on_error",
    "abort_on_error",
    "abort_on_timeout",
    "create_header",
    "allow_type_changes",
    "allow_shape_changes",
)
FILE_MODE_DEFAULT_KEYS: tuple[str, ...] = ("layout", "localtime", "change")
#: ``layout`` of ``mode: FILE`` (the writer, camioc.streams.hdf5, has the same list).
FILE_LAYOUTS: tuple[str, ...] = ("DEFAULT", "FLAT", "BSH5", "BSREAD", "BSREAD_COMPACT")

#: Config names whose pipelines report processing errors instead of aborting (cam_server's
#: NOTIFY_ON_ERROR = ["_sp"]; camioc also matches the screen-panel instance names ``X_sp1``).
NOTIFY_ON_ERROR_NAME = re.compile(r"_sp\d*$")

#: cam_server pipeline keys camioc refuses when set (key -> what to do instead).
UNSUPPORTED_KEYS: dict[str, str] = {
    "multiprocessing": "a camioc pipeline is one worker process; use 'processing_threads' for parallel frames",
    "processing_manager": "a camioc pipeline is one worker process; use 'processing_threads' for parallel frames",
    "spawn_send_thread": "the worker sends each result as it is made; 'queue_size' bounds the output queue",
    "send_buffer_size": "the worker sends each result as it is made; 'queue_size' bounds the output queue",
    "modulo": "use 'downsampling' to forward one frame of N",
    "pipeline_script": "name the script in 'function'",
}
ROTATION_MODES: tuple[str, ...] = (
    "constant",
    "nearest",
    "reflect",
    "mirror",
    "wrap",
    "grid-constant",
    "grid-mirror",
    "grid-wrap",
    "ortho",
)

_PIXELS: dict[str, Any] = {"egu": "px", "low": 0, "high": PIXEL_LIMIT}

# Bounds of the settings that size memory, threads or work (an error names them).
#: frames averaged (averaging, image_averaging): each is a float64 frame in memory
MAX_AVERAGING = 1000
#: slices computed per frame (cam_server makes the number odd)
MAX_SLICES_COMPUTED = 1001
#: parallel processing threads of one pipeline worker
MAX_PROCESSING_THREADS = 64
#: queued output messages / merge buffers
MAX_QUEUE = 10000
_EMPTY_MESSAGE = "Config object cannot be empty.\nConfig: %s"
_SLICES_ORIENTATIONS = ("vertical", "horizontal")


# ------------------------------------------------------------------------------------------------
# field checks


def _check_background_enable(value: Any) -> bool | str:
    if isinstance(value, str) and value in ("signed", "passive"):
        return value
    try:
        return check_bool(value)
    except ValueError:
        raise ValueError("must be true, false, 'signed' or 'passive'") from None


def _check_create_header(value: Any) -> str:
    if value is True:
        return "always"
    if value is False:
        return "once"
    return choice("once", "always", "on_change")(value)


def _check_rotation(value: Any) -> Any:
    """A bare number is the angle (cam_server accepts it); a mapping is {angle, order, mode}."""
    if value is None or isinstance(value, BaseModel):
        return value
    if isinstance(value, Mapping):
        return drop_none(value)
    try:
        return {"angle": check_number(value)}
    except ValueError:
        raise ValueError("must be a number (angle in degrees), an object {angle, order, mode} or null") from None


def _check_rotation_mode(value: Any) -> str:
    """A scipy.ndimage mode, ``ortho`` (np.rot90), or a number: constant mode with that fill value."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(float(value))
    if isinstance(value, str):
        if value in ROTATION_MODES:
            return value
        try:
            if math.isfinite(float(value)):
                return value
        except ValueError:
            pass
    raise ValueError(f"must be one of {', '.join(repr(m) for m in ROTATION_MODES)} or a number (constant fill value)")


def _check_pid_range(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    start, end = int_list(2, "[start_pulse_id, end_pulse_id]")(value)
    return (start, end)


# ------------------------------------------------------------------------------------------------
# sub-sections


class ImageGoodRegion(SubModel):
    """``image_good_region``: profile level ``threshold`` (fraction of max) and widening ``gfscale``."""

    threshold: Annotated[int | float, BeforeValidator(number_range(0, 1))] = 0.3
    gfscale: Annotated[int | float, BeforeValidator(number_range(0, 1000))] = 1.8


class ImageSlices(SubModel):
    """``image_slices`` (needs ``image_good_region``): slices of ``scale``·σ across the beam."""

    number_of_slices: Annotated[int, BeforeValidator(int_within(1, MAX_SLICES_COMPUTED))] = 1
    scale: Number = 2.0
    orientation: Annotated[Literal["vertical", "horizontal"], BeforeValidator(choice(*_SLICES_ORIENTATIONS))] = (
        "vertical"
    )


class Rotation(SubModel):
    """``rotation``: ``angle`` in degrees (0 disables), interpolation ``order`` 0..5 and ``mode``."""

    angle: Float = 0.0
    order: Annotated[int, BeforeValidator(int_range(0, 5))] = 1
    mode: Annotated[str, BeforeValidator(_check_rotation_mode)] = "constant"

    @model_validator(mode="after")
    def _ortho_needs_right_angles(self) -> Self:
        if self.mode == "ortho" and self.angle % 90 != 0:
            raise ValueError("mode 'ortho' needs an angle that is a multiple of 90")
        return self


_OptInputMode = Annotated[
    Literal["SUB", "PULL"] | None, BeforeValidator(optional(choice("SUB", "PULL", upper=True)))
]
_Averaging = Annotated[int | None, BeforeValidator(optional(int_within(-MAX_AVERAGING, MAX_AVERAGING)))]
GoodRegionField = Annotated[ImageGoodRegion | None, BeforeValidator(mapping_or_none("{threshold, gfscale}"))]
SlicesField = Annotated[
    ImageSlices | None, BeforeValidator(mapping_or_none("{number_of_slices, scale, orientation}"))
]


# ------------------------------------------------------------------------------------------------
# the config


class PipelineConfig(ConfigModel):
    """One pipeline's configuration. Build with :meth:`from_dict`; immutable."""

    model_config = ConfigDict(title="camioc pipeline configuration")

    # identity and type
    name: Annotated[str, BeforeValidator(name_check("pipeline name", allow_empty=True))] = ""
    pipeline_type: Annotated[
        Literal["processing", "store", "stream", "custom", "script", "fanout", "fanin"],
        BeforeValidator(choice(*PIPELINE_TYPES)),
    ] = "processing"
    camera_name: Annotated[str | None, BeforeValidator(optional(name_check("camera name")))] = None
    function: OptStr = None
    reload: Bool = False
    read_only: Bool = False
    port: OptPort = None
    group: StrTuple = ()
    libs: StrTuple = ()
    debug: Bool = False

    # cam_server's DEFAULT_CONFIGURATION (processing)
    # (in the order of their PVs: the CA walk serves the settings in field order)
    image_threshold: Annotated[OptNumber, PV(
        "CentroidThreshold", "ao", "Threshold, 0 = off (image_threshold)", "Pixel threshold in force",
        Real(zero_is_off=True), prec=1, low=0.0, high=THRESHOLD_LIMIT)] = None
    image_region_of_interest: Annotated[Roi, Section(
        PV("ROI:MinX", "longout", "ROI first column", "ROI first column in force", Integer(), item=0, **_PIXELS),
        PV("ROI:MinY", "longout", "ROI first row", "ROI first row in force", Integer(), item=2, **_PIXELS),
        PV("ROI:SizeX", "longout", "ROI width", "ROI width in force", Integer(), item=1, **_PIXELS),
        PV("ROI:SizeY", "longout", "ROI height", "ROI height in force", Integer(), item=3, **_PIXELS),
        PV("ROI:Enable", "bo", "Apply the ROI (image_region_of_interest)", "ROI in force", Flag(DISABLE_ENABLE),
           enums=DISABLE_ENABLE, switch=True),
        positive=("roi_size_x", "roi_size_y"), shape=list)] = None
    image_background_enable: Annotated[
        bool | Literal["signed", "passive"], BeforeValidator(_check_background_enable),
        PV("EnableBackground", "mbbo", "Background subtraction mode", "Background subtraction in force",
           Choice(BACKGROUND_CONFIG), enums=BACKGROUND_MODES),
    ] = False
    image_background: Annotated[OptBackgroundName, PV(
        "BackgroundId", "waveform", "Background id (image_background)", "Background id in force",
        Text(TEXT_NELM - 1), nelm=TEXT_NELM)] = None
    image_good_region: Annotated[GoodRegionField, Section(
        PV("GoodRegion:Enable", "bo", "Use good region (image_good_region)", "Good region in force",
           Flag(DISABLE_ENABLE), enums=DISABLE_ENABLE, switch=True),
        PV("GoodRegion:Threshold", "ao", "Good region level, fraction of max", "Good region level in force", Real(),
           prec=3, low=0.0, high=1.0, value=0.3, item="threshold"),
        PV("GoodRegion:GFScale", "ao", "Good region widening factor", "Good region widening in force", Real(),
           prec=2, low=0.0, high=100.0, value=1.8, item="gfscale"))] = None
    image_slices: Annotated[SlicesField, Section(
        PV("Slices:Number", "longout", "Slices, 0 = none (image_slices)", "Number of slices in force", Integer(),
           low=0, high=MAX_SLICES, item="number_of_slices"),
        PV("Slices:Scale", "ao", "Slice extent in sigmas", "Slice extent in force", Real(), prec=2, low=0.0,
           high=100.0, value=2.0, item="scale"),
        PV("Slices:Orientation", "mbbo", "Slice orientation", "Slice orientation in force", Word(SLICE_ORIENTATIONS),
           enums=SLICE_ORIENTATIONS, item="orientation"),
        positive=("slices_number",))] = None

    # further processing keys
    binning_x: Binning = 1
    binning_y: Binning = 1
    binning_mean: Bool = False
    mirror_x: Bool = False
    mirror_y: Bool = False
    rotation: Annotated[Rotation | None, BeforeValidator(_check_rotation)] = None
    averaging: Annotated[_Averaging, PV(
        "Averaging", "longout", "Frames averaged, <0 rolling, 0 = off", "Frames averaged in force",
        Integer(zero_is_off=True), low=-1000, high=1000)] = None
    image_averaging: Annotated[int | None, BeforeValidator(optional(int_within(0, MAX_AVERAGING)))] = None
    image_scale: OptNumber = None
    image_offset: OptNumber = None
    fw_threshold: OptPosNumber = None
    max_frame_rate: Annotated[OptPosNumber, PV(
        "MaxArrayRate", "ao", "Max processing rate, 0 = unlimited", "Max processing rate in force",
        Real(zero_is_off=True), egu="Hz", prec=2, low=0.0, high=1000.0)] = None
    downsampling: OptPosInt = None
    pid_range: Annotated[tuple[int, int] | None, BeforeValidator(_check_pid_range)] = None
    include: OptStrTuple = None
    exclude: OptStrTuple = None
    paused: Annotated[Bool, PV("Pause", "bo", "Pause processing (paused)", "Processing paused", Flag(NO_YES),
                               enums=NO_YES)] = False
    processing_threads: Annotated[int, BeforeValidator(int_within(0, MAX_PROCESSING_THREADS))] = 0

    # input
    input_stream: OptStr = None
    input_pipeline: OptStr = None
    input_mode: Annotated[
        Literal["SUB", "PULL"] | None, BeforeValidator(optional(choice("SUB", "PULL", upper=True)))
    ] = None
    bsread_address: OptStr = None
    bsread_channels: OptStrTuple = None
    camera_timeout: Number = 10.0
    stream_timeout: Number = 10.0
    # bsread merge (camioc.core.merge; defaults applied there, so unset keys stay out of to_dict)
    bsread_mode: _OptInputMode = None
    bsread_image_buf: Annotated[int | None, BeforeValidator(optional(int_range(1, 5000)))] = None
    bsread_data_buf: Annotated[int | None, BeforeValidator(optional(int_range(1, 10000)))] = None
    bsread_address2: OptStr = None
    bsread_channels2: OptStrTuple = None
    bsread_mode2: _OptInputMode = None
    input_stream2: OptStr = None
    input_mode2: _OptInputMode = None
    merge_queue_size: Annotated[int | None, BeforeValidator(optional(int_within(1, MAX_QUEUE)))] = None
    merge_buffer_size: Annotated[int | None, BeforeValidator(optional(int_within(1, MAX_QUEUE)))] = None
    receive_timeout: OptPosNumber = None
    dispatcher_url: OptStr = None

    # output
    mode: Annotated[Literal["PUB", "PUSH", "FILE"], BeforeValidator(choice("PUB", "PUSH", "FILE", upper=True))] = "PUB"
    block: Bool = False
    queue_size: Annotated[int, BeforeValidator(int_within(1, MAX_QUEUE))] = 10
    #: PUB/PUSH output: the last N messages made before the first client connects go to it (0: off)
    buffer_size: Annotated[int | None, BeforeValidator(optional(int_range(0, 10000)))] = None
    no_client_timeout: Number = 10
    data_compression: Annotated[str | None, BeforeValidator(check_compression)] = None
    data_header_compression: Annotated[str | None, BeforeValidator(check_compression)] = None
    create_header: Annotated[
        Literal["once", "always", "on_change"], BeforeValidator(_check_create_header)
    ] = "on_change"
    allow_type_changes: Bool = True
    allow_shape_changes: Bool = True
    output_stream: OptStr = None
    output_pipeline: OptStr = None
    file: OptStr = None
    #: cam_server's DEFAULT/FLAT/BSH5, camioc's BSREAD/BSREAD_COMPACT (camioc.streams.hdf5)
    layout: Annotated[
        Literal["DEFAULT", "FLAT", "BSH5", "BSREAD", "BSREAD_COMPACT"],
        BeforeValidator(choice(*FILE_LAYOUTS, upper=True)),
    ] = "DEFAULT"
    localtime: Bool = True
    change: Bool = False
    records: OptPosInt = None

    # errors
    abort_on_error: Bool = True
    abort_on_timeout: Bool = False
    notify_on_error: Bool = False
    enforce_pid: Bool = False
    enforce_timestamp: Bool = False
    check_timestamp: Bool = False

    #: keys of the raw mapping that are typed here; ``pause`` is the alias of ``paused``.
    ALIASES: ClassVar[dict[str, str]] = {"pause": "paused"}

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], name: str | None = None) -> Self:
        """Validate a pipeline config mapping into a PipelineConfig.

        Args:
            mapping: the config; not modified. ``None`` values mean "default" (cam_server rule).
            name: the pipeline (or instance) name; when given it replaces the mapping's ``name``.

        Raises:
            ConfigError: cam_server's messages, checked in cam_server's order: "Config object
                cannot be empty.\\nConfig: %s", "Camera name not specified in configuration."
                (processing and store), "number_of_slices must be an integer.", "Invalid slice
                orientation '%s'. ...", "pipeline_type '%s' not present in mapping. Available:
                [...].", "File name not defined" (mode FILE); then ``Invalid value for '<key>':
                <value> (<reason>)`` for any other bad key.
        """
        raw = check_raw_mapping(mapping, _EMPTY_MESSAGE)
        if name is not None:
            raw["name"] = name
        data = cls._prepare(raw)
        refuse_unsupported(raw, UNSUPPORTED_KEYS, "pipeline")
        known = cls.known_keys()
        check_json_values(raw, [k for k in raw if k not in known])
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, data) from exc
        config._raw = raw
        return config

    @classmethod
    def _prepare(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """cam_server's checks with its exact messages, then the data for the typed model (None
        values dropped, derived defaults applied)."""
        pipeline_type = raw.get("pipeline_type") or "processing"
        if pipeline_type in CAMERA_PIPELINE_TYPES and not raw.get("camera_name"):
            raise ConfigError("Camera name not specified in configuration.")
        if pipeline_type == "processing":
            slices = raw.get("image_slices")
            if isinstance(slices, Mapping) and slices:
                number = slices.get("number_of_slices")
                if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
                    raise ConfigError("number_of_slices must be an integer.")
                orientation = slices.get("orientation")
                if orientation is not None and orientation not in _SLICES_ORIENTATIONS:
                    raise ConfigError(
                        f"Invalid slice orientation '{orientation}'. "
                        "Slices orientation can be 'vertical' or 'horizontal'."
                    )
        if not isinstance(pipeline_type, str) or pipeline_type not in PIPELINE_TYPES:
            raise ConfigError(
                f"pipeline_type '{pipeline_type}' not present in mapping. Available: {list(PIPELINE_TYPES)}."
            )
        mode = raw.get("mode")
        if isinstance(mode, str) and mode.upper() == "FILE" and not raw.get("file"):
            raise ConfigError("File name not defined")
        _check_attributes(raw.get("attributes"))

        typed = cls.typed_keys()
        data = drop_none({k: v for k, v in raw.items() if k in typed})
        data["pipeline_type"] = pipeline_type
        if raw.get("pause") is not None:
            _check_bool_key(raw, "pause")
            data.setdefault("paused", raw["pause"])
        if raw.get("copy") is not None:  # read by the processing (camioc.processing.parameters)
            _check_bool_key(raw, "copy")
        for key, value in derived_defaults(raw).items():
            data.setdefault(key, value)
        return data

    # ----------------------------------------------------------------------------------------
    def to_dict(self, *, runtime_defaults: bool = True) -> dict[str, Any]:
        """The config as a JSON-serialisable dict (see the module docstring for the two forms).

        Keys keep the order of the mapping the config was built from; known keys carry their
        validated value (lists for tuples, ``"bitshuffle_lz4"`` for ``data_compression: true``,
        upper-case modes, ``rotation`` as an object); unknown and ``_``-prefixed keys are kept.
        """
        typed = self.model_dump(mode="json")
        for key in ("image_good_region", "image_slices", "rotation"):
            typed[key] = section_dict(self._raw.get(key), getattr(self, key))
        typed["pause"] = typed["paused"]

        shown = [k for k in self._raw if k in typed]
        shown.append("pipeline_type")
        if self.pipeline_type == "processing":
            shown += CAMSERVER_DEFAULT_CONFIGURATION
        if runtime_defaults:
            shown += RUNTIME_DEFAULT_KEYS
            if self.mode == "FILE":
                shown += FILE_MODE_DEFAULT_KEYS
        return merge_ordered(self._raw, {k: typed[k] for k in shown})

    def updated(self, changes: Mapping[str, Any]) -> Self:
        """A new config with ``changes`` merged in (see :func:`merge_update`); this one is unchanged."""
        return type(self).from_dict(merge_update(self.to_dict(runtime_defaults=False), changes))

    @property
    def pause(self) -> bool:
        """cam_server's name of :attr:`paused`."""
        return self.paused


def derived_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults that depend on other keys: ``mode`` (PUSH for fanout and store — their consumers must
    not lose frames — else PUB), ``block`` (False
    for PUB, True otherwise) and ``notify_on_error`` (true for names ending in ``_sp``/``_sp<n>``)."""
    mode = raw.get("mode")
    if not isinstance(mode, str) or not mode:
        mode = "PUSH" if raw.get("pipeline_type") in ("fanout", "store") else "PUB"
    name = raw.get("name")
    return {
        "mode": mode.upper(),
        "block": mode.upper() != "PUB",
        "notify_on_error": isinstance(name, str) and bool(NOTIFY_ON_ERROR_NAME.search(name)),
    }


def _check_attributes(value: Any) -> None:
    """``attributes`` (mode FILE): ``/general/<key>`` datasets, a JSON object (or its text) of
    names to strings, numbers, booleans or lists of them; the writer's own names are reserved."""
    if value is None:
        return
    reason = ""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
    if not isinstance(parsed, Mapping):
        reason = "must be an object {name: value} (or its JSON text)"
    else:
        for key, item in parsed.items():
            items = item if isinstance(item, list) else [item]
            if not isinstance(key, str) or not key or "/" in key:
                reason = f"'{key}' is not a valid HDF5 name"
            elif key in ("created", "user", "pid", "host", "datasets"):
                reason = f"'{key}' is written by the writer itself"
            elif not items or not all(isinstance(i, str | int | float) for i in items) or (
                    len({type(i) is str for i in items}) > 1):
                reason = f"'{key}' must be a string, a number or a list of either"
            if reason:
                break
    if reason:
        raise ConfigError(f"Invalid value for 'attributes': {show_value(value)} ({reason})")


def _check_bool_key(raw: Mapping[str, Any], key: str) -> None:
    try:
        check_bool(raw[key])
    except ValueError as exc:
        raise ConfigError(f"Invalid value for '{key}': {show_value(raw[key])} ({exc})") from None


# ------------------------------------------------------------------------------------------------
# cam_server's expansion, merge, groups


def expand_config(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """cam_server's expansion of a processing config: ``DEFAULT_CONFIGURATION`` and the
    good-region/slices sub-defaults, ``None`` never overwriting a default. Other keys unchanged."""
    expanded = copy.deepcopy(CAMSERVER_DEFAULT_CONFIGURATION)
    expanded.update((k, copy.deepcopy(v)) for k, v in configuration.items() if v is not None)
    for key, defaults in (("image_good_region", DEFAULT_IMAGE_GOOD_REGION), ("image_slices", DEFAULT_IMAGE_SLICES)):
        section = expanded.get(key)
        if isinstance(section, Mapping):
            filled = dict(defaults)
            filled.update((k, v) for k, v in section.items() if v is not None)
            expanded[key] = filled
    return expanded


def client_config(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """The config as cam_server shows it to clients (every REST ``config`` payload).

    cam_server answers with its expansion of the config the user gave, nothing else: for
    ``processing`` pipelines (``pipeline_type`` absent, null or ``"processing"``) the user's keys
    plus ``DEFAULT_CONFIGURATION`` and the good-region/slices sub-defaults (:func:`expand_config`,
    ``None`` never overwriting a default); other pipeline types exactly the user's keys. The
    runtime defaults camioc's worker uses (``queue_size``, ``mode``, ``block``, ...) and the
    instance ``name`` are not added: cam_server shows them only in the stream's
    ``processing_parameters`` (compat §2.1). Values are not normalised (``"mode": "pub"`` stays).
    """
    if (configuration.get("pipeline_type") or "processing") == "processing":
        return expand_config(configuration)
    return copy.deepcopy(dict(configuration))


def verify_attributes(section_name: str, section: Mapping[str, Any], mandatory: Iterable[str]) -> None:
    """cam_server's mandatory-attribute check, with its message. cam_server runs it after its
    expansion, which fills every mandatory key, so it can never fire there; camioc's defaults live
    in the typed model, so :meth:`PipelineConfig.from_dict` does not call it. Kept for callers that
    check a mapping that was not expanded (e.g. a hand-written section)."""
    missing = [attr for attr in mandatory if attr not in section]
    if missing:
        raise ConfigError(f"The following mandatory attributes were not found in the {section_name}: {missing}")


def merge_update(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """An instance config update (``POST /api/v1/pipeline/instance/<id>/config``).

    ``image_good_region`` and ``image_slices`` mappings are merged key by key into the current
    ones; every other key is replaced (``null`` resets a key to its default). Changing one of
    ``paused``/``pause`` changes both. ``current`` may be the stored or the effective form: a
    derived default in it (``mode``, ``block``, ``notify_on_error`` equal to what
    :func:`derived_defaults` gives) is dropped before merging, so it is derived again from the
    merged config (``{"mode": "PUSH"}`` turns a default ``block: false`` into ``true``; an explicit
    ``block`` in ``changes`` or differing from the default is kept). The result is validated and
    returned in the stored form (``PipelineConfig.to_dict(runtime_defaults=False)``).

    Raises:
        ConfigError: "Config updates cannot be empty." for empty (or None) changes, or any
            :meth:`PipelineConfig.from_dict` message; ``current`` is never modified.
    """
    changes = check_changes(changes)
    derived = derived_defaults(current)
    base = {k: v for k, v in current.items() if not (k in derived and v == derived[k] and k not in changes)}
    merged = merge_changes(base, changes, MERGED_SECTIONS)
    if "paused" in changes:
        if "pause" in merged:
            merged["pause"] = merged["paused"]
    elif "pause" in changes and "paused" in merged:
        merged["paused"] = merged["pause"]
    return PipelineConfig.from_dict(merged).to_dict(runtime_defaults=False)


def pipeline_groups(configs: Iterable[PipelineConfig]) -> dict[str, list[str]]:
    """``{group: [pipeline names]}`` from the configs' ``group`` keys, in the order given."""
    return group_members((c.name, c.group) for c in configs)


__all__ = [
    "CAMERA_PIPELINE_TYPES",
    "CAMSERVER_DEFAULT_CONFIGURATION",
    "DEFAULT_IMAGE_GOOD_REGION",
    "DEFAULT_IMAGE_SLICES",
    "MERGED_SECTIONS",
    "PIPELINE_TYPES",
    "ImageGoodRegion",
    "ImageSlices",
    "PipelineConfig",
    "Rotation",
    "client_config",
    "derived_defaults",
    "expand_config",
    "verify_attributes",
    "merge_update",
    "pipeline_groups",
]
