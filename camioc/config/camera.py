"""Typed camera configuration with cam_server's keys, defaults and validation messages.

A camera config is what cam_server stores in ``camera_config/<camera>.json`` (compat §1.4, §3.1,
§4.2). :meth:`CameraConfig.from_dict` validates once, at load time, into an immutable model; every
other layer reads the typed attributes. Unknown keys and ``_``-prefixed keys (cam_server's
"commented-out" options) are kept in :attr:`CameraConfig.extras` and written back by
:meth:`CameraConfig.to_dict`.

Keys and defaults (cam_server's unless marked *camioc*):

========================= ============================== ===========================================
key                       default                        meaning
========================= ============================== ===========================================
``source``                (mandatory)                    PV prefix (epics, bsread), anything (simulation)
``source_type``           ``"epics"``                    ``epics``, ``simulation``, ``bsread``;
                                                         ``area_detector`` = epics + areadetector PVs
``epics_convention``      ``"camserver"``                *camioc*: PV layout of an epics source:
                                                         ``camserver`` (``<p>:FPICTURE``, ``:WIDTH``,
                                                         ``:HEIGHT``, ``:INIT``) or ``areadetector``
                                                         (``<p>:cam1:*``, ``<p>:image1:ArrayData``)
``mirror_x``/``mirror_y`` ``false``                      flip columns / rows
``rotate``                ``0``                          number of 90° turns (np.rot90, any integer)
``roi``                   ``null``                       ``[offset_x, size_x, offset_y, size_y]``
``binning_x/_y``          ``1``                          binning factors (>= 1)
``binning_mean``          ``false``                      mean instead of (clipped) sum
``camera_calibration``    ``null``                       :class:`CameraCalibration`
``image_background``      ``null``                       background id subtracted camera-side
``alias``/``group``       ``[]``                         a string or a list of strings
``protocol``              ``"tcp"``                      output stream transport (``tcp``/``ipc``)
``port``                  ``null``                       fixed output stream port
``no_client_timeout``     ``10.0``                       s without subscriber before stop; <= 0 never
``queue_size``            ``100``                        output stream high-water mark
``dtype``                 ``null``                       declared image dtype (numpy name); null:
                                                         the source's
``simulate_pulse_id``     ``false``                      pulse id = ``int(time*100)``
``frame_rate``            ``10.0``                       simulation: frames per second (> 0)
``size_x``/``size_y``     ``1280``/``960``               simulation: image size
``image_type``            ``"beam"``                     simulation: beam, raw, static_beam, static_raw
``mode``                  ``"PULL"``                     bsread: socket type of the source stream
``channel``               ``null``                       bsread: image channel; null: the source
                                                         decides (``<name>:FPICTURE``, else ``image``)
``connections``           ``1``                          bsread: parallel connections
``buffer_size``           ``10``                         *camioc*: bsread: frames held to re-order
                                                         multi-connection streams by pulse id
``receive_timeout``       ``1.0``                        *camioc*: bsread: receive timeout in seconds
``url``                   ``null``                       bsread: stream address (instead of the
                                                         ``<source>:BSREADCONFIG`` PV)
``image_compression``     ``null``                       compression of the stream's ``image``
                                                         channel (``true`` = ``bitshuffle_lz4``)
``scalar_compression``    ``null``                       compression of the other channels
``data_header_compression`` ``null``                     compression of the bsread data header
``check_data``            ``false``                      accepted: camioc always builds the stream
                                                         header from the values it sends
``debug``                 ``false``                      the camera worker logs at DEBUG level
========================= ============================== ===========================================

cam_server camera options camioc does not implement (:data:`UNSUPPORTED_KEYS`: the forwarder
stream, bsread-camera threading and checks, the options of source types camioc has no source
for) are refused with an error naming the key when set, never stored and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BeforeValidator, ConfigDict, ValidationError

from camioc.config._fields import (
    Binning,
    Bool,
    ConfigModel,
    Float,
    Int,
    OptBackgroundName,
    OptCompression,
    OptPort,
    OptStr,
    PosFloat,
    Roi,
    Str,
    StrTuple,
    SubModel,
    check_changes,
    check_json_values,
    check_raw_mapping,
    check_str,
    choice,
    config_error,
    drop_none,
    group_members,
    int_within,
    mapping_or_none,
    merge_changes,
    merge_ordered,
    name_check,
    number_list,
    number_range,
    refuse_unsupported,
    section_dict,
)
from camioc.config.pv import BIN_LIMIT, NO_YES, PIXEL_LIMIT, PV, Flag, Integer, Section
from camioc.errors import ConfigError

_PIXELS: dict[str, Any] = {"egu": "px", "low": 0, "high": PIXEL_LIMIT}

# Bounds of the settings that size memory, threads or work (an error names them).
#: simulated image side, pixels (32768^2 uint16 = 2 GiB per frame)
MAX_IMAGE_SIDE = 32768
#: simulated frame rate, Hz
MAX_FRAME_RATE = 10000.0
#: frames queued (queue_size) or re-ordered (buffer_size)
MAX_QUEUE = 10000
#: parallel bsread receivers
MAX_CONNECTIONS = 64

_log = logging.getLogger(__name__)

#: Source types camioc implements.
CAMERA_SOURCE_TYPES: tuple[str, ...] = ("epics", "simulation", "bsread")

#: Other accepted ``source_type`` values -> (source_type, epics_convention).
CAMERA_SOURCE_TYPE_ALIASES: dict[str, tuple[str, str]] = {"area_detector": ("epics", "areadetector")}

EPICS_CONVENTIONS: tuple[str, ...] = ("camserver", "areadetector")

#: cam_server camera keys camioc refuses when set (key -> what to do instead).
UNSUPPORTED_KEYS: dict[str, str] = {
    "forwarder_port": "subscribe to the camera stream, or run a 'store' pipeline, which forwards "
    "the image as '<camera>:FPICTURE'",
    "threaded": "bsread cameras are read by one thread per camera worker",
    "buffer_threshold": "use 'buffer_size' to bound the pulse-id re-ordering buffer",
    "abort_on_error": "a camera worker reports frame errors and keeps running",
    "enforce_pid": "use a pipeline with 'enforce_pid' on the camera stream",
    "enforce_timestamp": "use a pipeline with 'enforce_timestamp' on the camera stream",
    "check_timestamp": "use a pipeline with 'check_timestamp' on the camera stream",
    "class": "script cameras are not supported (source types: epics, simulation, bsread)",
    "timeout": "it belongs to the bschannel source type, which camioc does not implement",
    "interval": "it belongs to the hdf5 source type, which camioc does not implement",
    "db": "it belongs to the stddaq source type, which camioc does not implement",
}

#: Keys cam_server's ``CameraConfig.DEFAULT_CONFIGURATION`` fills in (its expanded config).
CAMSERVER_DEFAULT_KEYS: tuple[str, ...] = (
    "camera_calibration",
    "mirror_x",
    "mirror_y",
    "rotate",
    "roi",
    "image_background",
    "source_type",
)

#: Further defaults shown by ``to_dict()`` (runtime defaults), per source type.
_RUNTIME_KEYS_COMMON = (
    "binning_x",
    "binning_y",
    "binning_mean",
    "protocol",
    "no_client_timeout",
    "queue_size",
    "simulate_pulse_id",
)
_RUNTIME_KEYS_BY_SOURCE: dict[str, tuple[str, ...]] = {
    "epics": ("epics_convention",),
    "simulation": ("frame_rate", "size_x", "size_y", "image_type"),
    "bsread": ("mode", "channel", "connections", "buffer_size", "receive_timeout"),
}


def _check_marker(value: Any) -> tuple[int | float, int | float, int | float, int | float]:
    x1, y1, x2, y2 = number_list(4, "[x1, y1, x2, y2]")(value)
    if x1 == x2 or y1 == y2:
        raise ValueError("must be [x1, y1, x2, y2] with x1 != x2 and y1 != y2")
    return (x1, y1, x2, y2)


def _check_dtype(value: Any) -> str:
    text = check_str(value)
    try:
        kind = np.dtype(text).kind
    except TypeError:
        kind = None
    if kind not in ("u", "i", "f"):
        raise ValueError("must be a numeric numpy dtype name such as 'uint16', 'int16' or 'float32'")
    return text


Marker = Annotated[tuple[int | float, int | float, int | float, int | float], BeforeValidator(_check_marker)]


class CameraCalibration(SubModel):
    """Pixel to physical-unit calibration (compat §3.1).

    Origin = centre of the reference marker; pixel size = marker size / marker span in pixels
    (times cos(angle)); calibrated axes descend.
    """

    reference_marker: Marker = (0, 0, 100, 100)
    reference_marker_width: Float = 100.0
    reference_marker_height: Float = 100.0
    angle_horizontal: Float = 0.0
    angle_vertical: Float = 0.0


class CameraConfig(ConfigModel):
    """One camera's configuration. Build with :meth:`from_dict`; immutable."""

    model_config = ConfigDict(title="camioc camera configuration")

    name: Annotated[str, BeforeValidator(name_check("camera name", allow_empty=True))] = ""
    source: Str = ""
    source_type: Annotated[Literal["epics", "simulation", "bsread"], BeforeValidator(choice(*CAMERA_SOURCE_TYPES))] = (
        "epics"
    )
    epics_convention: Annotated[Literal["camserver", "areadetector"], BeforeValidator(choice(*EPICS_CONVENTIONS))] = (
        "camserver"
    )
    # the settings, in the order of their PVs (the CA walk serves them in field order)
    mirror_x: Annotated[Bool, PV("ReverseX", "bo", "Mirror horizontally (mirror_x)", "Mirror horizontally in force",
                                 Flag(NO_YES), enums=NO_YES)] = False
    mirror_y: Annotated[Bool, PV("ReverseY", "bo", "Mirror vertically (mirror_y)", "Mirror vertically in force",
                                 Flag(NO_YES), enums=NO_YES)] = False
    rotate: Annotated[Int, PV("Rotate", "longout", "Rotation, 90 deg turns (rotate)", "Rotation in force, 90 deg turns",
                              Integer(), low=0, high=3)] = 0
    binning_x: Annotated[Binning, PV("BinX", "longout", "Horizontal binning (binning_x)", "Horizontal binning in force",
                                     Integer(default=1), low=1, high=BIN_LIMIT, value=1)] = 1
    binning_y: Annotated[Binning, PV("BinY", "longout", "Vertical binning (binning_y)", "Vertical binning in force",
                                     Integer(default=1), low=1, high=BIN_LIMIT, value=1)] = 1
    #: a size of 0 means no ROI, so an ROI can be entered one PV at a time and removed with SizeX 0
    roi: Annotated[Roi, Section(
        PV("MinX", "longout", "ROI first column (roi[0])", "ROI first column in force", Integer(), item=0, **_PIXELS),
        PV("MinY", "longout", "ROI first row (roi[2])", "ROI first row in force", Integer(), item=2, **_PIXELS),
        PV("SizeX", "longout", "ROI width, 0 = no ROI (roi[1])", "ROI width in force, 0 = no ROI", Integer(), item=1,
           **_PIXELS),
        PV("SizeY", "longout", "ROI height, 0 = no ROI (roi[3])", "ROI height in force, 0 = no ROI", Integer(),
           item=3, **_PIXELS),
        positive=("size_x", "size_y"), shape=list)] = None
    binning_mean: Bool = False
    camera_calibration: Annotated[
        CameraCalibration | None,
        BeforeValidator(mapping_or_none("{reference_marker, reference_marker_width, ...}")),
    ] = None
    image_background: OptBackgroundName = None
    alias: StrTuple = ()
    group: StrTuple = ()
    protocol: Annotated[Literal["tcp", "ipc"], BeforeValidator(choice("tcp", "ipc"))] = "tcp"
    port: OptPort = None
    no_client_timeout: Float = 10.0
    queue_size: Annotated[int, BeforeValidator(int_within(1, MAX_QUEUE))] = 100
    dtype: Annotated[str | None, BeforeValidator(lambda v: None if v is None else _check_dtype(v))] = None
    simulate_pulse_id: Bool = False
    frame_rate: Annotated[float, BeforeValidator(number_range(0, MAX_FRAME_RATE, above=True))] = 10.0
    size_x: Annotated[int, BeforeValidator(int_within(1, MAX_IMAGE_SIDE))] = 1280
    size_y: Annotated[int, BeforeValidator(int_within(1, MAX_IMAGE_SIDE))] = 960
    image_type: Annotated[
        Literal["beam", "raw", "static_beam", "static_raw"],
        BeforeValidator(choice("beam", "raw", "static_beam", "static_raw")),
    ] = "beam"
    mode: Annotated[Literal["PULL", "SUB"], BeforeValidator(choice("PULL", "SUB", upper=True))] = "PULL"
    channel: OptStr = None
    connections: Annotated[int, BeforeValidator(int_within(1, MAX_CONNECTIONS))] = 1
    buffer_size: Annotated[int, BeforeValidator(int_within(0, MAX_QUEUE))] = 10
    receive_timeout: PosFloat = 1.0
    url: OptStr = None
    image_compression: OptCompression = None
    scalar_compression: OptCompression = None
    data_header_compression: OptCompression = None
    check_data: Bool = False
    debug: Bool = False

    EMPTY_MESSAGE: ClassVar[str] = "Config object cannot be empty. Config: %s"

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], name: str | None = None) -> Self:
        """Validate a camera config mapping (as stored by cam_server) into a CameraConfig.

        Args:
            mapping: the config; not modified. ``None`` values mean "default" (cam_server rule).
            name: the camera name; when given it replaces the mapping's ``name`` key.

        Raises:
            ConfigError: with cam_server's messages ("Config object cannot be empty. Config: %s",
                "'source' not specified in configuration.", "Invalid source_type '%s'. Available:
                [...].") or ``Invalid value for '<key>': <value> (<reason>)``.
        """
        raw = check_raw_mapping(mapping, cls.EMPTY_MESSAGE)
        if name is not None:
            raw["name"] = name
        if raw.get("source") is None:
            raise ConfigError("'source' not specified in configuration.")

        known = cls.known_keys()
        data = drop_none({k: v for k, v in raw.items() if k in known})
        source_type = data.get("source_type", "epics")
        available = [*CAMERA_SOURCE_TYPES, *CAMERA_SOURCE_TYPE_ALIASES]
        if not isinstance(source_type, str) or source_type not in available:
            raise ConfigError(f"Invalid source_type '{source_type}'. Available: {available}.")
        if source_type in CAMERA_SOURCE_TYPE_ALIASES:
            data["source_type"], convention = CAMERA_SOURCE_TYPE_ALIASES[source_type]
            given = data.get("epics_convention", convention)
            if given != convention:
                raise ConfigError(
                    f"Invalid value for 'epics_convention': \"{given}\" "
                    f"(source_type '{source_type}' implies '{convention}')"
                )
            data["epics_convention"] = convention

        refuse_unsupported(raw, UNSUPPORTED_KEYS, "camera")
        check_json_values(raw, [k for k in raw if k not in known])
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, data) from exc
        config._raw = raw
        return config

    def to_dict(self, *, runtime_defaults: bool = True) -> dict[str, Any]:
        """The config as a JSON-serialisable dict.

        Keys keep the order of the mapping the config was built from; known keys carry their
        validated value (lists for tuples, ``"epics"`` for ``"area_detector"``), unknown and
        ``_``-prefixed keys are kept unchanged. cam_server's defaults (``CAMSERVER_DEFAULT_KEYS``,
        calibration sub-defaults) are always filled in; with ``runtime_defaults`` (the default)
        also the defaults the camera's source type uses (binning, protocol, no_client_timeout,
        frame_rate/size for simulations, mode/channel/connections for bsread, ...).
        ``to_dict(runtime_defaults=False)`` is cam_server's expanded config, the form to save.
        """
        typed = self.model_dump(mode="json")
        typed["camera_calibration"] = section_dict(self._raw.get("camera_calibration"), self.camera_calibration)
        shown = [k for k in self._raw if k in typed]
        shown += CAMSERVER_DEFAULT_KEYS
        if self.epics_convention != "camserver":
            shown.append("epics_convention")
        if runtime_defaults:
            shown += _RUNTIME_KEYS_COMMON + _RUNTIME_KEYS_BY_SOURCE.get(self.source_type, ())
        return merge_ordered(self._raw, {k: typed[k] for k in shown})

    def updated(self, changes: Mapping[str, Any]) -> Self:
        """A new config with ``changes`` merged in and re-validated; this one is unchanged.

        Top-level keys are replaced; a ``camera_calibration`` mapping is merged key by key into the
        current one (``null`` removes the calibration).

        Raises:
            ConfigError: "Config updates cannot be empty." or any :meth:`from_dict` message.
        """
        changes = check_changes(changes)
        return type(self).from_dict(merge_changes(self._raw, changes, ("camera_calibration",)))


# ------------------------------------------------------------------------------------------------
# aliases and groups (GET /api/v1/cam/aliases, /groups)


def camera_aliases(configs: Iterable[CameraConfig]) -> dict[str, str]:
    """``{alias: camera name}`` from the configs' ``alias`` keys.

    As in cam_server, an alias equal to a camera name is ignored (the camera wins). An alias
    claimed by two cameras goes to the first one (callers pass configs in name order) and a
    warning is logged.
    """
    configs = list(configs)
    names = {c.name for c in configs}
    aliases: dict[str, str] = {}
    for config in configs:
        for alias in config.alias:
            if alias in names:
                continue
            if alias in aliases and aliases[alias] != config.name:
                _log.warning(
                    "Alias %r of camera %r is already used by camera %r; ignored.", alias, config.name, aliases[alias]
                )
                continue
            aliases[alias] = config.name
    return aliases


def camera_groups(configs: Iterable[CameraConfig]) -> dict[str, list[str]]:
    """``{group: [camera names]}`` from the configs' ``group`` keys, in the order given."""
    return group_members((c.name, c.group) for c in configs)


__all__ = [
    "CAMERA_SOURCE_TYPES",
    "CAMERA_SOURCE_TYPE_ALIASES",
    "CAMSERVER_DEFAULT_KEYS",
    "EPICS_CONVENTIONS",
    "CameraCalibration",
    "CameraConfig",
    "camera_aliases",
    "camera_groups",
]
