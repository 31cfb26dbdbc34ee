"""Typed, read-only view of a pipeline configuration: what the per-frame code reads, in its types.

Two ways in, one result (:class:`ProcessingParameters`):

* :meth:`ProcessingParameters.of` reads the typed configuration the pipeline worker runs on
  (``camioc.config.pipeline.PipelineConfig``; processing and config are one layer apart and do
  not import each other, so it is described here structurally by :class:`PipelineSettings`).
  pydantic validated every value, so this only derives what the frame code wants (enums, "off"
  values as ``None``, floats) and checks nothing again.
* :meth:`ProcessingParameters.from_config` reads a plain mapping with cam_server's keys: the
  ``parameters`` dict a user function hands to cam_server's default ``process_image``, and
  processing used on its own (tests, benchmarks). Nothing validated such a dict, so its checks
  raise :class:`~camioc.errors.ConfigError` (cam_server's wording where one exists).

Either way no dict lookups, ``None`` checks or string comparisons happen per frame.

Decisions where cam_server's reference is silent (see also the package docstring):

* ``image_background_enable``: ``"signed"`` and ``"passive"`` select those modes, any other
  truthy value the unsigned (clamped) subtraction, falsy values disable it (a mapping may give
  the two names in any case).
* ``rotation``: a bare number is the angle; dict keys ``angle``, ``order`` (default 1: bilinear,
  which cannot overshoot, unlike scipy's default 3), ``mode`` (default ``"constant"``; a number,
  or a numeric string, means constant mode with that fill value; ``"ortho"`` means exact
  multiples of 90° by ``numpy.rot90``). Angle 0 or ``None`` disables rotation.
* ``averaging`` / ``image_averaging``: values with ``|N| <= 1`` are no-ops and are disabled (so
  the image does not turn float64 for nothing); ``image_averaging`` ignores negative values.
* ``image_scale`` / ``image_offset``: applied when truthy (``None`` and 0 disable them, as
  cam_server's truthiness tests do); both make the image float64.
* ``image_threshold``: applied when ``> 0`` as ``image < int(threshold)`` → 0.
* ``copy``: the function gets a writable copy of the received frame (cam_server's ``copy``;
  without it, and without pre-processing, the frame is the read-only received buffer).
* ``notify_on_error``: the config value when given, otherwise true for names ending in ``_sp``
  (optionally followed by digits, the screen-panel instance convention ``<camera>_sp1``), as
  cam_server's ``NOTIFY_ON_ERROR=["_sp"]`` (the typed config has derived it already).
"""

from __future__ import annotations

import copy
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from camioc.errors import ConfigError

__all__ = [
    "BackgroundMode",
    "GoodRegionParameters",
    "PipelineSettings",
    "ProcessingParameters",
    "RegionOfInterest",
    "RotationParameters",
    "SliceParameters",
]

_SCIPY_MODES = frozenset(
    {"constant", "nearest", "reflect", "mirror", "wrap", "grid-constant", "grid-mirror", "grid-wrap"}
)
_SLICE_ORIENTATIONS = ("vertical", "horizontal")
_SCREEN_PANEL_NAME = re.compile(r"_sp\d*$")


class _GoodRegionSettings(Protocol):
    @property
    def threshold(self) -> float: ...
    @property
    def gfscale(self) -> float: ...


class _SliceSettings(Protocol):
    @property
    def number_of_slices(self) -> int: ...
    @property
    def scale(self) -> float: ...
    @property
    def orientation(self) -> str: ...


class _RotationSettings(Protocol):
    @property
    def angle(self) -> float: ...
    @property
    def order(self) -> int: ...
    @property
    def mode(self) -> str: ...


class PipelineSettings(Protocol):
    """The typed pipeline configuration as processing reads it: the attributes of
    ``camioc.config.pipeline.PipelineConfig`` that processing uses, already validated (ranges,
    choices, sub-section defaults, the derived ``notify_on_error``), plus ``to_dict()``, the
    effective dict (``processing_parameters`` and a user function's ``parameters``)."""

    @property
    def name(self) -> str: ...
    @property
    def function(self) -> str | None: ...
    @property
    def reload(self) -> bool: ...
    @property
    def image_background_enable(self) -> bool | str: ...
    @property
    def image_background(self) -> str | None: ...
    @property
    def image_threshold(self) -> float | None: ...
    @property
    def image_region_of_interest(self) -> tuple[int, int, int, int] | None: ...
    @property
    def image_good_region(self) -> _GoodRegionSettings | None: ...
    @property
    def image_slices(self) -> _SliceSettings | None: ...
    @property
    def binning_x(self) -> int: ...
    @property
    def binning_y(self) -> int: ...
    @property
    def binning_mean(self) -> bool: ...
    @property
    def mirror_x(self) -> bool: ...
    @property
    def mirror_y(self) -> bool: ...
    @property
    def rotation(self) -> _RotationSettings | None: ...
    @property
    def averaging(self) -> int | None: ...
    @property
    def image_averaging(self) -> int | None: ...
    @property
    def image_scale(self) -> float | None: ...
    @property
    def image_offset(self) -> float | None: ...
    @property
    def fw_threshold(self) -> float | None: ...
    @property
    def notify_on_error(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


class BackgroundMode(enum.Enum):
    """What ``image_background_enable`` asks for."""

    OFF = "off"
    UNSIGNED = "unsigned"  # subtract, negative results clamped to 0, image dtype kept
    SIGNED = "signed"  # subtract into a signed type (int32 for 8/16-bit pixels)
    PASSIVE = "passive"  # do not subtract; hand the array to the function as background_data


@dataclass(frozen=True, slots=True)
class GoodRegionParameters:
    """``image_good_region``: profile threshold fraction and widening factor."""

    threshold: float = 0.3
    gfscale: float = 1.8


@dataclass(frozen=True, slots=True)
class SliceParameters:
    """``image_slices``; ``count`` is the odd number of slices actually computed."""

    number_of_slices: int = 1
    scale: float = 2.0
    orientation: str = "vertical"

    @property
    def count(self) -> int:
        """cam_server computes an odd number of slices: an even request gets one more."""
        n = max(self.number_of_slices, 1)
        return n if n % 2 == 1 else n + 1


@dataclass(frozen=True, slots=True)
class RotationParameters:
    """``rotation``: scipy.ndimage.rotate arguments, or an exact quarter turn (``ortho``)."""

    angle: float
    order: int = 1
    mode: str = "constant"
    cval: float = 0.0

    @property
    def ortho(self) -> bool:
        return self.mode == "ortho"

    @property
    def quarter_turns(self) -> int:
        """Counter-clockwise quarter turns for ``numpy.rot90`` (ortho mode)."""
        return round(self.angle / 90.0) % 4


@dataclass(frozen=True, slots=True)
class RegionOfInterest:
    """``image_region_of_interest = [offset_x, size_x, offset_y, size_y]`` (pixels)."""

    offset_x: int
    size_x: int
    offset_y: int
    size_y: int


@dataclass(frozen=True, slots=True)
class ProcessingParameters:
    """Everything the per-frame code reads from a pipeline configuration."""

    function: str | None = None
    reload: bool = False
    background_mode: BackgroundMode = BackgroundMode.OFF
    background_id: str | None = None
    threshold: float | None = None
    roi: RegionOfInterest | None = None
    good_region: GoodRegionParameters | None = None
    slices: SliceParameters | None = None
    binning_x: int = 1
    binning_y: int = 1
    binning_mean: bool = False
    mirror_x: bool = False
    mirror_y: bool = False
    rotation: RotationParameters | None = None
    averaging: int | None = None
    image_averaging: int | None = None
    image_scale: float | None = None
    image_offset: float | None = None
    fw_threshold: float | None = None
    notify_on_error: bool = False
    copy: bool = False
    name: str | None = None
    #: The effective configuration itself (a private deep copy, read-only).
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    @classmethod
    def of(cls, settings: PipelineSettings) -> ProcessingParameters:
        """The view of a typed (validated) pipeline config; no I/O, nothing checked again.

        ``config`` is ``settings.to_dict()``, the effective dict cam_server's functions see;
        ``copy`` is read from it (the typed config keeps that key but does not type it).
        """
        effective = settings.to_dict()
        good_region = settings.image_good_region
        slices = settings.image_slices
        roi = settings.image_region_of_interest
        return cls(
            function=_optional_str(settings.function),
            reload=settings.reload,
            background_mode=_background_mode(settings.image_background_enable),
            background_id=_optional_str(settings.image_background),
            threshold=_positive_or_none(settings.image_threshold),
            roi=RegionOfInterest(*roi) if roi else None,
            good_region=None if good_region is None else GoodRegionParameters(
                threshold=float(good_region.threshold), gfscale=float(good_region.gfscale)),
            slices=None if slices is None else SliceParameters(
                number_of_slices=slices.number_of_slices, scale=float(slices.scale),
                orientation=slices.orientation),
            binning_x=settings.binning_x,
            binning_y=settings.binning_y,
            binning_mean=settings.binning_mean,
            mirror_x=settings.mirror_x,
            mirror_y=settings.mirror_y,
            rotation=_typed_rotation(settings.rotation),
            averaging=_frames_or_none(settings.averaging, allow_negative=True),
            image_averaging=_frames_or_none(settings.image_averaging, allow_negative=False),
            image_scale=_truthy_or_none(settings.image_scale),
            image_offset=_truthy_or_none(settings.image_offset),
            fw_threshold=None if settings.fw_threshold is None else float(settings.fw_threshold),
            notify_on_error=settings.notify_on_error,
            copy=bool(effective.get("copy", False)),
            name=_optional_str(settings.name),
            config=MappingProxyType(effective),
        )

    @classmethod
    def from_config(cls, effective_config: Mapping[str, Any]) -> ProcessingParameters:
        """The view of a plain mapping with cam_server's keys (see the module docstring); no I/O.

        Raises :class:`ConfigError` for values the processing cannot interpret.
        """
        cfg = effective_config
        name = _optional_str(cfg.get("name"))
        notify = cfg.get("notify_on_error")
        if notify is None:
            notify = bool(name and _SCREEN_PANEL_NAME.search(name))
        function = _optional_str(cfg.get("function"))
        return cls(
            function=function,
            reload=bool(cfg.get("reload", False)),
            background_mode=_background_mode(cfg.get("image_background_enable")),
            background_id=_optional_str(cfg.get("image_background")),
            threshold=_threshold(cfg.get("image_threshold")),
            roi=_roi(cfg.get("image_region_of_interest")),
            good_region=_good_region(cfg.get("image_good_region")),
            slices=_slices(cfg.get("image_slices")),
            binning_x=_positive_int(cfg.get("binning_x"), "binning_x"),
            binning_y=_positive_int(cfg.get("binning_y"), "binning_y"),
            binning_mean=bool(cfg.get("binning_mean", False)),
            mirror_x=bool(cfg.get("mirror_x", False)),
            mirror_y=bool(cfg.get("mirror_y", False)),
            rotation=_rotation(cfg.get("rotation")),
            averaging=_averaging(cfg.get("averaging"), "averaging", allow_negative=True),
            image_averaging=_averaging(cfg.get("image_averaging"), "image_averaging", allow_negative=False),
            image_scale=_truthy_float(cfg.get("image_scale"), "image_scale"),
            image_offset=_truthy_float(cfg.get("image_offset"), "image_offset"),
            fw_threshold=_optional_float(cfg.get("fw_threshold"), "fw_threshold"),
            notify_on_error=bool(notify),
            copy=bool(cfg.get("copy", False)),
            name=name,
            config=MappingProxyType(copy.deepcopy(dict(cfg))),
        )

    @classmethod
    def view(cls, config: PipelineSettings | Mapping[str, Any]) -> ProcessingParameters:
        """:meth:`of` a typed config, :meth:`from_config` of a mapping."""
        if isinstance(config, Mapping):
            return cls.from_config(config)
        return cls.of(config)

    @property
    def preprocessing_key(self) -> tuple[Any, ...]:
        """Everything that changes what a pre-processed frame means (for buffer resets)."""
        return (
            self.binning_x,
            self.binning_y,
            self.binning_mean,
            self.background_mode,
            self.background_id,
            self.mirror_x,
            self.mirror_y,
            self.rotation,
            self.roi,
            self.threshold,
        )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, not {value!r}.")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, not {value!r}.") from None
    if math.isnan(result):
        raise ConfigError(f"{key} must be a number, not NaN.")
    return result


def _optional_float(value: Any, key: str) -> float | None:
    return None if value is None else _float(value, key)


def _truthy_float(value: Any, key: str) -> float | None:
    return _truthy_or_none(_optional_float(value, key))


def _truthy_or_none(value: float | None) -> float | None:
    """``image_scale``/``image_offset``: 0 and None mean "not applied" (cam_server's truthiness)."""
    return float(value) if value else None


def _positive_or_none(value: float | None) -> float | None:
    """``image_threshold``: applied only when > 0."""
    return float(value) if value is not None and value > 0 else None


def _frames_or_none(value: int | None, *, allow_negative: bool) -> int | None:
    """``averaging``/``image_averaging``: |N| <= 1 averages nothing (and a negative
    ``image_averaging`` is ignored), so the buffer is off."""
    if value is None or abs(value) <= 1 or (value < 0 and not allow_negative):
        return None
    return value


def _typed_rotation(rotation: _RotationSettings | None) -> RotationParameters | None:
    """A validated rotation (order in 0..5, ortho only for right angles); angle 0 turns it off."""
    if rotation is None or not rotation.angle:
        return None
    mode, cval = _rotation_mode(rotation.mode)
    return RotationParameters(angle=float(rotation.angle), order=rotation.order, mode=mode, cval=cval)


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, not {value!r}.")
    if isinstance(value, int):
        return value
    number = _float(value, key)
    if not number.is_integer():
        raise ConfigError(f"{key} must be an integer, not {value!r}.")
    return int(number)


def _positive_int(value: Any, key: str) -> int:
    if value is None:
        return 1
    result = _int(value, key)
    if result < 1:
        raise ConfigError(f"{key} must be at least 1, not {result}.")
    return result


def _background_mode(value: Any) -> BackgroundMode:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("signed", "passive"):
            return BackgroundMode(lowered)
        if lowered in ("", "false", "0", "none", "off"):
            return BackgroundMode.OFF
        return BackgroundMode.UNSIGNED
    return BackgroundMode.UNSIGNED if value else BackgroundMode.OFF


def _threshold(value: Any) -> float | None:
    return _positive_or_none(_optional_float(value, "image_threshold"))


def _roi(value: Any) -> RegionOfInterest | None:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ConfigError(
            f"image_region_of_interest must be [offset_x, size_x, offset_y, size_y], not {value!r}."
        )
    ox, sx, oy, sy = (_int(v, "image_region_of_interest") for v in value)
    return RegionOfInterest(ox, sx, oy, sy)


def _good_region(value: Any) -> GoodRegionParameters | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"image_good_region must be an object, not {value!r}.")
    defaults = GoodRegionParameters()
    threshold = value.get("threshold")
    gfscale = value.get("gfscale")
    return GoodRegionParameters(
        threshold=defaults.threshold if threshold is None else _float(threshold, "threshold"),
        gfscale=defaults.gfscale if gfscale is None else _float(gfscale, "gfscale"),
    )


def _slices(value: Any) -> SliceParameters | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"image_slices must be an object, not {value!r}.")
    defaults = SliceParameters()
    number = value.get("number_of_slices", defaults.number_of_slices)
    if number is None:
        number = defaults.number_of_slices
    if isinstance(number, bool) or not isinstance(number, int):
        raise ConfigError("number_of_slices must be an integer.")
    scale = value.get("scale")
    orientation = value.get("orientation") or defaults.orientation
    if orientation not in _SLICE_ORIENTATIONS:
        raise ConfigError(
            f"Invalid slice orientation '{orientation}'. Valid: {list(_SLICE_ORIENTATIONS)}."
        )
    return SliceParameters(
        number_of_slices=number,
        scale=defaults.scale if scale is None else _float(scale, "scale"),
        orientation=orientation,
    )


def _rotation(value: Any) -> RotationParameters | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        angle = _float(value, "rotation")
        return RotationParameters(angle=angle) if angle else None
    angle = _optional_float(value.get("angle"), "rotation angle") or 0.0
    if not angle:
        return None
    order = value.get("order")
    order = 1 if order is None else _int(order, "rotation order")
    if not 0 <= order <= 5:
        raise ConfigError(f"rotation order must be between 0 and 5, not {order}.")
    mode, cval = _rotation_mode(value.get("mode"))
    if mode == "ortho" and angle % 90 != 0:
        raise ConfigError(f"rotation mode 'ortho' needs a multiple of 90 degrees, not {angle}.")
    return RotationParameters(angle=angle, order=order, mode=mode, cval=cval)


def _rotation_mode(value: Any) -> tuple[str, float]:
    if value is None or value == "":
        return "constant", 0.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "constant", float(value)
    text = str(value).strip()
    if text == "ortho" or text in _SCIPY_MODES:
        return text, 0.0
    try:
        return "constant", float(text)
    except ValueError:
        raise ConfigError(
            f"Invalid rotation mode '{value}'. Valid: 'ortho', {sorted(_SCIPY_MODES)} or a fill value."
        ) from None


def _averaging(value: Any, key: str, *, allow_negative: bool) -> int | None:
    return _frames_or_none(None if value is None else _int(value, key), allow_negative=allow_negative)
