"""What a config field is as an EPICS setting: the marker that makes the config model the device model.

A config field that operators change at runtime carries a :class:`PV` (a plain setting) or a
:class:`Section` (a field whose value is a whole made of several PVs: an ROI list, the good-region
or slices object) in its ``Annotated`` metadata::

    image_threshold: Annotated[OptNumber, PV(
        "CentroidThreshold", "ao", "Threshold, 0 = off (image_threshold)", "Pixel threshold in force",
        codec=Real(zero_is_off=True), prec=1, low=0.0, high=THRESHOLD_LIMIT)] = None

That one declaration is everything a transport needs: :mod:`camioc.model` walks the config classes,
turns every marker into a setpoint record and its ``_RBV``, converts values both ways with the
marker's :class:`Codec`, and the CA adapter (and any other transport) serves what the walk gives.
Nothing here knows a transport; the record types are EPICS' because the PV names are EPICS'.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Limits and lengths the settings' PVs share.
PIXEL_LIMIT = 65535  # ROI coordinates and sizes
BIN_LIMIT = 256
THRESHOLD_LIMIT = 1e9
#: Slices with readbacks (``Slice0:`` .. ``Slice14:``); cam_server makes an odd number of slices,
#: so ``Slices:Number`` 0..15 gives at most 15.
MAX_SLICES = 15
#: Length of the CHAR waveforms of short texts (status messages, addresses, background ids).
TEXT_NELM = 256
NO_YES = ("No", "Yes")
DISABLE_ENABLE = ("Disable", "Enable")
#: ``EnableBackground`` state -> ``image_background_enable``.
BACKGROUND_CONFIG: dict[str, bool | str] = {"Disable": False, "Enable": True, "Signed": "signed", "Passive": "passive"}
BACKGROUND_MODES = tuple(BACKGROUND_CONFIG)
SLICE_ORIENTATIONS = ("vertical", "horizontal")

#: A setpoint record and the input record of its ``_RBV``.
RBV_RECORDS: dict[str, str] = {"ao": "ai", "longout": "longin", "bo": "bi", "mbbo": "mbbi", "waveform": "waveform",
                               "stringout": "stringin"}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def attr_of(name: str) -> str:
    """The Python name of a PV: ``ROI:MinX`` -> ``roi_min_x``, ``GoodRegion:GFScale`` -> ``good_region_gfscale``."""
    return _CAMEL.sub("_", name.replace(":", "_")).lower()


def config_number(value: float) -> int | float:
    """A setting's number as it goes into a config: integral values as JSON integers."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _finite(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _integer(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


# =========================================================================================
# Codecs: config value <-> PV value
# =========================================================================================
class Codec:
    """How one setting's config value and its PV value map onto each other.

    ``to_pv`` is what the ``_RBV`` shows for a config value (never fails: a value it cannot show
    reads as the off/default value); ``to_config`` is what a put writes into the config.
    """

    def to_pv(self, value: Any) -> Any:
        raise NotImplementedError

    def to_config(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Real(Codec):
    """A float setting; with ``zero_is_off`` a PV value of 0 (or less) is ``None`` in the config."""

    zero_is_off: bool = False
    default: float = 0.0

    def to_pv(self, value: Any) -> float:
        return _finite(value, self.default)

    def to_config(self, value: Any) -> int | float | None:
        if self.zero_is_off and float(value) <= 0:
            return None
        return config_number(value)


@dataclass(frozen=True)
class Integer(Codec):
    """An integer setting; with ``zero_is_off`` 0 is ``None``; ``default`` is shown for ``None`` and 0."""

    zero_is_off: bool = False
    default: int = 0

    def to_pv(self, value: Any) -> int:
        return _integer(value, self.default) or self.default

    def to_config(self, value: Any) -> int | None:
        number = int(value)
        return None if self.zero_is_off and number == 0 else number


@dataclass(frozen=True)
class Flag(Codec):
    """A boolean setting served as a two-state enum (``states[1]`` is true)."""

    states: tuple[str, str] = ("No", "Yes")

    def to_pv(self, value: Any) -> str:
        return self.states[1] if value else self.states[0]

    def to_config(self, value: Any) -> bool:
        return value == self.states[1]


@dataclass(frozen=True)
class Choice(Codec):
    """An enum setting; ``states`` maps each PV state to its config value (first = default).

    A config value shows as the first state whose config value equals it (``1 == True``)."""

    states: Mapping[str, Any] = field(default_factory=dict)

    def to_pv(self, value: Any) -> str:
        for state, config_value in self.states.items():
            if value == config_value and isinstance(value, str) == isinstance(config_value, str):
                return state
        return next(iter(self.states))

    def to_config(self, value: Any) -> Any:
        return self.states[value]


@dataclass(frozen=True)
class Word(Codec):
    """A string setting whose values are the PV's enum strings (``default`` shown otherwise)."""

    choices: tuple[str, ...] = ()

    def to_pv(self, value: Any) -> str:
        text = str(value or "")
        return text if text in self.choices else self.choices[0]

    def to_config(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Text(Codec):
    """A long string (CHAR waveform): stripped, empty is ``None``; shown cut to ``limit``."""

    limit: int = 255

    def to_pv(self, value: Any) -> str:
        return str(value or "")[: self.limit]

    def to_config(self, value: Any) -> str | None:
        return str(value).strip() or None

    @staticmethod
    def stored(value: Any) -> str:
        """What the setpoint keeps after a put (the stripped text)."""
        return str(value).strip()


# =========================================================================================
# Markers
# =========================================================================================
@dataclass(frozen=True)
class PV:
    """A config field (or one item of a :class:`Section`) served as a setting and its ``_RBV``.

    ``name`` is relative to the block prefix; ``record`` is the setpoint's record type (its
    ``_RBV`` gets the matching input record, :data:`RBV_RECORDS`); ``desc``/``rbv_desc`` the two
    DESCs (<= 40 characters). ``low``/``high`` are control limits (enforced on puts), ``value`` the
    setpoint's initial value. Inside a section, ``item`` is the list index or object key the PV
    stands for, and ``switch`` marks the enum that turns the section on (its second state).
    """

    name: str
    record: str
    desc: str
    rbv_desc: str
    codec: Codec
    egu: str = ""
    prec: int | None = None
    low: float | None = None
    high: float | None = None
    enums: tuple[str, ...] = ()
    value: Any = None
    nelm: int = 0
    item: int | str | None = None
    switch: bool = False

    @property
    def attr(self) -> str:
        return attr_of(self.name)


@dataclass(frozen=True)
class Section:
    """A config field whose value is one whole made of several PVs (``members``, in PV order).

    The section is in force when every ``switch`` member is on and every ``positive`` member is
    > 0; its config value is then built from the members' setpoints (a list ordered by ``item``
    index, or an object keyed by ``item``), else it is ``None``. Setpoints may be entered one at a
    time: a put changes the config only when the section the setpoints describe differs from the
    one in force; until then the setpoints are pending values.
    """

    members: tuple[PV, ...]
    positive: tuple[str, ...] = ()
    shape: type = dict

    def __init__(self, *members: PV, positive: tuple[str, ...] = (), shape: type = dict) -> None:
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "positive", positive)
        object.__setattr__(self, "shape", shape)


__all__ = [
    "BACKGROUND_CONFIG",
    "BACKGROUND_MODES",
    "BIN_LIMIT",
    "DISABLE_ENABLE",
    "MAX_SLICES",
    "NO_YES",
    "PIXEL_LIMIT",
    "SLICE_ORIENTATIONS",
    "TEXT_NELM",
    "THRESHOLD_LIMIT",
    "PV",
    "RBV_RECORDS",
    "Choice",
    "Codec",
    "Flag",
    "Integer",
    "Real",
    "Section",
    "Text",
    "Word",
    "attr_of",
    "config_number",
]
